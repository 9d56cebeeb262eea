"""The resolve task's work: read tokenURIs on chain, resolve them concurrently, record every
outcome per token in one transaction.

Each outcome picks a transition of the token's metadata state machine (``store.tokens``): a
resolution marks it resolved (a failed image keeps the metadata and records the image's error);
a Retryable error marks it for retry at ``next_retry_at``, by backoff with jitter and never
before the server's Retry-After; a Permanent error, or a Retryable one after ``max_attempts``,
marks it failed, a dead letter. Attempts count consecutive failures and a success resets them,
so a token refreshed many times still gets its full retry budget.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session

from store import outbox, tokens
from store.tokens import TokenKey
from store.vectors import store_media
from worker.backoff import next_retry
from worker.config import WorkerConfig
from worker.contract_reads import ContractReader, TokenURIReverted
from worker.errors import WorkerError

if TYPE_CHECKING:
    from tokenmeta.errors import TokenMetaError
    from tokenmeta.fetch.ratelimit import HostRateLimiter
    from tokenmeta.resolve import FetchPolicy, Resolution
    from worker.context import WorkerContext

log = logging.getLogger(__name__)

KNOWN_STANDARDS = ("erc721", "erc1155", "cryptopunks")

# Whether each node has Multicall3, asked once per process (a node does not lose it).
_multicall_on: dict[str, bool] = {}


def resolve_batch(
    ctx: WorkerContext,
    chain_id: int,
    contract: str,
    token_ids: list[int],
    *,
    blocks: Mapping[int, int] | None = None,
) -> int:
    """Resolve tokens of one contract; returns how many now have metadata. ``blocks``: each
    token's event block, where its tokenURI is read."""
    contract = contract.lower()
    token_ids = list(dict.fromkeys(token_ids))
    url = ctx.rpc_url(chain_id)
    reader = ContractReader(url, multicall=_multicall_on.get(url), client=ctx.rpc_client)
    standard = _standard(ctx, reader, chain_id, contract)
    uris = reader.token_uris(contract, token_ids, standard=standard or "erc721", blocks=blocks)
    reverted = all(isinstance(u, TokenURIReverted) for u in uris.values())
    if standard == "erc721" and uris and reverted:
        # a collection registered without its standard: ask ERC-165 before failing every token
        detected = reader.detect_standard(contract)
        if detected == "erc1155":
            _record_standard(ctx, chain_id, contract, detected)
            uris = reader.token_uris(contract, token_ids, standard=detected, blocks=blocks)
    if reader.multicall is not None:
        _multicall_on[url] = reader.multicall
    to_fetch = [(uri, tid) for tid, uri in uris.items() if isinstance(uri, str)]
    results = asyncio.run(_fetch(ctx.config, to_fetch)) if to_fetch else []
    outcomes: dict[int, Any] = {tid: err for tid, err in uris.items() if not isinstance(err, str)}
    outcomes.update({tid: res for (_, tid), res in zip(to_fetch, results, strict=True)})
    now = dt.datetime.now(dt.UTC)
    resolved = 0
    with ctx.factory.begin() as session:
        attempts = tokens.claim(session, chain_id, contract, token_ids)
        for tid in token_ids:
            raw = uris[tid]
            key = (chain_id, contract, tid)
            try:
                with session.begin_nested():  # one unstorable answer never sinks the batch
                    resolved += _record(session, ctx.config, key, raw, outcomes[tid], attempts, now)
            except DataError as exc:
                from tokenmeta.errors import UnexpectedError

                error = UnexpectedError(f"could not store the result: {exc.orig}")
                uri = raw if isinstance(raw, str) else None
                prior = attempts.get(tid, 0)
                record_failure(session, ctx.config, key, "metadata", uri, error, prior, now)
    return resolved


def _record(
    session: Session,
    cfg: WorkerConfig,
    key: TokenKey,
    raw: Any,
    outcome: Any,
    attempts: dict[int, int],
    now: dt.datetime,
) -> int:
    uri = raw if isinstance(raw, str) else None
    prior = attempts.get(key[2], 0)
    if isinstance(outcome, WorkerError) or _is_vision_error(outcome):
        stage = "token_uri" if isinstance(outcome, WorkerError) else "metadata"
        record_failure(session, cfg, key, stage, uri, outcome, prior, now)
        return 0
    _record_success(session, cfg, key, uri or "", outcome)
    if outcome.media_error is not None:
        error = outcome.media_error
        record_failure(session, cfg, key, "image", outcome.image_uri, error, prior, now)
    return 1


def scrub(value: Any) -> Any:
    """Postgres text and jsonb refuse NUL characters, which hostile metadata may carry."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


# ------------------------------------------------------------------ chain side


def _standard(ctx: WorkerContext, reader: ContractReader, chain_id: int, contract: str) -> str:
    with ctx.factory() as session:
        known = tokens.collection_standard(session, chain_id, contract)
    if known in KNOWN_STANDARDS:
        return str(known)
    detected = reader.detect_standard(contract)
    if detected is None:
        return "erc721"  # no ERC-165: tokenURI is the only read worth trying
    _record_standard(ctx, chain_id, contract, detected)
    return detected


def _record_standard(ctx: WorkerContext, chain_id: int, contract: str, standard: str) -> None:
    with ctx.factory.begin() as session:
        tokens.record_standard(session, chain_id, contract, standard)


# ------------------------------------------------------------------ fetching


async def _fetch(cfg: WorkerConfig, items: list[tuple[str, int]]) -> list[Any]:
    from tokenmeta.resolve import Resolver, resolve_many

    limiter, close = rate_limiter(cfg)
    try:
        async with Resolver(fetch_policy(cfg), limiter=limiter) as resolver:
            return await resolve_many(resolver, items, cfg.resolve_concurrency)
    finally:
        if close is not None:
            await close()


def fetch_policy(cfg: WorkerConfig) -> FetchPolicy:
    from tokenmeta.resolve import FetchPolicy

    return FetchPolicy(
        gateways=cfg.ipfs_gateways,
        ipfs_api_url=cfg.ipfs_api_url,
        allow_hosts=frozenset(cfg.allow_hosts),
    )


def rate_limiter(cfg: WorkerConfig) -> tuple[HostRateLimiter | None, Any]:
    """Per-host rates shared by every worker through Redis when the broker is Redis (built in
    the running event loop; the second value closes its connection); in this process only
    otherwise. None when no rates are configured."""
    if not cfg.rate_limits:
        return None, None
    from tokenmeta.fetch.ratelimit import LocalRateLimiter, RedisRateLimiter
    from worker.app import redis_client_url

    client_url = redis_client_url(cfg.broker_url)  # the embedded broker's unix socket too
    if client_url is not None:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(client_url)
        prefix = f"{cfg.redis_key_prefix or ''}nftwatch:ratelimit:"
        limiter = RedisRateLimiter(client, cfg.rate_limits, burst=cfg.rate_burst, prefix=prefix)
        return limiter, client.aclose
    return LocalRateLimiter(cfg.rate_limits, burst=cfg.rate_burst), None


def _is_vision_error(outcome: Any) -> bool:
    from tokenmeta.errors import TokenMetaError

    return isinstance(outcome, TokenMetaError)


# ------------------------------------------------------------------ recording


def _record_success(
    session: Session, cfg: WorkerConfig, key: TokenKey, uri: str, res: Resolution
) -> None:
    media = res.media
    if media is not None:
        store_media(session, media.sha256, media.mime, media.width, media.height, media.data)
        outbox.enqueue(
            session,
            "embed",
            "embed",
            {"image_sha256": media.sha256},
            dedupe_key=f"embed:{media.sha256}:{','.join(cfg.extractors)}",
        )
    tokens.mark_resolved(
        session,
        key,
        token_uri=scrub(uri),
        metadata=scrub(res.metadata),
        attributes=scrub(res.attributes),
        image_uri=scrub(res.image_uri),
        image_sha256=media.sha256 if media is not None else None,
    )


def record_failure(
    session: Session,
    cfg: WorkerConfig,
    key: TokenKey,
    stage: str,
    uri: str | None,
    error: TokenMetaError | WorkerError,
    prior_attempts: int,
    now: dt.datetime,
) -> None:
    """Mark one failure on the token: for retry while the error is Retryable and attempts are
    left, failed otherwise. ``stage="image"`` follows a success: the metadata stays."""
    attempts = prior_attempts + 1
    failure = tokens.Failure(
        stage=stage,
        uri=scrub(uri),
        error_class=error.code,
        message=scrub(str(error))[:2000],
        retryable=error.retryable,
        attempts=attempts,
    )
    if error.retryable and attempts < cfg.max_attempts:
        retry_after = getattr(error, "retry_after", None)
        at = next_retry(attempts, now=now, retry_after=retry_after)
        tokens.mark_retry(session, key, failure, at)
    else:
        tokens.mark_failed(session, key, failure)
    log.info("token %s/%s %s: %s %s", key[1], key[2], stage, error.code, error)
