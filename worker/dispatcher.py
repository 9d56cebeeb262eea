"""The outbox dispatcher: unsent outbox rows become Celery messages.

A row is marked sent in the same transaction that locked it, after the broker accepted the
message; a crash in between re-sends it, which is harmless because every task is idempotent."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from store import outbox
from worker.app import EMBED_TASK, RESOLVE_TASK, VALUE_TASK

log = logging.getLogger(__name__)

RESOLVE_BATCH = 16
EMBED_BATCH = 32

# (task name, kwargs, queue) -> the broker has accepted it when this returns
Sender = Callable[[str, dict[str, Any], str], None]


def plan_messages(rows: list[outbox.OutboxRow]) -> list[tuple[str, dict[str, Any], str]]:
    """Group outbox rows into task messages: resolve by (chain, contract) batches, embed by image
    batches, valuations one each. Pure."""
    messages: list[tuple[str, dict[str, Any], str]] = []
    # token id -> the block of its latest event (where its tokenURI is read), or None
    resolve: dict[tuple[int, str, str], dict[str, int | None]] = defaultdict(dict)
    embed: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        p = row.payload
        if row.task == "resolve":
            tokens = resolve[(int(p["chain_id"]), p["contract"], row.queue)]
            tid, block = str(p["token_id"]), p.get("block_number")
            tokens[tid] = max(block, tokens.get(tid) or block) if block is not None else None
        elif row.task == "embed":
            embed[row.queue].append(p["image_sha256"])
        elif row.task == "value":
            messages.append((VALUE_TASK, dict(p), row.queue))
        else:
            log.error("outbox row %s has an unknown task %r; skipped", row.id, row.task)
    for (chain_id, contract, queue), tokens in resolve.items():
        unique = list(tokens)
        for i in range(0, len(unique), RESOLVE_BATCH):
            chunk = unique[i : i + RESOLVE_BATCH]
            kwargs: dict[str, Any] = {
                "chain_id": chain_id,
                "contract": contract,
                "token_ids": chunk,
            }
            blocks = {t: tokens[t] for t in chunk if tokens[t] is not None}
            if blocks:
                kwargs["blocks"] = blocks
            messages.append((RESOLVE_TASK, kwargs, queue))
    for queue, shas in embed.items():
        unique = list(dict.fromkeys(shas))
        for i in range(0, len(unique), EMBED_BATCH):
            messages.append((EMBED_TASK, {"image_sha256s": unique[i : i + EMBED_BATCH]}, queue))
    return messages


def dispatch_once(factory: sessionmaker[Session], send: Sender, limit: int = 1000) -> int:
    """Send one batch of unsent rows; returns how many rows were marked sent."""
    with factory.begin() as session:
        rows = outbox.claim_unsent(session, limit)
        if not rows:
            return 0
        for name, kwargs, queue in plan_messages(rows):
            send(name, kwargs, queue)
        outbox.mark_sent(session, [r.id for r in rows])
    return len(rows)


def celery_sender(app: Any) -> Sender:
    def send(name: str, kwargs: dict[str, Any], queue: str) -> None:
        app.send_task(
            name,
            kwargs=kwargs,
            queue=queue,
            retry=True,
            retry_policy={
                "max_retries": 5,
                "interval_start": 0.2,
                "interval_step": 0.5,
                "interval_max": 3,
            },
        )

    return send


def run_dispatcher(
    factory: sessionmaker[Session], send: Sender, stop: threading.Event, interval: float = 0.2
) -> None:
    """Drain the outbox until ``stop`` is set; errors are logged and retried, never fatal."""
    while not stop.is_set():
        try:
            sent = dispatch_once(factory, send)
        except Exception:  # the broker or the database is down: wait and try again
            log.exception("dispatch failed; retrying")
            sent = 0
        if not sent:
            stop.wait(interval)
