"""The outbox over months: the resend scan looks only at the recent window of sent rows (through
the partial index of migration 0003), and the sweep deletes sent rows past their retention,
never an unsent one or a recent one."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import create_engine, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from nftwatch.service import prune_sent, resend_unfinished
from store import outbox
from store.models import Outbox

NOW = dt.datetime(2030, 6, 1, tzinfo=dt.UTC)
DAY = 86400.0


def _embed_rows(factory: sessionmaker[Session], sent_days_ago: dict[str, float | None]) -> None:
    """One embed message per key, for an image with no embedding yet (its work undone)."""
    with factory.begin() as s:
        for key, age in sent_days_ago.items():
            outbox.enqueue(s, "embed", "embed", {"image_sha256": key * 64}, dedupe_key=key)
            if age is not None:
                s.execute(
                    update(Outbox)
                    .where(Outbox.dedupe_key == key)
                    .values(sent_at=NOW - dt.timedelta(days=age))
                )


def _sent(factory: sessionmaker[Session]) -> dict[str, bool]:
    with factory() as s:
        return {k: at is not None for k, at in s.execute(select(Outbox.dedupe_key, Outbox.sent_at))}


def test_resend_looks_only_at_the_recent_window(db_url: str) -> None:
    engine = create_engine(db_url)
    factory = sessionmaker(engine)
    try:
        # sent 10 minutes ago (too recent), 2 hours ago (lost: send again), 3 days ago (past
        # the horizon: finished or out of attempts by now, left alone), never sent
        _embed_rows(factory, {"a": 10 / 1440, "b": 2 / 24, "c": 3.0, "d": None})
        resent = resend_unfinished(factory, NOW, 900, ("gradient-v1",), horizon=DAY)
        assert resent == 1
        assert _sent(factory) == {"a": True, "b": False, "c": True, "d": False}
        # a horizon shorter than four resend periods is widened: a row is always looked at
        # several times before it leaves the window
        _embed_rows(factory, {"e": 2.5})
        _embed_rows(factory, {"f": 5.0})
        assert resend_unfinished(factory, NOW, DAY, ("gradient-v1",), horizon=60) == 2
        assert _sent(factory) == {k: k in "af" for k in "abcdef"}
    finally:
        engine.dispose()


def test_prune_deletes_only_sent_rows_past_retention(db_url: str) -> None:
    engine = create_engine(db_url)
    factory = sessionmaker(engine)
    try:
        ages: dict[str, float | None] = {f"old{i}": 40.0 + i for i in range(7)}
        ages |= {"recent": 2.0, "unsent": None}
        _embed_rows(factory, ages)
        with factory.begin() as s:  # an unsent row created long ago stays too
            s.execute(
                update(Outbox)
                .where(Outbox.dedupe_key == "unsent")
                .values(created_at=NOW - dt.timedelta(days=90))
            )
        assert prune_sent(factory, NOW, 30 * DAY, batch=3) == 7
        assert _sent(factory) == {"recent": True, "unsent": False}
        assert prune_sent(factory, NOW, 30 * DAY) == 0
    finally:
        engine.dispose()


def test_migration_built_the_partial_index_of_sent_rows(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                    "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'ix_outbox_sent'"
                )
            ).one()
            assert row[0] is True
            assert "(sent_at)" in row[1] and "WHERE (sent_at IS NOT NULL)" in row[1]
            # the scan's window is answerable from the index alone
            conn.execute(text("SET enable_seqscan = off"))
            plan = "\n".join(
                r[0]
                for r in conn.execute(
                    text(
                        "EXPLAIN SELECT id FROM outbox WHERE sent_at < now() "
                        "AND sent_at >= now() - interval '1 day'"
                    )
                )
            )
            assert "ix_outbox_sent" in plan, plan
    finally:
        engine.dispose()
