"""Operational reads and repairs: the database's clock and a liveness probe, the follower's
position and the events ingested since a block (the service's gauges), the broker's queue depths
on kombu's SQL transport, the dead letters of metadata resolving and their re-drive through the
outbox, the CryptoPunks import's token upsert, and the counts the demo reports its progress and
its summary with."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from store.models import (
    Block,
    Checkpoint,
    Embedding,
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


# ------------------------------------------------------------------ imports


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
