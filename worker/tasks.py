"""Thin, idempotent tasks: they take ids, re-read state, call ``nftvision`` and ``store``, and
queue follow-up work through the outbox in the same transaction as their results."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from celery import Task
from sqlalchemy.exc import OperationalError

import nftvision.errors as vision_errors
import worker.errors as worker_errors
from store import queries
from store.models import Collection
from worker.app import EMBED_TASK, RESOLVE_TASK, VALUE_TASK, app
from worker.backoff import next_retry
from worker.context import WorkerContext, context_from
from worker.contract_reads import read_token_uris
from worker.errors import WorkerError

log = logging.getLogger(__name__)


# Only these are worth a task-level retry (the database restarting, a node or gateway down);
# per-token failures are recorded on the token and retried by the sweep instead.
RETRYABLE = (OperationalError, vision_errors.Retryable, worker_errors.Retryable)
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
def resolve_tokens(self: Task, chain_id: int, contract: str, token_ids: list[str]) -> int:
    """Resolve a batch of tokens of one contract; returns how many resolved."""
    return resolve_batch(_ctx(), chain_id, contract, [int(t) for t in token_ids])


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


def resolve_batch(ctx: WorkerContext, chain_id: int, contract: str, token_ids: list[int]) -> int:
    from nftvision.errors import NftVisionError
    from nftvision.resolve import FetchPolicy, Resolver, resolve_many

    contract = contract.lower()
    with ctx.factory() as session:
        standard = (
            session.query(Collection.standard)
            .filter(Collection.chain_id == chain_id, Collection.address == contract)
            .scalar()
        ) or "erc721"
    uris = read_token_uris(ctx.rpc_url(chain_id), contract, token_ids, standard=standard)
    to_fetch = [(uri, tid) for tid, uri in uris.items() if isinstance(uri, str)]
    policy = FetchPolicy(
        gateways=ctx.config.ipfs_gateways,
        ipfs_api_url=ctx.config.ipfs_api_url,
        allow_hosts=frozenset(ctx.config.allow_hosts),
    )

    async def fetch() -> list[Any]:
        async with Resolver(policy) as resolver:
            return await resolve_many(resolver, to_fetch, ctx.config.resolve_concurrency)

    results = asyncio.run(fetch()) if to_fetch else []
    outcomes: dict[int, Any] = {tid: err for tid, err in uris.items() if not isinstance(err, str)}
    outcomes.update({tid: res for (_, tid), res in zip(to_fetch, results, strict=True)})
    now = dt.datetime.now(dt.UTC)
    resolved = 0
    with ctx.factory.begin() as session:
        for tid in token_ids:
            outcome = outcomes[tid]
            if isinstance(outcome, (NftVisionError, WorkerError)):
                _record_failure(session, ctx, chain_id, contract, tid, uris[tid], outcome, now)
                continue
            media = outcome.media
            if media is not None:
                queries.store_media(
                    session, media.sha256, media.mime, media.width, media.height, media.data
                )
                queries.enqueue(
                    session,
                    "embed",
                    "embed",
                    {"image_sha256": media.sha256},
                    dedupe_key=f"embed:{media.sha256}:{','.join(ctx.config.extractors)}",
                )
            uri = uris[tid]
            queries.mark_resolved(
                session,
                chain_id,
                contract,
                tid,
                queries.ResolvedToken(
                    token_uri=uri if isinstance(uri, str) else "",
                    metadata=outcome.metadata,
                    attributes=outcome.attributes,
                    image_uri=outcome.image_uri,
                    image_sha256=media.sha256 if media is not None else None,
                ),
            )
            resolved += 1
    return resolved


def _record_failure(
    session: Any,
    ctx: WorkerContext,
    chain_id: int,
    contract: str,
    token_id: int,
    uri: Any,
    error: Any,
    now: dt.datetime,
) -> None:
    row = queries.token(session, chain_id, contract, token_id)
    attempts = (row.attempts if row is not None else 0) + 1
    exhausted = not error.retryable or attempts >= ctx.config.max_attempts
    retry_at = (
        None
        if exhausted
        else next_retry(attempts, now=now, retry_after=getattr(error, "retry_after", None))
    )
    stage = "token_uri" if isinstance(error, WorkerError) else "metadata"
    queries.mark_failed(
        session,
        chain_id,
        contract,
        token_id,
        stage=stage,
        uri=uri if isinstance(uri, str) else None,
        error_class=error.code,
        message=str(error),
        retryable=error.retryable,
        next_retry_at=retry_at,
        exhausted=exhausted,
    )
    log.info("token %s/%s: %s %s", contract, token_id, error.code, error)


def embed_batch(ctx: WorkerContext, image_sha256s: list[str]) -> int:
    from nftvision.media import decode_media

    stored = 0
    with ctx.factory() as session:
        contents = queries.media_content(session, image_sha256s)
    images = {}
    for sha, content in contents.items():
        try:
            images[sha] = decode_media(content).image
        except Exception as exc:  # stored media decoded once already; record and move on
            log.warning("image %s no longer decodes: %s", sha, exc)
    for name in ctx.config.extractors:
        extractor = ctx.extractor(name)
        with ctx.factory() as session:
            todo = queries.missing_embeddings(session, name, list(images))
        if not todo:
            continue
        vectors = extractor.embed([images[s] for s in todo])
        ctx.ensure_index(name, extractor.dim)
        with ctx.factory.begin() as session:
            stored += queries.store_embeddings(
                session,
                name,
                extractor.weights,
                extractor.preprocess_version,
                zip(todo, vectors.tolist(), strict=True),
            )
    return stored
