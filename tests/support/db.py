"""One-line reads of a test database, and the emptying of every table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, text

from store.models import Base


def truncate_all(url: str) -> None:
    """Every table emptied, identities restarted: the schema stays as migrated."""
    engine = create_engine(url)
    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


def scalar(db_url: str, sql: str) -> Any:
    """The first column of the first row of ``sql``, on an engine of its own."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar()
    finally:
        engine.dispose()
