"""Collections and token rows: lookups, the owner a token had before a chain position, what the
valuer reads of a collection's tokens, and the token's metadata state machine with its dead
letters.

The metadata state machine, ``tokens.metadata_status`` (rows start pending when the chain
recording first sees a token)::

    any ── claim: rows locked, attempts read ──┬─ mark_resolved ─▶ ok (attempts reset)
                                               ├─ mark_retry ────▶ retry, at next_retry_at
                                               └─ mark_failed ───▶ failed, a dead letter
    retry, next_retry_at passed ──── due_retries ────▶ the sweep queues a resolve
    ok, mutable URI read long ago ── stale_resolved ─▶ the sweep queues a resolve
    failed (a dead letter) ──────── redrive ────────▶ pending, queued again (``nftwatch retry``)

``attempts`` counts consecutive failures. An image failure follows ``mark_resolved`` in the same
transaction: ``mark_retry`` moves the token to retry, ``mark_failed`` keeps it ok with the error
recorded. Every failure also appends a ``fetch_failures`` row.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import and_, func, not_, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from store import outbox
from store.chain import token_key_sql
from store.models import Collection, Embedding, FetchFailure, Token
from store.vectors import as_floats

TokenKey = tuple[int, str, int]  # (chain id, lower-case contract, token id)


def upsert_collection(
    session: Session, chain_id: int, address: str, name: str = "", standard: str = "erc721"
) -> None:
    stmt = insert(Collection).values(
        chain_id=chain_id, address=address.lower(), name=name, standard=standard
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["chain_id", "address"],
            set_={"name": stmt.excluded.name, "standard": stmt.excluded.standard},
        )
    )


def collection_standard(session: Session, chain_id: int, address: str) -> str | None:
    """The token standard recorded for a collection, or None when it is not registered."""
    return session.scalar(
        select(Collection.standard).where(
            Collection.chain_id == chain_id, Collection.address == address
        )
    )


def record_standard(session: Session, chain_id: int, address: str, standard: str) -> None:
    """Register a collection with the standard found on chain, or correct a registered one's
    (its name is left as it is)."""
    stmt = insert(Collection).values(chain_id=chain_id, address=address, standard=standard)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["chain_id", "address"], set_={"standard": standard}
        )
    )


def collections(session: Session, chain_id: int | None = None) -> list[Collection]:
    query = select(Collection).order_by(Collection.id)
    if chain_id is not None:
        query = query.where(Collection.chain_id == chain_id)
    return list(session.scalars(query))


def token(session: Session, chain_id: int, contract: str, token_id: int) -> Token | None:
    return session.get(Token, (chain_id, contract.lower(), Decimal(token_id)))


def token_exists(session: Session, chain_id: int, contract: str, token_id: int) -> bool:
    """Whether the store has recorded this token (one index probe, no row loaded)."""
    found = session.execute(
        select(Token.token_id)
        .where(
            Token.chain_id == chain_id,
            Token.contract == contract.lower(),
            Token.token_id == Decimal(token_id),
        )
        .limit(1)
    ).first()
    return found is not None


EventPosition = tuple[int, str, int, int, int]


_OWNERS_BEFORE = f"""
SELECT p.i, x.to_address, x.standard
FROM unnest(CAST(:chains AS bigint[]), CAST(:contracts AS text[]), CAST(:ids AS numeric[]),
            CAST(:blocks AS bigint[]), CAST(:logs AS int[]))
       WITH ORDINALITY AS p(chain_id, contract, token_id, block_number, log_index, i)
CROSS JOIN LATERAL (
  SELECT x.to_address, x.standard FROM transfers x
  WHERE {token_key_sql("x")} = {token_key_sql("p")}
    AND x.chain_id = p.chain_id AND x.contract = p.contract COLLATE "C"
    AND x.token_id = p.token_id
    AND x.block_number <= p.block_number  -- prunes the partitions after it (a row comparison
    AND (x.block_number, x.log_index) < (p.block_number, p.log_index)  -- does not)
  ORDER BY x.block_number DESC, x.log_index DESC, x.batch_index DESC
  LIMIT 1) x
"""


def owners_before(session: Session, positions: Sequence[EventPosition]) -> dict[EventPosition, str]:
    """Who held each token just before each position: the recipient of its latest stored
    transfer before it, in one statement for all of them (on the per-token transfer index).
    Absent where no transfer precedes it, and for ERC-1155 tokens, which have no one owner."""
    if not positions:
        return {}
    rows = session.execute(
        text(_OWNERS_BEFORE),
        {
            "chains": [p[0] for p in positions],
            "contracts": [p[1].lower() for p in positions],
            "ids": [Decimal(p[2]) for p in positions],
            "blocks": [p[3] for p in positions],
            "logs": [p[4] for p in positions],
        },
    )
    return {positions[r.i - 1]: r.to_address for r in rows if r.standard != "erc1155"}


# ------------------------------------------------------------------ what the valuer reads


def _with_vector(extractor: str) -> Any:
    return and_(Embedding.image_sha256 == Token.image_sha256, Embedding.extractor == extractor)


def coverage(session: Session, chain_id: int, contract: str, extractor: str) -> tuple[int, int]:
    """How many of the collection's tokens have attributes and how many a vector."""
    resolved, embedded = session.execute(
        select(func.count(Token.attributes), func.count(Embedding.image_sha256))
        .select_from(Token)
        .outerjoin(Embedding, _with_vector(extractor))
        .where(Token.chain_id == chain_id, Token.contract == contract)
    ).one()
    return int(resolved), int(embedded)


def attributes_and_vectors(
    session: Session, chain_id: int | None, contract: str, extractor: str
) -> tuple[dict[int, Any], dict[int, list[float]]]:
    """Each token of a collection (on every chain when ``chain_id`` is None): its stored
    ``attributes`` as they are, and its vector by ``extractor`` where it has one."""
    query = (
        select(Token.token_id, Token.attributes, Embedding.vec)
        .outerjoin(Embedding, _with_vector(extractor))
        .where(Token.contract == contract)
    )
    if chain_id is not None:
        query = query.where(Token.chain_id == chain_id)
    attributes: dict[int, Any] = {}
    vectors: dict[int, list[float]] = {}
    for tid, attrs, vec in session.execute(query):
        attributes[int(tid)] = attrs
        if vec is not None:
            vectors[int(tid)] = as_floats(vec)
    return attributes, vectors


# ------------------------------------------------------------------ the metadata state machine


def _key(key: TokenKey) -> tuple[Any, ...]:
    chain_id, contract, token_id = key
    return (
        Token.chain_id == chain_id,
        Token.contract == contract,
        Token.token_id == Decimal(token_id),
    )


def claim(
    session: Session, chain_id: int, contract: str, token_ids: Sequence[int]
) -> dict[int, int]:
    """Lock the tokens' rows until this transaction records their outcome; returns each one's
    consecutive failures so far (absent: no row)."""
    rows = session.execute(
        select(Token.token_id, Token.attempts)
        .where(
            Token.chain_id == chain_id,
            Token.contract == contract,
            Token.token_id.in_([Decimal(t) for t in token_ids]),
        )
        .with_for_update()
    ).all()
    return {int(r.token_id): int(r.attempts or 0) for r in rows}


def mark_resolved(
    session: Session,
    key: TokenKey,
    *,
    token_uri: str,
    metadata: Any,
    attributes: Any,
    image_uri: str | None,
    image_sha256: str | None,
) -> None:
    """Any state → ok: the metadata (and the image's hash) stored, errors and attempts reset."""
    session.execute(
        update(Token)
        .where(*_key(key))
        .values(
            token_uri=token_uri,
            metadata_json=metadata,
            attributes=attributes,
            image_uri=image_uri,
            image_sha256=image_sha256,
            metadata_status="ok",
            error_class=None,
            error_message=None,
            attempts=0,
            next_retry_at=None,
            resolved_at=func.now(),
            updated_at=func.now(),
        )
    )


@dataclass(frozen=True)
class Failure:
    """One failed fetch of a token, as its row and the failure log record it."""

    stage: str  # token_uri | metadata | image
    uri: str | None  # the URI that failed (the image's at the image stage)
    error_class: str
    message: str
    retryable: bool
    attempts: int  # consecutive failures, this one included


def mark_retry(session: Session, key: TokenKey, failure: Failure, at: dt.datetime) -> None:
    """→ retry: the sweep re-queues the token from ``at``."""
    _record_failure(session, key, failure, "retry", at)


def mark_failed(session: Session, key: TokenKey, failure: Failure) -> None:
    """→ failed, a dead letter; an image failure keeps the metadata and the ok status."""
    _record_failure(session, key, failure, "ok" if failure.stage == "image" else "failed", None)


def _record_failure(
    session: Session, key: TokenKey, failure: Failure, status: str, retry_at: dt.datetime | None
) -> None:
    values: dict[str, Any] = {
        "metadata_status": status,
        "error_class": failure.error_class,
        "error_message": failure.message,
        "attempts": failure.attempts,
        "next_retry_at": retry_at,
        "updated_at": func.now(),
    }
    if failure.stage == "token_uri":  # no URI could be read
        values["token_uri"] = None
    elif failure.stage == "metadata":
        values["token_uri"] = failure.uri
    session.execute(update(Token).where(*_key(key)).values(values))
    chain_id, contract, token_id = key
    session.add(
        FetchFailure(
            chain_id=chain_id,
            contract=contract,
            token_id=Decimal(token_id),
            stage=failure.stage,
            uri=failure.uri,
            retryable=failure.retryable,
            error_class=failure.error_class,
            message=failure.message,
            attempts=failure.attempts,
            exhausted=retry_at is None,  # no retry follows: the last attempt
        )
    )


class Due(NamedTuple):
    """A token a sweep re-queues, and the time that made it due (part of its dedupe key)."""

    chain_id: int
    contract: str
    token_id: Decimal
    at: dt.datetime | None


def due_retries(session: Session, now: dt.datetime, limit: int) -> list[Due]:
    """Tokens in retry whose retry time has come."""
    rows = session.execute(
        select(Token.chain_id, Token.contract, Token.token_id, Token.next_retry_at)
        .where(Token.metadata_status == "retry", Token.next_retry_at <= now)
        .limit(limit)
    ).all()
    return [Due(*r) for r in rows]


# Metadata served over http(s) can change in place; content-addressed URIs (ipfs://, ar://,
# data:, gateway URLs naming a CID) cannot, so only other http(s) URLs (IPNS names included)
# are checked again.
_MUTABLE_URI = and_(
    Token.token_uri.regexp_match(r"^https?://", "i"),
    not_(Token.token_uri.regexp_match(r"/ipfs/|\.ipfs\.|arweave\.net/", "i")),
)


def stale_resolved(session: Session, cutoff: dt.datetime, limit: int) -> list[Due]:
    """Resolved tokens whose mutable metadata was read before ``cutoff``, oldest first."""
    rows = session.execute(
        select(Token.chain_id, Token.contract, Token.token_id, Token.resolved_at)
        .where(Token.metadata_status == "ok", Token.resolved_at <= cutoff, _MUTABLE_URI)
        .order_by(Token.resolved_at)
        .limit(limit)
    ).all()
    return [Due(*r) for r in rows]


# A dead letter: resolving failed permanently or ran out of attempts, or the metadata resolved
# but its image did not (status ok with an error recorded).
_DEAD = or_(
    Token.metadata_status == "failed",
    and_(Token.metadata_status == "ok", Token.error_class.is_not(None)),
)


@dataclass(frozen=True)
class DeadLetter:
    chain_id: int
    contract: str
    token_id: str
    status: str
    stage: str | None
    error_class: str | None
    message: str | None
    attempts: int
    uri: str | None
    failed_at: dt.datetime | None


def dead_letters(session: Session, limit: int = 50) -> list[DeadLetter]:
    """The most recent dead letters with their last recorded failure."""
    tokens = session.scalars(
        select(Token).where(_DEAD).order_by(Token.updated_at.desc()).limit(limit)
    )
    out = []
    for t in tokens:
        last = session.scalars(
            select(FetchFailure)
            .where(
                FetchFailure.chain_id == t.chain_id,
                FetchFailure.contract == t.contract,
                FetchFailure.token_id == t.token_id,
            )
            .order_by(FetchFailure.id.desc())
            .limit(1)
        ).first()
        out.append(
            DeadLetter(
                chain_id=t.chain_id,
                contract=t.contract,
                token_id=str(t.token_id),
                status=t.metadata_status,
                stage=last.stage if last is not None else None,
                error_class=t.error_class,
                message=t.error_message,
                attempts=last.attempts if last is not None else t.attempts,
                uri=last.uri if last is not None else t.token_uri,
                failed_at=last.created_at if last is not None else t.updated_at,
            )
        )
    return out


def redrive(
    session: Session,
    *,
    token: tuple[str, int] | None = None,
    chain_id: int | None = None,
) -> int:
    """Queue a fresh resolve of one token (any status), or of every dead letter when ``token``
    is None; their attempts start again. Returns how many were queued."""
    query = select(Token.chain_id, Token.contract, Token.token_id)
    if token is not None:
        query = query.where(Token.contract == token[0], Token.token_id == Decimal(token[1]))
    else:
        query = query.where(_DEAD)
    if chain_id is not None:
        query = query.where(Token.chain_id == chain_id)
    rows = session.execute(query.with_for_update()).all()
    run = uuid.uuid4().hex[:12]
    for chain, contract, token_id in rows:
        session.execute(
            update(Token)
            .where(Token.chain_id == chain, Token.contract == contract, Token.token_id == token_id)
            .values(metadata_status="pending", attempts=0, next_retry_at=None)
        )
        outbox.enqueue(
            session,
            "resolve",
            "resolve",
            {"chain_id": chain, "contract": contract, "token_id": str(token_id)},
            dedupe_key=f"redrive:{chain}:{contract}:{token_id}:{run}",
        )
    return len(rows)


def upsert_imported_tokens(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert the tokens of an import in one statement; a token already stored takes the
    import's attributes, metadata, status and image (its chain-derived columns stay)."""
    stmt = insert(Token).values(list(rows))
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["chain_id", "contract", "token_id"],
            set_={
                "attributes": stmt.excluded.attributes,
                "metadata_json": stmt.excluded.metadata_json,
                "metadata_status": stmt.excluded.metadata_status,
                "image_sha256": stmt.excluded.image_sha256,
            },
        )
    )


def most_traded_token(session: Session, chain_id: int, contract: str) -> int | None:
    """The collection's token with the most sales (the lowest id among equals)."""
    tid = session.scalar(
        select(Token.token_id)
        .where(Token.chain_id == chain_id, Token.contract == contract)
        .order_by(Token.sale_count.desc(), Token.token_id)
        .limit(1)
    )
    return None if tid is None else int(tid)
