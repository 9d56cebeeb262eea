"""The outbox: rows written in the recording transaction, claimed and marked sent by the
dispatcher only after the broker accepted them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
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
