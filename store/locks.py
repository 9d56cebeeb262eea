"""Postgres advisory locks: one writer per chain at a time, one leader (follower) per chain.

Advisory locks take two int4 keys: a namespace per kind of lock, and the chain id folded into
31 bits. The writer lock is transaction-scoped (``pg_advisory_xact_lock``, released at commit);
the leader lock is session-scoped and lives as long as its connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, create_engine, text

WRITER_LOCK_NS = 0x6E66  # chain writers (store.chain)
LEADER_LOCK_NS = 0x6C64  # chain leaders (listeners.leader)
BROKER_SETUP_NS = 0x6273  # creating kombu's SQL-transport tables (worker.app.prepare_broker)


def lock_key(chain_id: int) -> int:
    """The lock's second int4 key."""
    return chain_id % 2**31


def writer_lock_sql(chain_id: int) -> str:
    """The statement that waits for, then holds until commit, the chain's writer lock. The
    integers are inlined, so that it can share a round trip with other statements."""
    return f"SELECT pg_advisory_xact_lock({WRITER_LOCK_NS}, {lock_key(chain_id)})"


def try_leader_lock(conn: Connection, chain_id: int) -> bool:
    """One attempt at the chain's leader lock on ``conn`` (autocommit): True when taken."""
    return bool(
        conn.execute(
            text("SELECT pg_try_advisory_lock(:ns, :key)"),
            {"ns": LEADER_LOCK_NS, "key": lock_key(chain_id)},
        ).scalar_one()
    )


def release_leader_lock(conn: Connection, chain_id: int) -> None:
    conn.execute(
        text("SELECT pg_advisory_unlock(:ns, :key)"),
        {"ns": LEADER_LOCK_NS, "key": lock_key(chain_id)},
    )


def ping(conn: Connection) -> None:
    """A round trip on ``conn``: raises when the connection (and a lock it holds) is gone."""
    conn.execute(text("SELECT 1"))


@contextmanager
def broker_setup_lock(database_url: str) -> Iterator[None]:
    """Held by one process at a time on the database at ``database_url`` (a SQLAlchemy URL):
    processes starting together create kombu's SQL-transport tables one after another, since
    ``CREATE SEQUENCE`` races even behind ``IF NOT EXISTS`` checks."""
    engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:ns, 0)"), {"ns": BROKER_SETUP_NS})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:ns, 0)"), {"ns": BROKER_SETUP_NS})
    finally:
        engine.dispose()
