"""One-line reads of a test database, and the emptying of every table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import TextClause, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from store.models import Base


def _truncate_every_table() -> TextClause:
    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    return text(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


def truncate_all(url: str) -> None:
    """Every table emptied, identities restarted: the schema stays as migrated."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(_truncate_every_table())
    engine.dispose()


def truncate(factory: sessionmaker[Session]) -> None:
    """``truncate_all`` through a test's own sessionmaker."""
    with factory.begin() as s:
        s.execute(_truncate_every_table())


def scalar(db_url: str, sql: str) -> Any:
    """The first column of the first row of ``sql``, on an engine of its own."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar()
    finally:
        engine.dispose()
