"""Thin, idempotent tasks: they take ids, re-read state, call ``nftvision`` and ``store``, and
queue follow-up work through the outbox in the same transaction as their results."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from sqlalchemy.exc import OperationalError

import tokenmeta.errors as fetch_errors
import worker.errors as worker_errors
from store.vectors import media_content, missing_embeddings, store_embeddings
from worker.app import EMBED_TASK, RESOLVE_TASK, VALUE_TASK, app
from worker.context import WorkerContext, context_from
from worker.resolving import resolve_batch

log = logging.getLogger(__name__)


# Only these are worth a task-level retry (the database restarting, a node or gateway down);
# per-token failures are recorded on the token and retried by the sweep instead.
RETRYABLE = (OperationalError, fetch_errors.Retryable, worker_errors.Retryable)
RETRY_POLICY: dict[str, Any] = {
    "autoretry_for": RETRYABLE,
    "retry_backoff": 2,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 8,
}


def _ctx() -> WorkerContext:
    return context_from(app.conf.nftwatch)


@app.task(name=RESOLVE_TASK, bind=True, **RETRY_POLICY)
def resolve_tokens(
    self: Task,
    chain_id: int,
    contract: str,
    token_ids: list[str],
    blocks: dict[str, int] | None = None,
) -> int:
    """Resolve a batch of tokens of one contract (``blocks``: token id -> the event's block,
    where its tokenURI is read); returns how many resolved."""
    at = {int(t): int(b) for t, b in (blocks or {}).items()}
    return resolve_batch(_ctx(), chain_id, contract, [int(t) for t in token_ids], blocks=at)


@app.task(name=EMBED_TASK, bind=True, **RETRY_POLICY)
def embed_images(self: Task, image_sha256s: list[str]) -> int:
    """Embed a batch of stored images with every configured extractor."""
    return embed_batch(_ctx(), image_sha256s)


@app.task(name=VALUE_TASK, bind=True, **RETRY_POLICY)
def value_token(self: Task, chain_id: int, contract: str, token_id: str, **reason: Any) -> int:
    """Value one token now (desk requests and new listings come through the urgent queue)."""
    from worker.valuing import value_now

    return value_now(_ctx(), chain_id, contract, int(token_id), reason=reason.get("reason", ""))


# ------------------------------------------------------------------ the work itself


EMBED_CHUNK = 32  # images per model call
DECODE_THREADS = 4  # PNG/GIF decoding and SVG rendering release the GIL for most of their work


def embed_batch(ctx: WorkerContext, image_sha256s: list[str]) -> int:
    """Embed stored images with every configured extractor; returns how many vectors it stored.

    One read (what is missing, then those images' bytes), decoding in a thread pool that runs
    ahead of the model chunk by chunk, and one write transaction for every vector."""
    from concurrent.futures import ThreadPoolExecutor
    from itertools import islice

    from nftvision.extractors.base import chunks
    from tokenmeta.media import decode_media

    names = list(ctx.config.extractors)
    with ctx.factory() as session:
        todo = {n: set(missing_embeddings(session, n, image_sha256s)) for n in names}
        wanted = [s for s in dict.fromkeys(image_sha256s) if any(s in t for t in todo.values())]
        contents = media_content(session, wanted) if wanted else {}
    shas = [s for s in wanted if s in contents]
    if not shas:
        return 0

    def decode(sha: str) -> Any:
        try:
            return decode_media(contents[sha]).image
        except Exception as exc:  # stored media decoded once already; record and move on
            log.warning("image %s no longer decodes: %s", sha, exc)
            return None

    models = {n: ctx.extractor(n) for n in names}
    rows: dict[str, list[tuple[str, Any]]] = {n: [] for n in names}
    with ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="embed-decode") as pool:
        decoded = pool.map(decode, shas)  # submitted at once: decoding runs ahead of the model
        for part in chunks(shas, EMBED_CHUNK):
            ready = zip(part, islice(decoded, len(part)), strict=True)
            images = {s: im for s, im in ready if im is not None}
            for n in names:
                keys = [s for s in images if s in todo[n]]
                if keys:
                    vectors = models[n].embed([images[s] for s in keys], batch_size=EMBED_CHUNK)
                    rows[n].extend(zip(keys, vectors, strict=True))
    for n in names:
        if rows[n]:
            ctx.ensure_index(n, models[n].dim)
    with ctx.factory.begin() as session:
        return sum(
            store_embeddings(session, n, models[n].weights, models[n].preprocess_version, rows[n])
            for n in names
        )
