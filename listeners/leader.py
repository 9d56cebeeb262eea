"""One follower per chain: a session-level Postgres advisory lock keyed by the chain id.

The lock lives on a dedicated connection (not the pool's), so it is held exactly as long as that
connection: when the leader's process dies, Postgres ends its backend and releases the lock, and
a standby polling ``pg_try_advisory_lock`` takes over within a poll interval. The leader pings its
connection every ``keepalive`` seconds (TCP keepalives catch a silent peer); when the ping fails,
leadership is gone (the lock may already be someone else's), so the work is told to stop.

A short overlap (the old leader finishing its last batch while the new one starts) is harmless:
chain writes are serialised per chain and idempotent (``store.chain.record_batch``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.pool import NullPool

from store.locks import ping, release_leader_lock, try_leader_lock

log = logging.getLogger(__name__)


class Leader:
    """Leadership of ``chain_id`` among every process sharing the database at ``database_url``."""

    def __init__(
        self,
        database_url: str,
        chain_id: int,
        *,
        retry_interval: float = 1.0,
        keepalive: float = 2.0,
        connect_timeout: int = 5,
    ) -> None:
        self.chain_id = chain_id
        self.retry_interval = retry_interval
        self.keepalive = keepalive
        self._engine: Engine = create_engine(
            database_url,
            poolclass=NullPool,
            connect_args={
                "connect_timeout": connect_timeout,
                "keepalives": 1,
                "keepalives_idle": 5,
                "keepalives_interval": 2,
                "keepalives_count": 3,
                "application_name": f"nftwatch-leader-{chain_id}",
            },
        )
        self._conn: Connection | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None

    def try_acquire(self) -> bool:
        """One attempt; True when this process now leads."""
        if self._conn is not None:
            return True
        conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = try_leader_lock(conn, self.chain_id)
        except Exception:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def acquire(self, stop: threading.Event) -> bool:
        """Wait until this process leads (True) or ``stop`` is set (False)."""
        announced = False
        while not stop.is_set():
            try:
                if self.try_acquire():
                    log.info("chain %s: leading (follower starts)", self.chain_id)
                    return True
                if not announced:
                    log.info("chain %s: another instance leads; standing by", self.chain_id)
                    announced = True
            except Exception as exc:  # the database is restarting: keep trying
                log.warning("chain %s: leader lock unavailable: %s", self.chain_id, exc)
            stop.wait(self.retry_interval)
        return False

    def alive(self) -> bool:
        """Ping the lock's connection; False (and leadership dropped) when it is gone."""
        if self._conn is None:
            return False
        try:
            ping(self._conn)
            return True
        except Exception as exc:
            log.error("chain %s: leader connection lost (%s); stepping down", self.chain_id, exc)
            self._drop()
            return False

    def release(self) -> None:
        if self._conn is None:
            return
        # closing the connection releases the lock anyway
        with contextlib.suppress(Exception):
            release_leader_lock(self._conn, self.chain_id)
        self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def close(self) -> None:
        self.release()
        self._engine.dispose()

    def watch(self, stop: threading.Event, term: threading.Event) -> None:
        """Set ``term`` when ``stop`` is set or leadership is lost; pings every ``keepalive``."""
        next_ping = time.monotonic() + self.keepalive
        while not term.is_set():
            if stop.wait(0.2):
                break
            if time.monotonic() >= next_ping:
                if not self.alive():
                    break
                next_ping = time.monotonic() + self.keepalive
        term.set()


def lead_then_run(
    leader: Leader, work: Callable[[threading.Event], None], stop: threading.Event
) -> None:
    """Wait for leadership, then run ``work(term)``; ``term`` is set on ``stop`` or when
    leadership is lost, and ``work`` must return soon after. Leadership is released on return,
    so the caller may loop (a standby again)."""
    if not leader.acquire(stop):
        return
    term = threading.Event()
    watcher = threading.Thread(
        target=leader.watch, args=(stop, term), name="leader-keepalive", daemon=True
    )
    watcher.start()
    try:
        work(term)
    finally:
        term.set()
        watcher.join(timeout=5)
        leader.release()
