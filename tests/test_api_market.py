"""The market routes against the real Postgres: a collection's daily index from seeded sales
with traits, and a token's live book (its ask, its bids, its collection's floor ask)."""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from nftwatch.api import create_app
from store import orders
from tests.support.seed import (
    CHAIN,
    CONTRACT,
    KEY,
    WEI,
    ZERO,
    add_order,
    add_sale,
    add_token,
    marketplace_ask,
)

START = dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0) - (
    dt.timedelta(days=80)
)
TOKENS = 40
MIXED_DAYS = 60  # two sales a day, a crown and a cap, while the market doubles
CROWN_DAYS = 5  # then crowns only: a raw median jumps, the trait-adjusted level does not


def crown(token_id: int) -> bool:
    return token_id % 2 == 0


def base(day: float) -> float:
    return 2 ** (day / MIXED_DAYS)


@pytest.fixture
def client(factory: sessionmaker[Session]) -> Iterator[TestClient]:
    app = create_app(factory, api_keys=[KEY], chain_id_default=CHAIN)
    with TestClient(app, headers={"X-API-Key": KEY}) as c:
        yield c


def seed_market(factory: sessionmaker[Session]) -> list[tuple[int, int, float]]:
    """The sales seeded: (day, token, price)."""
    sold = []
    with factory.begin() as s:
        for t in range(TOKENS):
            hat = "Crown" if crown(t) else "Cap"
            add_token(s, t, attributes=[{"trait_type": "Hat", "value": hat}])
        n = 0
        for day in range(MIXED_DAYS + CROWN_DAYS):
            for k in range(2):
                token = (2 * n + (k if day < MIXED_DAYS else 0)) % TOKENS
                noise = 1 + 0.02 * ((n * 7) % 5 - 2)
                price = base(day) * (2.0 if crown(token) else 1.0) * noise
                at = START + dt.timedelta(days=day, hours=k)
                # a different pair of wallets each time: no sale looks like a wash
                add_sale(
                    s, token, price, at, n, seller=f"0x{2 * n:040x}", buyer=f"0x{2 * n + 1:040x}"
                )
                sold.append((day, token, price))
                n += 1
    return sold


def test_the_index_is_one_trait_adjusted_point_per_day_with_its_sales(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    sold = seed_market(factory)
    r = client.get(f"/v1/collections/{CHAIN}/{CONTRACT}/index")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["trait_adjusted"] is True and body["sales_read"] == len(sold)
    assert body["wash_excluded"] == {} and body["n_sales"] == 20
    points = body["points"]
    days = [
        (START + dt.timedelta(days=d)).date().isoformat() for d in sorted({d for d, *_ in sold})
    ]
    assert [p["day"] for p in points] == days[len(days) - len(points) :]
    assert all(p["sales"] == 2 for p in points)
    assert points[-1]["window_sales"] == 20
    level = {p["day"]: p["level_eth"] for p in points}
    last_mixed, last = days[MIXED_DAYS - 1], days[-1]
    # the market grew by 2 ** (39 / 60) from day 20 to day 59; the index followed it
    assert level[last_mixed] / level[days[20]] == pytest.approx(base(39), rel=0.1)
    # five days of crowns only: the raw median of the last 20 sales jumps by a third, the
    # index moves with the market alone (2 ** (5 / 60): +6 %)
    mixed = [p for d, _, p in sold if d < MIXED_DAYS][-20:]
    assert statistics.median(p for *_, p in sold[-20:]) / statistics.median(mixed) > 1.25
    assert level[last] / level[last_mixed] == pytest.approx(base(CROWN_DAYS), rel=0.08)


def test_the_index_window_and_end_are_the_callers(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    seed_market(factory)
    url = f"/v1/collections/{CHAIN}/{CONTRACT}/index"
    recent = client.get(url, params={"days": 20}).json()["points"]
    today = dt.datetime.now(dt.UTC).date()
    sale_days = sorted({(START + dt.timedelta(days=d)).date() for d in range(MIXED_DAYS + 5)})
    assert [p["day"] for p in recent] == [d.isoformat() for d in sale_days if (today - d).days < 20]
    cut = START + dt.timedelta(days=30)
    early = client.get(url, params={"as_of": cut.isoformat()}).json()
    assert early["as_of"] == cut.isoformat()
    assert early["sales_read"] == 60
    assert max(p["day"] for p in early["points"]) == (cut - dt.timedelta(days=1)).date().isoformat()
    # the level of an average token on day 29: between a cap's and a crown's price then
    mid = early["points"][-1]["level_eth"]
    assert base(29) * 0.95 < mid < 2 * base(29) * 1.05


@pytest.mark.parametrize(
    ("query", "needle"),
    [("days=0", "days"), ("days=3651", "days"), ("as_of=0001-01-01T00:00:00", "as_of")],
)
def test_index_parameters_out_of_bounds_are_422(
    client: TestClient, query: str, needle: str
) -> None:
    r = client.get(f"/v1/collections/{CHAIN}/{CONTRACT}/index?{query}")
    assert r.status_code == 422 and needle in r.text


def test_an_unknown_collection_has_no_index(client: TestClient) -> None:
    r = client.get(f"/v1/collections/{CHAIN}/{'0x' + 'ef' * 20}/index")
    assert r.status_code == 404


def test_a_tokens_book_names_its_ask_its_bid_and_the_collection_floor(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    bidder = "0x" + "77" * 20
    with factory.begin() as s:
        for t in (1, 2, 3, 4):
            add_token(s, t)
        add_order(s, 1, 10, "offered", 5.0, ZERO)
        add_order(s, 1, 11, "bid", 4.0, bidder)
        add_order(s, 2, 12, "offered", 3.0, ZERO)
        add_order(s, 2, 13, "withdrawn", None, ZERO)  # no longer for sale
        add_order(s, 3, 14, "offered", 1.0, "0x" + "99" * 20)  # for one buyer only: no ask
        orders.record(s, [marketplace_ask(1, 4.5, "ab"), marketplace_ask(4, 3.5, "cd")])
    book = client.get(f"/v1/tokens/{CHAIN}/{CONTRACT}/1/orders").json()
    assert book["ask"] == {
        "token_id": "1",
        "price_wei": str(int(4.5 * WEI)),
        "price_eth": 4.5,
        "venue": "opensea",
    }
    assert book["bids"] == [
        {"price_wei": str(4 * WEI), "price_eth": 4.0, "venue": "on-chain bid", "bidder": bidder}
    ]
    assert book["floor_ask"]["token_id"] == "4" and book["floor_ask"]["price_eth"] == 3.5
    none = client.get(f"/v1/tokens/{CHAIN}/{CONTRACT}/3/orders").json()
    assert none["ask"] is None and none["bids"] == [] and none["floor_ask"]["token_id"] == "4"
    assert client.get(f"/v1/tokens/{CHAIN}/{CONTRACT}/9/orders").status_code == 404


def test_a_new_sale_shows_in_the_index_at_once(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    sold = seed_market(factory)
    url = f"/v1/collections/{CHAIN}/{CONTRACT}/index"
    before = client.get(url).json()
    assert client.get(url).json() == before  # the same sales: the same answer
    today = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    with factory.begin() as s:
        n = len(sold)
        add_sale(s, 1, 3.0, today, n, seller=f"0x{2 * n:040x}", buyer=f"0x{2 * n + 1:040x}")
    after = client.get(url).json()
    assert after["sales_read"] == before["sales_read"] + 1
    assert after["points"][-1]["day"] == today.date().isoformat()
    assert after["points"][-1]["sales"] == 1
