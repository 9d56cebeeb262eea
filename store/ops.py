"""Operational reads and repairs: the database's clock and a liveness probe, the follower's
position and the events ingested since a block (the service's gauges), the broker's queue depths
on kombu's SQL transport, the dead letters of metadata resolving and their re-drive through the
outbox, the CryptoPunks import's token upsert, and the counts the demo reports its progress and
its summary with."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from store import outbox
from store.models import (
    Block,
    Checkpoint,
    Embedding,
    FetchFailure,
    Listing,
    Sale,
    Token,
    Transfer,
)

# ------------------------------------------------------------------ the database itself


def database_now(session: Session) -> dt.datetime:
    """The database's clock (transaction start), which valuations are stamped with too."""
    return session.execute(select(func.now())).scalar_one()


def ping(session: Session) -> None:
    """One round trip; raises when the database cannot be reached."""
    session.execute(text("SELECT 1"))


# ------------------------------------------------------------------ the service's gauges


def follow_position(session: Session, chain_id: int) -> tuple[int | None, dt.datetime | None]:
    """The follower's last ingested block on ``chain_id`` and that block's time (None, None
    before its first batch; the time is None where the block row is not stored)."""
    cp = session.execute(
        select(Checkpoint.block_number).where(Checkpoint.name == f"follow:{chain_id}")
    ).scalar()
    cp_time = (
        session.scalar(
            select(Block.timestamp).where(Block.chain_id == chain_id, Block.number == cp)
        )
        if cp is not None
        else None
    )
    return cp, cp_time


def events_between(session: Session, chain_id: int, lo: int, hi: int) -> int:
    """Transfers and sales of the blocks in ``(lo, hi]`` (an index range scan per table)."""
    count = 0
    for table in (Transfer, Sale):
        count += int(
            session.scalar(
                select(func.count()).where(
                    table.chain_id == chain_id,
                    table.block_number > lo,
                    table.block_number <= hi,
                )
            )
            or 0
        )
    return count


def kombu_queue_depths(session: Session) -> dict[str, int]:
    """Visible messages per queue of kombu's SQLAlchemy transport; empty before it made its
    tables."""
    rows = session.execute(
        text(
            "SELECT q.name, count(m.id) FROM kombu_queue q "
            "LEFT JOIN kombu_message m ON m.queue_id = q.id AND m.visible GROUP BY q.name"
        )
    ).all()
    return {str(name): int(n) for name, n in rows}


# ------------------------------------------------------------------ dead letters

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


# ------------------------------------------------------------------ imports


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


# ------------------------------------------------------------------ the demo's counts


@dataclass(frozen=True)
class StoredCounts:
    """What the demo's summary reports as stored."""

    events: dict[str, int | None]  # transfers, mints, sales, listings
    tokens: dict[str, int]  # by metadata status
    vectors: dict[str, int]  # by extractor


def stored_counts(session: Session) -> StoredCounts:
    events = {
        "transfers": session.scalar(select(func.count()).select_from(Transfer)),
        "mints": session.scalar(select(func.count()).where(Transfer.is_mint)),
        "sales": session.scalar(select(func.count()).select_from(Sale)),
        "listings": session.scalar(select(func.count()).select_from(Listing)),
    }
    status = dict(
        session.execute(
            select(Token.metadata_status, func.count()).group_by(Token.metadata_status)
        ).all()
    )
    vectors = dict(
        session.execute(
            select(Embedding.extractor, func.count()).group_by(Embedding.extractor)
        ).all()
    )
    return StoredCounts(events, status, vectors)


def most_traded_token(session: Session, chain_id: int, contract: str) -> int | None:
    """The collection's token with the most sales (the lowest id among equals)."""
    tid = session.scalar(
        select(Token.token_id)
        .where(Token.chain_id == chain_id, Token.contract == contract)
        .order_by(Token.sale_count.desc(), Token.token_id)
        .limit(1)
    )
    return None if tid is None else int(tid)


def pipeline_progress(session: Session) -> tuple[int, int, int]:
    """Tokens resolved for good (ok or failed), distinct images stored, and vectors stored."""
    done = (
        session.scalar(select(func.count()).where(Token.metadata_status.in_(("ok", "failed")))) or 0
    )
    images = (
        session.scalar(
            select(func.count(func.distinct(Token.image_sha256))).where(
                Token.image_sha256.is_not(None)
            )
        )
        or 0
    )
    vectors = session.scalar(select(func.count()).select_from(Embedding)) or 0
    return int(done), int(images), int(vectors)
