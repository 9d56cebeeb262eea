"""The HTTP API against the real Postgres: keys, validation, bodies, neighbours from real halfvec
rows, and the request-and-wait valuation flow with a thread standing in for the worker."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from nftwatch.api import create_app
from store import tokens
from store.db import make_engine, make_sessionmaker
from store.models import Listing, Outbox, Transfer, Valuation
from store.vectors import ensure_vector_index, store_embeddings
from tests.support.seed import (
    CHAIN,
    CONTRACT,
    KEY,
    PNG,
    WEI,
    add_listing,
    add_sale,
    add_token,
    add_valuation,
    sha,
)

OTHER = "0x" + "cd" * 20
EXTRACTOR = "test-8d"


@pytest.fixture
def client(factory: sessionmaker[Session]) -> Iterator[TestClient]:
    app = create_app(factory, api_keys=[KEY, "second-key"], chain_id_default=CHAIN)
    with TestClient(app, headers={"X-API-Key": KEY}) as c:
        yield c


def test_refuses_to_start_without_keys(factory: sessionmaker[Session]) -> None:
    with pytest.raises(ValueError, match="no API keys"):
        create_app(factory, api_keys=[])
    open_app = create_app(factory, api_keys=[], allow_anonymous=True)
    with TestClient(open_app) as c:
        assert c.get(f"/v1/collections/{CHAIN}/{CONTRACT}/stats").status_code == 404


def test_every_v1_route_needs_a_valid_key(client: TestClient, factory: sessionmaker) -> None:
    with factory.begin() as s:
        add_token(s, 1)
    spec = client.get("/openapi.json").json()["paths"]
    routes = [(m, p) for p, item in spec.items() if p.startswith("/v1/") for m in item]
    assert len(routes) >= 6
    for method, path in routes:
        url = path.format(chain_id=CHAIN, contract=CONTRACT, token_id=1)
        for headers in (
            {"X-API-Key": ""},
            {"X-API-Key": "wrong"},
            {"X-API-Key": "", "Authorization": "Bearer x"},
            {"X-API-Key": "", "Authorization": f"Basic {KEY}"},
        ):
            r = client.request(method.upper(), url, headers=headers)
            assert r.status_code == 401, (url, headers, r.text)
    assert client.get(f"/v1/tokens/{CHAIN}/{CONTRACT}/1").status_code == 200
    bearer = client.get(
        f"/v1/tokens/{CHAIN}/{CONTRACT}/1",
        headers={"X-API-Key": "", "Authorization": "Bearer second-key"},
    )
    assert bearer.status_code == 200


def test_healthz_needs_no_key_and_fails_without_database(client: TestClient, db_url: str) -> None:
    r = client.get("/healthz", headers={"X-API-Key": ""})
    assert r.status_code == 200
    assert r.json()["status"] == "ok" and r.json()["database"] == "ok"
    dead = make_sessionmaker(make_engine("postgresql://nobody@127.0.0.1:1/none"))
    with TestClient(create_app(dead, api_keys=[KEY])) as c:
        assert c.get("/healthz").status_code == 503


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        (f"/v1/tokens/{CHAIN}/0x1234/1", "40 hex"),
        (f"/v1/tokens/{CHAIN}/{'0x' + 'zz' * 20}/1", "40 hex"),
        (f"/v1/tokens/{CHAIN}/{CONTRACT}/{2**256}", "2**256-1"),
        (f"/v1/tokens/{CHAIN}/{CONTRACT}/-1", "decimal"),
        (f"/v1/tokens/{CHAIN}/{CONTRACT}/0x10", "decimal"),
        (f"/v1/tokens/0/{CONTRACT}/1", "positive"),
        (f"/v1/tokens/{CHAIN}/{CONTRACT}/1/similar?k=0", "k"),
        (f"/v1/tokens/{CHAIN}/{CONTRACT}/1/similar?k=101", "k"),
        (f"/v1/valuations/{CHAIN}/{CONTRACT}/1?wait=31", "wait"),
    ],
)
def test_validation_is_422_with_a_clear_message(client: TestClient, path: str, needle: str) -> None:
    method = "POST" if "wait=" in path else "GET"
    r = client.request(method, path)
    assert r.status_code == 422, r.text
    assert needle in r.text


def test_largest_token_id_and_upper_case_address_are_accepted(
    client: TestClient, factory: sessionmaker
) -> None:
    big = 2**256 - 1
    with factory.begin() as s:
        add_token(s, big)
    r = client.get(f"/v1/tokens/{CHAIN}/{CONTRACT.upper().replace('0X', '0x')}/{big}")
    assert r.status_code == 200, r.text
    assert r.json()["token_id"] == str(big) and r.json()["contract"] == CONTRACT


def test_token_body_image_and_404s(client: TestClient, factory: sessionmaker) -> None:
    t0 = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    with factory.begin() as s:
        add_token(
            s,
            7,
            transfer_count=3,
            sale_count=2,
            last_sale_wei=Decimal(2 * WEI),
            last_sale_at=t0 + dt.timedelta(days=3),
        )
        add_sale(s, 7, 1.5, t0, 1)
        add_sale(s, 7, 2.0, t0 + dt.timedelta(days=3), 2)
        add_sale(s, 8, 9.0, t0, 3)  # another token's sale stays out
    body = client.get(f"/v1/tokens/{CHAIN}/{CONTRACT}/7").json()
    assert body["metadata"] == {"name": "Thing #7"}
    assert body["owner"] == "0x" + "11" * 20
    assert body["image"]["sha256"] == sha(7) and body["image"]["uri"] == "ipfs://cid/7.png"
    assert (body["transfer_count"], body["sale_count"]) == (3, 2)
    assert body["last_sale"]["price_eth"] == 2.0 and body["last_sale"]["price_wei"] == str(2 * WEI)
    assert [x["price_eth"] for x in body["sales"]] == [2.0, 1.5]
    image = client.get(body["image"]["url"])
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.content == PNG + bytes([7])
    assert client.get(f"/v1/tokens/{CHAIN}/{CONTRACT}/8").status_code == 404
    assert client.get(f"/v1/tokens/{CHAIN}/{CONTRACT}/8/image").status_code == 404


def test_valuation_get_is_the_latest_or_404(client: TestClient, factory: sessionmaker) -> None:
    url = f"/v1/valuations/{CHAIN}/{CONTRACT}/5"
    assert client.get(url).status_code == 404
    with factory.begin() as s:
        add_valuation(s, 5, 1.0)
    with factory.begin() as s:
        newest = add_valuation(s, 5, 3.0)
    body = client.get(url).json()
    assert body["id"] == newest and body["price_eth"] == 3.0
    assert body["interval_eth"] == [pytest.approx(2.4), pytest.approx(3.75)]
    assert body["explanation"] == {"method": "test", "drivers": ["Hat: Cap"]}
    assert body["token_id"] == "5" and body["model_version"] == "test-1"


def test_post_valuation_queues_and_answers_202_when_nothing_values_it(
    client: TestClient, factory: sessionmaker
) -> None:
    with factory.begin() as s:
        add_token(s, 5)
        add_valuation(s, 5, 1.0)  # an older valuation is not an answer to a new request
    r = client.post(f"/v1/valuations/{CHAIN}/{CONTRACT}/5?wait=0")
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/v1/valuations/{CHAIN}/{CONTRACT}/5"
    r2 = client.post(f"/v1/valuations/{CHAIN}/{CONTRACT}/5?wait=0")
    assert r2.status_code == 202
    with factory() as s:
        rows = list(s.scalars(select(Outbox).order_by(Outbox.id)))
    assert len(rows) == 2  # each desk request is its own message
    assert rows[0].task == "value" and rows[0].queue == "urgent"
    assert rows[0].payload == {
        "chain_id": CHAIN,
        "contract": CONTRACT,
        "token_id": "5",
        "reason": "desk",
    }
    assert rows[0].dedupe_key.startswith(f"desk:{CHAIN}:{CONTRACT}:5:")


def test_post_valuation_returns_the_valuation_a_worker_stores(
    client: TestClient, factory: sessionmaker
) -> None:
    stored: list[int] = []
    with factory.begin() as s:
        add_token(s, 5)

    def worker() -> None:  # stands in for the urgent queue: waits for the message, values
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with factory() as s:
                queued = s.scalar(select(Outbox.id).where(Outbox.task == "value"))
            if queued is not None:
                with factory.begin() as s:
                    stored.append(add_valuation(s, 5, 4.2))
                return
            time.sleep(0.05)

    thread = threading.Thread(target=worker)
    thread.start()
    r = client.post(f"/v1/valuations/{CHAIN}/{CONTRACT}/5?wait=25")
    thread.join()
    assert r.status_code == 200, r.text
    assert r.json()["id"] == stored[0] and r.json()["price_eth"] == 4.2


def test_similar_tokens_from_stored_halfvec_rows(
    client: TestClient, factory: sessionmaker, engine: Engine
) -> None:
    # token 1 points along x; 2 is close to it, 3 farther, 4 opposite; 9 is another collection
    vecs: dict[int, list[float]] = {
        1: [1, 0, 0, 0, 0, 0, 0, 0],
        2: [1, 0.1, 0, 0, 0, 0, 0, 0],
        3: [1, 1, 1, 0, 0, 0, 0, 0],
        4: [-1, 0, 0, 0, 0, 0, 0, 0.1],
        9: [1, 0.05, 0, 0, 0, 0, 0, 0],
    }
    with factory.begin() as s:
        for i in vecs:
            add_token(s, i, contract=OTHER if i == 9 else CONTRACT)
        add_token(s, 5)  # an image without a vector
        store_embeddings(s, EXTRACTOR, "w", "p", [(sha(i), v) for i, v in vecs.items()])
    ensure_vector_index(engine, EXTRACTOR, 8)
    base = f"/v1/tokens/{CHAIN}/{CONTRACT}/1/similar"
    body = client.get(f"{base}?k=3&extractor={EXTRACTOR}").json()
    assert body["extractor"] == EXTRACTOR and body["dim"] == 8
    got = [(n["contract"], n["token_id"]) for n in body["neighbours"]]
    assert got == [(OTHER, "9"), (CONTRACT, "2"), (CONTRACT, "3")]
    sims = [n["similarity"] for n in body["neighbours"]]
    assert sims == sorted(sims, reverse=True) and sims[0] > 0.99
    own = client.get(f"{base}?k=10&same_collection=true").json()
    assert [n["token_id"] for n in own["neighbours"]] == ["2", "3", "4"]
    assert client.get(f"{base}?extractor=nope").status_code == 404
    assert client.get(f"/v1/tokens/{CHAIN}/{CONTRACT}/5/similar").status_code == 404


def test_collection_stats(client: TestClient, factory: sessionmaker) -> None:
    end = dt.datetime(2024, 6, 30, tzinfo=dt.UTC)
    prices = [1.0, 2.0, 3.0, 4.0, 10.0]
    with factory.begin() as s:
        tokens.upsert_collection(s, CHAIN, CONTRACT, name="Things")
        for i in range(1, 4):
            add_token(s, i)
        for n, p in enumerate(prices):
            add_sale(s, 1 + n % 3, p, end - dt.timedelta(days=n + 1), n)
        add_sale(s, 1, 100.0, end - dt.timedelta(days=45), 99)  # outside the window
    url = f"/v1/collections/{CHAIN}/{CONTRACT}/stats"
    body = client.get(url, params={"as_of": end.isoformat()}).json()
    assert body["name"] == "Things"
    assert (body["token_count"], body["sales_count"], body["listings_count"]) == (3, 6, 0)
    assert body["window"]["sales"] == 5
    assert body["median_sale_eth_30d"] == pytest.approx(3.0)
    # percentile_cont(0.1) over 1,2,3,4,10 interpolates 40% of the way from 1 to 2
    assert body["floor_proxy_eth_30d"] == pytest.approx(1.4)
    assert client.get(f"/v1/collections/{CHAIN}/{OTHER}/stats").status_code == 404


def test_openapi_documents_every_route_with_a_summary(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    ops = [op for item in spec["paths"].values() for op in item.values()]
    assert len(ops) == 11
    assert all(op.get("summary") for op in ops)
    assert client.get("/docs").status_code == 200
    # response fields are documented, not just "a JSON object"
    schemas = spec["components"]["schemas"]
    assert {"price_eth", "interval_eth", "p_liquid", "explanation"} <= set(
        schemas["ValuationOut"]["properties"]
    )
    assert "valuation" in schemas["ListingOut"]["properties"]
    recent = spec["paths"]["/v1/listings/recent"]["get"]["responses"]["200"]
    assert recent["content"]["application/json"]["schema"]["$ref"].endswith("ListingsOut")


def add_transfer(session: Session, token_id: int, block: int, to: str, log_index: int = 5) -> None:
    session.add(
        Transfer(
            chain_id=CHAIN,
            block_number=block,
            block_hash="0x" + f"{block:064x}",
            tx_hash="0x" + f"{block * 100 + log_index:064x}",
            log_index=log_index,
            batch_index=0,
            block_time=dt.datetime(2024, 7, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=block),
            contract=CONTRACT,
            token_id=Decimal(token_id),
            from_address="0x" + "00" * 20,
            to_address=to,
            amount=1,
            standard="cryptopunks",
            is_mint=False,
        )
    )


def test_a_listing_names_who_held_the_token_then_and_whom_it_is_reserved_for(
    client: TestClient, factory: sessionmaker
) -> None:
    """PunkOffered names only the buyer an offer is reserved for (zero: anyone): the seller is
    the token's holder at the offer, from the latest transfer before it, not its holder now."""
    alice, bob = "0x" + "a1" * 20, "0x" + "b0" * 20
    with factory.begin() as s:
        add_token(s, 7)
        add_transfer(s, 7, 20, alice)
        add_transfer(s, 7, 21, alice, log_index=1)  # same holder again, an earlier log
        add_transfer(s, 7, 22, bob, log_index=9)  # after the first offer, in its block
        for block, log_index, only_to in ((22, 3, "0x" + "00" * 20), (30, 0, "0x" + "c3" * 20)):
            add_listing(s, 7, block, 1.0, log_index=log_index)
            s.execute(
                Listing.__table__.update()
                .where(Listing.block_number == block)
                .values(account=only_to)
            )
        add_listing(s, 8, 31, 2.0)  # no transfer of token 8 is stored
    got = client.get("/v1/listings/recent?limit=3").json()["listings"]
    seen = [(x["token_id"], x["block_number"], x["seller"], x["offered_to"]) for x in got]
    assert seen == [
        ("8", 31, None, "0x" + "44" * 20),
        ("7", 30, bob, "0x" + "c3" * 20),
        ("7", 22, alice, None),
    ]


def test_recent_listings_carry_the_latest_valuation(
    client: TestClient, factory: sessionmaker
) -> None:
    with factory.begin() as s:
        add_token(s, 1)
        add_listing(s, 1, 10, 5.0)
        add_listing(s, 2, 11, 7.5)  # a token never resolved: no image, no valuation
        add_listing(s, 1, 12, 4.0)
        s.add(
            Listing(
                chain_id=CHAIN,
                block_number=13,
                block_hash="0x" + "ee" * 32,
                tx_hash="0x" + "ef" * 32,
                log_index=0,
                block_time=dt.datetime(2024, 7, 2, tzinfo=dt.UTC),
                contract=CONTRACT,
                token_id=Decimal(1),
                kind="withdrawn",  # not an offer
                price_wei=None,
                account="0x" + "44" * 20,
            )
        )
        add_valuation(s, 1, 2.0)
    with factory.begin() as s:
        latest = add_valuation(s, 1, 3.0)
    body = client.get("/v1/listings/recent?limit=10").json()
    got = [(x["token_id"], x["block_number"], x["price_eth"]) for x in body["listings"]]
    assert got == [("1", 12, 4.0), ("2", 11, 7.5), ("1", 10, 5.0)]
    first = body["listings"][0]
    assert first["valuation"]["id"] == latest and first["valuation"]["price_eth"] == 3.0
    assert first["name"] == "Thing #1" and first["offered_to"] == "0x" + "44" * 20
    assert first["seller"] is None  # no transfer of the token is stored
    assert client.get(first["image_url"]).content == PNG + bytes([1])
    assert body["listings"][1]["valuation"] is None and body["listings"][1]["image_url"] is None
    with factory() as s:
        xid = s.scalar(select(Valuation.change_xid).where(Valuation.id == latest))
    assert body["cursor"] == f"12-0-{latest}-0-0-{xid}"  # no off-chain change stored
    assert len(client.get("/v1/listings/recent?limit=1").json()["listings"]) == 1
    assert client.get(f"/v1/listings/recent?contract={OTHER}").json()["listings"] == []
    for bad, needle in (("limit=0", "limit"), ("limit=201", "limit"), ("contract=0x1", "40 hex")):
        r = client.get(f"/v1/listings/recent?{bad}")
        assert r.status_code == 422 and needle in r.text


def read_events(client: TestClient, url: str, headers: dict[str, str] | None = None) -> list[Any]:
    """The `listing` events of a stream that the server ends after its `duration`."""
    events: list[Any] = []
    with client.stream("GET", url, headers=headers or {}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        event_id = kind = None
        for line in r.iter_lines():
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "listing":
                events.append((event_id, json.loads(line[6:])))
    return events


def test_listing_stream_sends_new_offers_and_new_valuations(
    client: TestClient, factory: sessionmaker
) -> None:
    with factory.begin() as s:
        add_token(s, 1)
        add_listing(s, 1, 10, 5.0)
    cursor = client.get("/v1/listings/recent").json()["cursor"]

    def chain_moves() -> None:  # while the stream is open: a new offer, then its valuation
        time.sleep(0.8)
        with factory.begin() as s:
            add_token(s, 3)
            add_listing(s, 3, 20, 9.0, log_index=2)
        time.sleep(1.2)
        with factory.begin() as s:
            add_valuation(s, 3, 8.0)

    mover = threading.Thread(target=chain_moves)
    mover.start()
    events = read_events(client, f"/v1/listings/stream?cursor={cursor}&duration=4")
    mover.join()
    bodies = [b for _, b in events]
    assert [(b["token_id"], b["block_number"]) for b in bodies] == [("3", 20), ("3", 20)]
    assert bodies[0]["valuation"] is None
    assert bodies[1]["valuation"]["price_eth"] == 8.0
    last_id = events[-1][0]
    # resuming from the last event id replays nothing; an old cursor replays both changes
    assert read_events(client, "/v1/listings/stream?duration=1", {"Last-Event-ID": last_id}) == []
    replay = read_events(client, f"/v1/listings/stream?cursor={cursor}&duration=1")
    assert [b["valuation"]["price_eth"] for _, b in replay] == [8.0]


def test_listing_stream_rejects_a_malformed_cursor(client: TestClient) -> None:
    for bad in ("nope", "1-2", "1-x-3", "-5-0-0"):
        r = client.get(f"/v1/listings/stream?cursor={bad}")
        assert r.status_code == 422 and "cursor" in r.text, bad
