"""Postgres advisory locks: one writer per chain at a time, one leader (follower) per chain.

Advisory locks take two int4 keys: a namespace per kind of lock, and the chain id folded into
31 bits. The writer lock is transaction-scoped (``pg_advisory_xact_lock``, released at commit);
the leader lock is session-scoped and lives as long as its connection.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

WRITER_LOCK_NS = 0x6E66  # chain writers (store.chain)
LEADER_LOCK_NS = 0x6C64  # chain leaders (listeners.leader)


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
