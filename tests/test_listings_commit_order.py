"""The listing stream's valuations in commit-safe order, on a real Postgres: a valuation whose
transaction commits after a later one's is still handed out, and cursors of every format
resume; the migration that stamps them."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from nftwatch.api import create_app
from nftwatch.api.listings import Cursor
from store import listings
from store.models import Valuation
from tests.support.seed import CHAIN, KEY, add_listing, add_token, add_valuation


def _valued(rows: list[listings.ListedToken]) -> set[int]:
    return {int(r.listing.token_id) for r in rows if r.valuation is not None}


def test_a_valuation_that_commits_late_is_not_skipped(factory: sessionmaker[Session]) -> None:
    with factory.begin() as s:
        for token in (1, 2):
            add_token(s, token)
            add_listing(s, token, 10 + token, 5.0)
    with factory() as s:
        start = listings.head(s)
    slow = factory()
    slow.begin()
    first = add_valuation(slow, 1, 2.0)  # takes the lower id, commits last
    with factory.begin() as s:
        second = add_valuation(s, 2, 3.0)
    assert first < second
    with factory() as s:
        rows, after = listings.changes(s, start, 50)
    # token 2's valuation waits behind the running transaction instead of passing it by
    assert _valued(rows) == set() and after == start
    slow.commit()
    slow.close()
    with factory() as s:
        rows, after = listings.changes(s, start, 50)
        xids = dict(s.execute(select(Valuation.id, Valuation.change_xid)).all())
    assert _valued(rows) == {1, 2}
    assert (after.valuation_xid, after.valuation_id) == max((xids[v], v) for v in xids)
    with factory() as s:
        again, _ = listings.changes(s, after, 50)
        assert listings.head(s) == after
    assert _valued(again) == set()


def test_cursors_of_every_format_resume(factory: sessionmaker[Session]) -> None:
    with factory.begin() as s:
        add_token(s, 1)
        add_listing(s, 1, 10, 5.0)
        old = add_valuation(s, 1, 2.0)
    with factory.begin() as s:
        new = add_valuation(s, 1, 2.5)
    for legacy in (f"10-0-{old}", f"10-0-{old}-0-0"):  # before valuations carried their xid
        cursor = Cursor.decode(legacy)
        assert cursor.valuation_xid == -1 and cursor.valuation_id == old
        assert cursor.encode() == f"10-0-{old}-0-0"  # nothing new read: still the old format
        with factory() as s:
            rows, after = listings.changes(s, cursor, 50)
        assert [r.valuation.id for r in rows if r.valuation] == [new]
        assert after.valuation_id == new and after.valuation_xid > 0
        assert Cursor.decode(Cursor(*after).encode()) == after
    with factory() as s:
        head = Cursor(*listings.head(s))
    assert head.encode().count("-") == 5 and head.valuation_id == new
    for bad in (f"10-0-{old}-0-0-x", f"10-0-{old}-0-0-{2**63}", f"10-0-{old}-0-0-1-2"):
        with pytest.raises(ValueError, match="cursor"):
            Cursor.decode(bad)


@pytest.fixture
def fresh_pg() -> Iterator[str]:
    from nftwatch.localstack.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(Path(tempfile.mkdtemp()), persistent=False)
    yield server.start()
    server.stop()


_VALUATION = (
    "INSERT INTO valuations (chain_id, contract, token_id, model_version, p_liquid, "
    "confidence, explanation, inputs) VALUES (1, '0x' || repeat('1', 40), 7, 'm', 0.5, 0.5, "
    "'{}', '{}') RETURNING id"
)


def test_migration_stamps_old_valuations_zero_and_new_ones_with_their_transaction(
    fresh_pg: str,
) -> None:
    from alembic import command

    from store.db import _alembic_config, upgrade

    upgrade(fresh_pg, "0012")
    engine = create_engine(fresh_pg)
    with engine.begin() as c:
        old = c.execute(text(_VALUATION)).scalar_one()
    upgrade(fresh_pg)
    with engine.begin() as c:
        new = c.execute(text(_VALUATION)).scalar_one()
        xid = c.execute(text("SELECT pg_current_xact_id()::text::bigint")).scalar_one()
    with engine.connect() as c:
        stamps: dict[int, int] = dict(
            c.execute(text("SELECT id, change_xid FROM valuations")).all()
        )
    assert stamps == {old: 0, new: xid}
    command.downgrade(_alembic_config(fresh_pg), "0012")
    with engine.connect() as c:
        columns = c.execute(
            text(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'valuations'"
            )
        ).scalars()
        assert "change_xid" not in set(columns)
    engine.dispose()


def _event_ids(client: TestClient, url: str, headers: dict[str, str] | None = None) -> list[str]:
    with client.stream("GET", url, headers=headers or {}) as r:
        assert r.status_code == 200
        return [line[4:] for line in r.iter_lines() if line.startswith("id: ")]


def test_a_stream_resumed_from_an_old_cursor_hands_out_ids_it_accepts(
    factory: sessionmaker[Session],
) -> None:
    with factory.begin() as s:
        add_token(s, 1)
        add_listing(s, 1, 10, 5.0)
        seen = add_valuation(s, 1, 2.0)
    app = create_app(factory, api_keys=[KEY], chain_id_default=CHAIN)
    with TestClient(app, headers={"X-API-Key": KEY}) as client:
        ids = _event_ids(client, f"/v1/listings/stream?cursor=10-0-{seen}&duration=1")
        assert ids  # the stream says where it stands even when nothing changed
        for event_id in ids:
            again = _event_ids(
                client, "/v1/listings/stream?duration=1", {"Last-Event-ID": event_id}
            )
            assert again
