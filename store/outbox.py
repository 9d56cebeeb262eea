"""The outbox: rows written in the recording transaction, claimed and marked sent by the
dispatcher only after the broker accepted them; sent again when their work never finished, and
deleted once long sent."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from store.models import (
    Outbox,
)


@dataclass(frozen=True)
class OutboxRow:
    id: int
    task: str
    queue: str
    payload: dict[str, Any]


def enqueue(
    session: Session, task: str, queue: str, payload: dict[str, Any], dedupe_key: str
) -> None:
    """Add work to the outbox once per ``dedupe_key``; it is sent after this transaction commits."""
    session.execute(
        insert(Outbox)
        .values(task=task, queue=queue, payload=payload, dedupe_key=dedupe_key)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
    )


def claim_unsent(session: Session, limit: int) -> list[OutboxRow]:
    """Lock up to ``limit`` unsent rows, urgent first; other dispatchers skip them."""
    rows = session.execute(
        select(Outbox.id, Outbox.task, Outbox.queue, Outbox.payload)
        .where(Outbox.sent_at.is_(None))
        .order_by((Outbox.queue != "urgent"), Outbox.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    return [OutboxRow(r.id, r.task, r.queue, r.payload) for r in rows]


def mark_sent(session: Session, ids: Sequence[int]) -> None:
    if ids:
        session.execute(
            update(Outbox)
            .where(Outbox.id.in_(ids))
            .values(sent_at=func.now(), attempts=Outbox.attempts + 1)
        )


def unsent_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).where(Outbox.sent_at.is_(None))) or 0)


# Sent rows whose work is undone: a resolve whose token is still pending, an embed whose image
# lacks one of the extractors' vectors. Only rows sent within the horizon are looked at (the
# partial index ix_outbox_sent), so the scan stays as cheap after months as on the first day.
_UNSEND_UNFINISHED = text(
    """
    UPDATE outbox o SET sent_at = NULL
    WHERE o.sent_at < :cutoff AND o.sent_at >= :horizon AND o.attempts < :max_attempts AND (
      (o.task = 'resolve' AND EXISTS (
        SELECT 1 FROM tokens t
        WHERE t.chain_id = (o.payload->>'chain_id')::bigint
          AND t.contract = o.payload->>'contract'
          AND t.token_id = (o.payload->>'token_id')::numeric
          AND t.metadata_status = 'pending'))
      OR (o.task = 'embed' AND (
        SELECT count(*) FROM embeddings e
        WHERE e.image_sha256 = o.payload->>'image_sha256' AND e.extractor IN :extractors
      ) < :n_extractors)
    )
    """
).bindparams(bindparam("extractors", expanding=True))


def unsend_unfinished(
    session: Session,
    *,
    sent_before: dt.datetime,
    sent_after: dt.datetime,
    max_attempts: int,
    extractors: Sequence[str],
) -> int:
    """Mark unsent again the rows sent in [``sent_after``, ``sent_before``), sent fewer than
    ``max_attempts`` times, whose work is not done; returns how many."""
    result = session.execute(
        _UNSEND_UNFINISHED,
        {
            "cutoff": sent_before,
            "horizon": sent_after,
            "max_attempts": max_attempts,
            "extractors": list(extractors),
            "n_extractors": len(extractors),
        },
    )
    return int(getattr(result, "rowcount", 0) or 0)


_DELETE_SENT = text(
    """
    DELETE FROM outbox WHERE id IN (
      SELECT id FROM outbox WHERE sent_at IS NOT NULL AND sent_at < :before LIMIT :batch)
    """
)


def delete_sent(session: Session, before: dt.datetime, limit: int) -> int:
    """Delete up to ``limit`` rows sent before ``before``; returns how many."""
    result = session.execute(_DELETE_SENT, {"before": before, "batch": limit})
    return int(getattr(result, "rowcount", 0) or 0)
