"""The service's periodic sweeps: re-queue tokens due a retry or a recheck, send again outbox
rows whose work never finished, delete long-sent ones."""

from __future__ import annotations

import datetime as dt
import logging
import threading

from sqlalchemy.orm import Session, sessionmaker

from store import outbox, tokens

log = logging.getLogger(__name__)

# Sent outbox rows are kept this long (seconds), then deleted by the sweep.
OUTBOX_RETENTION = 30 * 86400.0


def _requeue(s: Session, due: list[tokens.Due], kind: str) -> None:
    for chain_id, contract, token_id, at in due:
        # keyed by the time that made it due: attempts restart after a success, the time never
        # repeats
        outbox.enqueue(
            s,
            "resolve",
            "resolve",
            {"chain_id": chain_id, "contract": contract, "token_id": str(token_id)},
            dedupe_key=f"{kind}:{chain_id}:{contract}:{token_id}:{_stamp(at)}",
        )


def _stamp(at: dt.datetime | None) -> str:
    return f"{at.timestamp():.6f}" if at is not None else "-"


def sweep_retries(factory: sessionmaker[Session], now: dt.datetime, limit: int = 500) -> int:
    """Re-queue tokens whose retry time has come (Retryable failures, with backoff)."""
    with factory.begin() as s:
        due = tokens.due_retries(s, now, limit)
        _requeue(s, due, "retry")
    return len(due)


def sweep_stale(
    factory: sessionmaker[Session], now: dt.datetime, ttl: float, limit: int = 500
) -> int:
    """Re-queue resolved tokens whose http(s) metadata is older than ``ttl`` seconds, oldest
    first; once per resolution (the key carries the resolve time)."""
    with factory.begin() as s:
        due = tokens.stale_resolved(s, now - dt.timedelta(seconds=ttl), limit)
        _requeue(s, due, "recheck")
    return len(due)


def resend_unfinished(
    factory: sessionmaker[Session],
    now: dt.datetime,
    resend_after: float,
    extractors: tuple[str, ...],
    max_attempts: int = 20,
    horizon: float = 86400.0,
) -> int:
    """Mark unsent again the outbox rows sent more than ``resend_after`` seconds ago (and less
    than ``horizon``, at least four times ``resend_after``) whose work is not done (token still
    pending, image short of an extractor's embedding); the dispatcher sends them again. Returns
    how many.

    Such a row lost its message: Redis restarted without persistence, or a worker was SIGKILLed
    and its acked-late message waits out the visibility timeout. Sending it again is safe
    because every task is idempotent. An unfinished row is sent again every ``resend_after``, so
    one older than the horizon is finished or out of attempts."""
    with factory.begin() as s:
        return outbox.unsend_unfinished(
            s,
            sent_before=now - dt.timedelta(seconds=resend_after),
            sent_after=now - dt.timedelta(seconds=max(horizon, 4 * resend_after)),
            max_attempts=max_attempts,
            extractors=extractors,
        )


def prune_sent(
    factory: sessionmaker[Session], now: dt.datetime, retention: float, batch: int = 5000
) -> int:
    """Delete outbox rows sent more than ``retention`` seconds ago, ``batch`` rows a transaction
    (short locks); returns how many. Their work is done or dead-lettered by then; only a
    re-recording of an event that old (a backfill run again over its range) sends its idempotent
    task once more."""
    before = now - dt.timedelta(seconds=retention)
    total = 0
    while True:
        with factory.begin() as s:
            deleted = outbox.delete_sent(s, before, batch)
        total += deleted
        if deleted < batch:
            return total


def run_sweeps(
    factory: sessionmaker[Session],
    stop: threading.Event,
    interval: float,
    resend_after: float = 900.0,
    extractors: tuple[str, ...] = (),
    recheck_ttl: float = 86400.0,
    retention: float = OUTBOX_RETENTION,
) -> None:
    """Every ``interval`` seconds until ``stop``, run each sweep."""
    while not stop.wait(interval):
        try:
            now = dt.datetime.now(dt.UTC)
            sweep_retries(factory, now)
            sweep_stale(factory, now, recheck_ttl)
            prune_sent(factory, now, retention)
            if extractors:
                resent = resend_unfinished(factory, now, resend_after, extractors)
                if resent:
                    log.warning("re-sending %d outbox rows whose work never finished", resent)
        except Exception:  # the database is restarting: try again next round
            log.exception("retry sweep failed")
