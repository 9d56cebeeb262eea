"""The resolve task's work: read tokenURIs on chain, resolve them concurrently, record every
outcome per token in one transaction.

Outcomes on the ``tokens`` row: ``ok`` (metadata and image stored; a failed image keeps the
metadata and records the image's error), ``retry`` (a Retryable error: ``next_retry_at`` by
backoff with jitter, never before the server's Retry-After; the sweep re-queues it), ``failed``
(a Permanent error, or a Retryable one after ``max_attempts``: a dead letter). ``attempts``
counts consecutive failures and a success resets it, so a token refreshed many times still gets
its full retry budget. Every failure also appends a ``fetch_failures`` row.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session

from store import outbox
from store.models import Collection, FetchFailure, Token
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
TokenKey = tuple[int, str, int]  # (chain id, lower-case contract, token id)

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
        attempts = _attempts(session, chain_id, contract, token_ids)
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
        known = (
            session.query(Collection.standard)
            .filter(Collection.chain_id == chain_id, Collection.address == contract)
            .scalar()
        )
    if known in KNOWN_STANDARDS:
        return str(known)
    detected = reader.detect_standard(contract)
    if detected is None:
        return "erc721"  # no ERC-165: tokenURI is the only read worth trying
    _record_standard(ctx, chain_id, contract, detected)
    return detected


def _record_standard(ctx: WorkerContext, chain_id: int, contract: str, standard: str) -> None:
    stmt = insert(Collection).values(chain_id=chain_id, address=contract, standard=standard)
    with ctx.factory.begin() as session:
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["chain_id", "address"], set_={"standard": standard}
            )
        )


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


def _token_key(chain_id: int, contract: str, token_id: int) -> tuple[Any, ...]:
    return (
        Token.chain_id == chain_id,
        Token.contract == contract,
        Token.token_id == Decimal(token_id),
    )


def _attempts(
    session: Session, chain_id: int, contract: str, token_ids: list[int]
) -> dict[int, int]:
    rows = session.execute(
        Token.__table__.select()
        .with_only_columns(Token.token_id, Token.attempts)
        .where(
            Token.chain_id == chain_id,
            Token.contract == contract,
            Token.token_id.in_([Decimal(t) for t in token_ids]),
        )
        .with_for_update()
    ).all()
    return {int(r.token_id): int(r.attempts or 0) for r in rows}


def _record_success(
    session: Session, cfg: WorkerConfig, key: TokenKey, uri: str, res: Resolution
) -> None:
    chain_id, contract, token_id = key
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
    session.execute(
        update(Token)
        .where(*_token_key(chain_id, contract, token_id))
        .values(
            token_uri=scrub(uri),
            metadata_json=scrub(res.metadata),
            attributes=scrub(res.attributes),
            image_uri=scrub(res.image_uri),
            image_sha256=media.sha256 if media is not None else None,
            metadata_status="ok",
            error_class=None,
            error_message=None,
            attempts=0,
            next_retry_at=None,
            resolved_at=func.now(),
            updated_at=func.now(),
        )
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
    """Classify one failure onto the token and append it to the failure log. ``stage="image"``
    follows a success: the metadata stays, only a Retryable image error changes the status."""
    chain_id, contract, token_id = key
    attempts = prior_attempts + 1
    exhausted = not error.retryable or attempts >= cfg.max_attempts
    retry_at = (
        None
        if exhausted
        else next_retry(attempts, now=now, retry_after=getattr(error, "retry_after", None))
    )
    if stage == "image":
        status = "ok" if exhausted else "retry"
    else:
        status = "failed" if exhausted else "retry"
    message, uri = scrub(str(error))[:2000], scrub(uri)
    values: dict[str, Any] = {
        "metadata_status": status,
        "error_class": error.code,
        "error_message": message,
        "attempts": attempts,
        "next_retry_at": retry_at,
        "updated_at": func.now(),
    }
    if stage == "token_uri":
        values["token_uri"] = None
    elif stage == "metadata":
        values["token_uri"] = uri
    session.execute(update(Token).where(*_token_key(chain_id, contract, token_id)).values(values))
    session.add(
        FetchFailure(
            chain_id=chain_id,
            contract=contract,
            token_id=Decimal(token_id),
            stage=stage,
            uri=uri,
            retryable=error.retryable,
            error_class=error.code,
            message=message,
            attempts=attempts,
            exhausted=exhausted,
        )
    )
    log.info("token %s/%s %s: %s %s", contract, token_id, stage, error.code, error)
