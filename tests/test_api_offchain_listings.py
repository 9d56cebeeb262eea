"""Off-chain listings (the OpenSea feed's, stored by ``store.orders``) reach the desk's API
beside on-chain offers: in the recent listings with their venue, in the resumable stream once
each, and out of the active view when retired."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from nftwatch.api import create_app
from store import orders
from tests.support.seed import CHAIN, CONTRACT, KEY, WEI, add_listing, add_token, add_valuation
from tests.test_api import read_events

ORDER = "0x" + "ab" * 32


def order(status: str, price: float = 6.5, at: int = 0) -> orders.OrderEvent:
    when = dt.datetime(2024, 7, 3, tzinfo=dt.UTC) + dt.timedelta(minutes=at)
    return orders.OrderEvent(
        marketplace="opensea",
        order_hash=ORDER,
        status=status,
        chain_id=CHAIN,
        contract=CONTRACT,
        token_id=5,
        price_wei=int(price * WEI),
        currency="ETH",
        price_eth_wei=int(price * WEI),
        maker="0x" + "55" * 20,
        listed_at=when,
        expires_at=None,
        event_at=when,
    )


@pytest.fixture
def client(factory: sessionmaker[Session]) -> Iterator[TestClient]:
    app = create_app(factory, api_keys=[KEY], chain_id_default=CHAIN)
    with TestClient(app, headers={"X-API-Key": KEY}) as c:
        yield c


def test_an_offchain_listing_is_listed_streamed_once_and_retired(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    with factory.begin() as s:
        add_token(s, 1)
        add_token(s, 5)
        add_listing(s, 1, 10, 5.0)  # an on-chain offer beside it
    start = client.get("/v1/listings/recent").json()["cursor"]
    with factory.begin() as s:
        orders.record(s, [order("active")])
    recent = client.get("/v1/listings/recent").json()["listings"]
    venues = {(x["venue"], x["token_id"]) for x in recent}
    assert venues == {("opensea", "5"), ("onchain", "1")}
    offchain = next(x for x in recent if x["venue"] == "opensea")
    assert offchain["order_hash"] == ORDER and offchain["price_eth"] == 6.5
    assert offchain["status"] == "active" and offchain["block_number"] is None

    events = read_events(client, f"/v1/listings/stream?cursor={start}&duration=2")
    assert [(b["venue"], b["status"]) for _, b in events] == [("opensea", "active")]
    last = events[-1][0]
    assert read_events(client, "/v1/listings/stream?duration=1", {"Last-Event-ID": last}) == []

    with factory.begin() as s:  # valued, then cancelled: each reaches the stream once
        add_valuation(s, 5, 6.0)
    with factory.begin() as s:
        orders.record(s, [order("cancelled", at=5)])
    later = read_events(client, "/v1/listings/stream?duration=2", {"Last-Event-ID": last})
    statuses = [b["status"] for _, b in later if b["venue"] == "opensea"]
    assert statuses[-1] == "cancelled" and statuses.count("cancelled") == 1
    assert {x["venue"] for x in client.get("/v1/listings/recent").json()["listings"]} == {"onchain"}
    # a cursor of the earlier three-part form still resumes: the off-chain change comes again
    old = "-".join(start.split("-")[:3])
    replay = read_events(client, f"/v1/listings/stream?cursor={old}&duration=2")
    assert [b["status"] for _, b in replay if b["venue"] == "opensea"][-1] == "cancelled"
