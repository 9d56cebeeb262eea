"""A collection's statistics, read in one statement: its counts, the 30-day window ending at
``as_of`` or at the database's now, and nothing for a contract nobody knows."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from store import market, tokens
from store.ops import database_now
from tests.support.seed import CHAIN, CONTRACT, add_listing, add_sale, add_token

OTHER = "0x" + "cd" * 20
DAY = dt.timedelta(days=1)


def test_counts_and_the_window_ending_at_as_of(factory: sessionmaker[Session]) -> None:
    end = dt.datetime(2024, 6, 30, 12, tzinfo=dt.UTC)
    with factory.begin() as s:
        tokens.upsert_collection(s, CHAIN, CONTRACT, name="Things")
        for i in range(1, 5):
            add_token(s, i)
        for n, eth in enumerate([1.0, 2.0, 3.0]):
            add_sale(s, 1 + n, eth, end - (n + 1) * DAY, n)
        add_sale(s, 4, 50.0, end - 31 * DAY, 7)  # before the window
        add_sale(s, 4, 60.0, end + DAY, 8)  # after it
        add_sale(s, 4, 70.0, end - 30 * DAY, 9)  # on its open start: out
        add_sale(s, 4, 0.5, end, 10)  # on its closed end: in
        add_listing(s, 1, 300, 4.0)
        add_listing(s, 2, 301, 5.0)
    with factory() as s:
        stats = market.collection_stats(s, CHAIN, CONTRACT, end)
    assert stats is not None
    assert stats.name == "Things"
    assert (stats.token_count, stats.sales_count, stats.listings_count) == (4, 7, 2)
    assert (stats.window_start, stats.window_end) == (end - 30 * DAY, end)
    assert stats.window_sales == 4
    assert stats.median_eth == pytest.approx(1.5)  # of 0.5, 1, 2, 3
    assert stats.floor_eth == pytest.approx(0.65)  # 30 % of the way from 0.5 to 1


def test_the_default_window_ends_at_the_database_now(factory: sessionmaker[Session]) -> None:
    with factory.begin() as s:
        now = database_now(s)
        add_token(s, 1)  # tokens alone make a collection known, unnamed
        add_sale(s, 1, 2.0, now - DAY, 0)
    with factory() as s:
        # a zone with daylight saving: the window stays 30 x 24 hours, not 30 calendar days
        s.execute(text("SET TIME ZONE 'America/New_York'"))
        before = database_now(s)
        stats = market.collection_stats(s, CHAIN, CONTRACT)
    assert stats is not None and stats.name is None
    assert stats.window_end == before  # the same transaction's now()
    assert stats.window_end - stats.window_start == 30 * DAY
    assert (stats.window_sales, stats.median_eth) == (1, pytest.approx(2.0))


def test_an_unknown_contract_has_no_stats(factory: sessionmaker[Session]) -> None:
    with factory.begin() as s:
        add_token(s, 1)
    with factory() as s:
        assert market.collection_stats(s, CHAIN, OTHER) is None
        assert market.collection_stats(s, CHAIN + 1, CONTRACT) is None
