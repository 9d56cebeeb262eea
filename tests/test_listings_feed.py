"""The OpenSea listings feed against a loopback Stream API and REST book (real WebSocket and
HTTP servers), recording into a real Postgres: listings stored and valued through the outbox,
retired by cancels and sales, caught up after a dropped connection without loss or doubles, a
refused key a permanent error."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from listeners.errors import FeedRefused, FeedUnavailable
from listeners.feeds.opensea import RECENT_ERRORS, FeedConfig, OpenSeaFeed
from store.models import OffchainListing, Outbox
from tests.support.opensea_stream import FakeOpenSea, ended, listed
from tests.support.polling import wait_for

KEY = "test-key-123"
SLUG = "punks"
PUNKS = "0xb47e3cd837ddf8e4c57f05d70ab865de6e193bbb"
OTHER = "0x" + "11" * 20


def order(n: int) -> str:
    return "0x" + f"{n:064x}"


@pytest.fixture
def fake() -> Iterator[FakeOpenSea]:
    server = FakeOpenSea(KEY).start()
    server.add_collection(SLUG)
    yield server
    server.stop()


def make_feed(fake: FakeOpenSea, sessions: sessionmaker[Session], key: str = KEY) -> OpenSeaFeed:
    config = FeedConfig(
        api_key=key,
        slugs={SLUG: PUNKS},
        stream_url=fake.stream_url,
        api_url=fake.api_url,
        heartbeat_s=0.5,
        timeout_s=5,
        backoff_s=0.05,
        backoff_max_s=0.2,
    )
    return OpenSeaFeed(config, sessions)


class Running:
    """The feed's run loop in a thread, stopped and joined at the end."""

    def __init__(self, feed: OpenSeaFeed) -> None:
        self.feed = feed
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.feed.run(self.stop)
        except BaseException as exc:
            self.error = exc

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        self.feed.close()
        assert not self.thread.is_alive()


def rows(sessions: sessionmaker[Session]) -> dict[str, tuple[int, str, int]]:
    with sessions() as s:
        return {
            x.order_hash: (int(x.token_id), x.status, int(x.price_wei))
            for x in s.scalars(select(OffchainListing))
        }


def valuations(sessions: sessionmaker[Session]) -> list[dict[str, Any]]:
    with sessions() as s:
        return [
            o.payload
            for o in s.scalars(
                select(Outbox).where(Outbox.task == "value", Outbox.queue == "urgent")
            )
        ]


def test_a_listing_is_stored_and_valued_urgently_and_a_cancel_or_sale_retires_it(
    fake: FakeOpenSea, sessions: sessionmaker[Session]
) -> None:
    with Running(make_feed(fake, sessions)) as run:
        assert fake.wait_joins(1)
        a = listed(SLUG, PUNKS, 7, order(1), 50 * 10**18)
        b = listed(SLUG, PUNKS, 8, order(2), 60 * 10**18)
        fake.publish(SLUG, a)
        fake.publish(SLUG, b)
        fake.publish(SLUG, listed(SLUG, OTHER, 9, order(3), 10**18))  # not the watched contract
        wait_for("the feed's rows", lambda: len(rows(sessions)) == 2, timeout=20)
        assert rows(sessions) == {
            order(1): (7, "active", 50 * 10**18),
            order(2): (8, "active", 60 * 10**18),
        }
        got = sorted(valuations(sessions), key=lambda p: p["token_id"])
        assert [(p["contract"], p["token_id"], p["reason"]) for p in got] == [
            (PUNKS, "7", "listing"),
            (PUNKS, "8", "listing"),
        ]
        fake.publish(SLUG, ended(a, "item_cancelled"))
        fake.publish(SLUG, ended(b, "item_sold"))
        fake.publish(SLUG, a)  # a late replay of the listing does not bring it back
        wait_for(
            "the feed's rows",
            lambda: {r[1] for r in rows(sessions).values()} == {"cancelled", "sold"},
        )
        assert rows(sessions)[order(1)][1] == "cancelled"
        assert rows(sessions)[order(2)][1] == "sold"
        assert len(valuations(sessions)) == 2
        assert run.error is None
        with sessions() as s:
            row = s.get(OffchainListing, ("opensea", order(2)))
            assert row is not None and row.price_eth_wei == 60 * 10**18 and row.currency == "ETH"


def test_a_dropped_connection_catches_up_over_rest_without_loss_or_doubles(
    fake: FakeOpenSea, sessions: sessionmaker[Session]
) -> None:
    before = [listed(SLUG, PUNKS, i, order(i), i * 10**18) for i in (1, 2, 3)]
    fake.publish(SLUG, before[0])  # in the book before the feed starts: found by the catch-up
    with Running(make_feed(fake, sessions)) as run:
        assert fake.wait_joins(1)
        wait_for("the feed's rows", lambda: order(1) in rows(sessions))
        fake.publish(SLUG, before[1])
        fake.publish(SLUG, before[2])
        wait_for("the feed's rows", lambda: len(rows(sessions)) == 3)
        connects = run.feed.stats.connects

        fake.go_down()  # mid-stream: the server closes the socket and refuses new ones
        during = [listed(SLUG, PUNKS, i, order(i), i * 10**18) for i in (4, 5, 6, 7, 8)]
        for message in during:
            fake.publish(SLUG, message)  # nobody is listening: only the book has them
        fake.publish(SLUG, ended(before[1], "item_cancelled"))
        fake.publish(SLUG, ended(during[0], "item_sold"))
        fake.come_back()

        # listed and sold while nobody listened: never in the book the catch-up reads, and no
        # longer a listing; every other one is found
        wait_for("the catch-up", lambda: len(rows(sessions)) == 7, timeout=30)
        wait_for("the feed's rows", lambda: rows(sessions)[order(2)][1] != "active", timeout=30)
        got = rows(sessions)
        assert run.feed.stats.connects > connects
        assert {h for h, r in got.items() if r[1] == "active"} == {
            order(i) for i in (1, 3, 5, 6, 7, 8)
        }
        # gone from the book while nobody listened: retired (cancelled or filled, not told which)
        assert got[order(2)][1] == "cancelled" and order(4) not in got
        # the listing seen both on the socket and in every catch-up is valued once
        payloads = valuations(sessions)
        assert sorted(int(p["token_id"]) for p in payloads) == [1, 2, 3, 5, 6, 7, 8]
        assert fake.rest_requests >= 1 + 3  # two catch-ups (one page, then three of two)


def test_replaying_every_message_changes_nothing(
    fake: FakeOpenSea, sessions: sessionmaker[Session]
) -> None:
    messages = [listed(SLUG, PUNKS, i, order(i), 10**18) for i in (1, 2)]
    with Running(make_feed(fake, sessions)):
        assert fake.wait_joins(1)
        for m in [*messages, ended(messages[0], "item_cancelled")]:
            fake.publish(SLUG, m)
        wait_for("the feed's rows", lambda: rows(sessions).get(order(1), (0, ""))[1] == "cancelled")
        first, outbox = rows(sessions), valuations(sessions)
        for m in [*messages, ended(messages[0], "item_cancelled"), *messages]:
            fake.publish(SLUG, m)
        fake.publish(SLUG, listed(SLUG, PUNKS, 3, order(3), 10**18))  # a marker after them
        wait_for("the feed's rows", lambda: order(3) in rows(sessions))
    after = rows(sessions)
    del after[order(3)]
    assert after == first
    assert len(valuations(sessions)) == len(outbox) + 1


def test_a_malformed_frame_is_skipped_and_the_feed_goes_on(
    fake: FakeOpenSea, sessions: sessionmaker[Session]
) -> None:
    with Running(make_feed(fake, sessions)) as run:
        assert fake.wait_joins(1)
        fake.push_raw(SLUG, "not json")
        bad = listed(SLUG, PUNKS, 1, "0x1234", 10**18)  # an order hash that is not 32 bytes
        fake.publish(SLUG, bad)
        fake.publish(SLUG, listed(SLUG, PUNKS, 2, order(2), 10**18))
        wait_for("the feed's rows", lambda: order(2) in rows(sessions))
        assert run.feed.stats.bad >= 2  # the catch-up may have read the bad one too
        assert run.error is None


def test_a_refused_key_is_a_permanent_error(
    fake: FakeOpenSea, sessions: sessionmaker[Session]
) -> None:
    feed = make_feed(fake, sessions, key="wrong")
    with pytest.raises(FeedRefused, match="refused the API key"):
        feed.run(threading.Event())
    feed.close()
    assert fake.refused == 1  # not retried
    assert not FeedRefused("x").retryable


def test_an_unreachable_stream_is_retryable(sessions: sessionmaker[Session]) -> None:
    server = FakeOpenSea(KEY).start()
    url = server.stream_url
    server.stop()
    feed = OpenSeaFeed(
        FeedConfig(KEY, {SLUG: PUNKS}, stream_url=url, api_url="http://127.0.0.1:9", backoff_s=0),
        sessions,
    )
    with pytest.raises(FeedUnavailable):
        feed.run(threading.Event(), max_attempts=2)
    feed.close()
    assert len(feed.stats.errors) == 2
    assert feed.stats.failures == 2


def test_a_feed_that_keeps_failing_keeps_only_its_latest_errors(
    sessions: sessionmaker[Session],
) -> None:
    server = FakeOpenSea(KEY).start()
    url = server.stream_url
    server.stop()
    feed = OpenSeaFeed(
        FeedConfig(KEY, {SLUG: PUNKS}, stream_url=url, api_url="http://127.0.0.1:9", backoff_s=0),
        sessions,
    )
    attempts = RECENT_ERRORS + 5
    with pytest.raises(FeedUnavailable):
        feed.run(threading.Event(), max_attempts=attempts)
    feed.close()
    assert feed.stats.failures == attempts
    assert len(feed.stats.errors) == RECENT_ERRORS


def _env(fake: FakeOpenSea, key: str = KEY) -> dict[str, str]:
    return {
        "OPENSEA_API_KEY": key,
        "NFTWATCH_OPENSEA_SLUGS": f"{PUNKS.upper().replace('0X', '0x')}={SLUG}",
        "OPENSEA_STREAM_URL": fake.stream_url,
        "OPENSEA_API_URL": fake.api_url,
    }


def test_the_service_starts_the_feed_when_the_key_is_set(
    fake: FakeOpenSea, sessions: sessionmaker[Session]
) -> None:
    from nftwatch import settings
    from nftwatch.service.listings_feed import feed_config, feed_target

    assert feed_config(settings.load({})) is None  # no key: no feed
    config = feed_config(settings.load(_env(fake)))
    assert config is not None and dict(config.slugs) == {SLUG: PUNKS}
    masked = settings.load(_env(fake)).masked()
    assert masked["opensea_api_key"] == "***" and KEY not in str(masked)
    stop = threading.Event()
    # the thread nftwatch run starts, with the settings nftwatch run reads
    thread = threading.Thread(target=feed_target(config, sessions, stop), daemon=True)
    thread.start()
    try:
        assert fake.wait_joins(1)
        fake.publish(SLUG, listed(SLUG, PUNKS, 5, order(5), 10**18))
        wait_for("the listing", lambda: order(5) in rows(sessions))
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()


def test_the_one_shot_command_catches_up_the_book(
    fake: FakeOpenSea, sessions: sessionmaker[Session], db_url: str, tmp_path: Any
) -> None:
    import json
    import os
    import subprocess
    import sys

    for i in (1, 2, 3):
        fake.publish(SLUG, listed(SLUG, PUNKS, i, order(i), 10**18))
    env = {
        **os.environ,
        **_env(fake),
        "DATABASE_URL": db_url,
        "NFTWATCH_DATA_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-m", "nftwatch.cli", "listings-feed", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["new"] == 3
    assert set(rows(sessions)) == {order(1), order(2), order(3)}
    refused = subprocess.run(
        [sys.executable, "-m", "nftwatch.cli", "listings-feed"],
        env={**env, "OPENSEA_API_KEY": "wrong"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 1
    assert "FeedRefused" in refused.stderr and "wrong" not in refused.stderr
