"""Regressions, one per case found by probing the desk API as an attacker with a valid key:
each answered 500 (or stored what it should not) before, and must answer a defined 4xx with a
message that names the parameter, or be refused before anything is stored. Plus the headers
that keyed answers and the desk page carry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from nftwatch.api import create_app
from nftwatch.api.ratelimit import RateLimits
from store.models import Outbox, Valuation
from tests.support.seed import CHAIN, CONTRACT, KEY, add_token

BIG_CHAIN = 2**63  # one past BIGINT
TOKEN = f"/v1/tokens/{CHAIN}/{CONTRACT}/1"


@pytest.fixture
def client(factory: sessionmaker[Session]) -> Iterator[TestClient]:
    app = create_app(
        factory,
        api_keys=[KEY],
        rpc_chains=[CHAIN],
        rate_limits=RateLimits(valuation_requests="3/minute", stream_opens="100/minute"),
    )
    with TestClient(app, headers={"X-API-Key": KEY}) as c:
        yield c


def detail_text(r: object) -> str:
    return str(r.json()["detail"])  # type: ignore[attr-defined]


TOKEN_ROUTES = [
    ("GET", "/v1/tokens/{c}/{a}/{t}"),
    ("GET", "/v1/tokens/{c}/{a}/{t}/image"),
    ("GET", "/v1/tokens/{c}/{a}/{t}/similar"),
    ("GET", "/v1/valuations/{c}/{a}/{t}"),
    ("POST", "/v1/valuations/{c}/{a}/{t}?wait=0"),
]


@pytest.mark.parametrize(("method", "route"), TOKEN_ROUTES)
def test_chain_id_past_bigint_is_422_on_every_path_route(
    client: TestClient, method: str, route: str
) -> None:
    r = client.request(method, route.format(c=BIG_CHAIN, a=CONTRACT, t=6))
    assert r.status_code == 422, r.text
    assert "chain_id" in detail_text(r) and "2**63-1" in detail_text(r)
    stats = client.get(f"/v1/collections/{BIG_CHAIN}/{CONTRACT}/stats")
    assert stats.status_code == 422 and "chain_id" in detail_text(stats)


def test_valuation_request_with_chain_id_past_bigint_stores_nothing(
    client: TestClient,
    factory: sessionmaker[Session],
) -> None:
    r = client.post(f"/v1/valuations/{BIG_CHAIN}/{CONTRACT}/6?wait=0")
    assert r.status_code == 422
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Outbox)) == 0


def test_recent_listings_chain_id_past_bigint_is_422(client: TestClient) -> None:
    r = client.get(f"/v1/listings/recent?chain_id={BIG_CHAIN}")
    assert r.status_code == 422 and "chain_id" in detail_text(r)


@pytest.mark.parametrize(("method", "route"), TOKEN_ROUTES)
@pytest.mark.parametrize("digits", [79, 4301, 8000])
def test_token_id_over_78_digits_is_422_on_every_token_route(
    client: TestClient, method: str, route: str, digits: int
) -> None:
    r = client.request(method, route.format(c=CHAIN, a=CONTRACT, t="1" * digits))
    assert r.status_code == 422, r.text[:300]
    assert "token_id" in detail_text(r) and "78 digits" in detail_text(r)


@pytest.mark.parametrize("value", ["%00", "a%00b", "x" * 65, "../etc", "effnet lite"])
def test_similar_extractor_with_a_nul_byte_or_odd_characters_is_422(
    client: TestClient,
    factory: sessionmaker[Session],
    value: str,
) -> None:
    with factory.begin() as s:
        add_token(s, 1)
    r = client.get(f"{TOKEN}/similar?extractor={value}")
    assert r.status_code == 422, r.text
    assert "extractor" in detail_text(r)


@pytest.mark.parametrize("as_of", ["0001-01-01T00:00:00", "1969-12-31T23:59:59Z", "9999-12-31"])
def test_stats_as_of_out_of_range_is_422(
    client: TestClient,
    factory: sessionmaker[Session],
    as_of: str,
) -> None:
    with factory.begin() as s:
        add_token(s, 1)
    r = client.get(f"/v1/collections/{CHAIN}/{CONTRACT}/stats", params={"as_of": as_of})
    assert r.status_code == 422, r.text
    assert "as_of" in detail_text(r) and "1970-01-01" in detail_text(r)
    ok = client.get(f"/v1/collections/{CHAIN}/{CONTRACT}/stats", params={"as_of": "2024-01-01"})
    assert ok.status_code == 200, ok.text  # naive: UTC


def test_stream_cursor_past_bigint_is_422_not_a_stream_that_drops(client: TestClient) -> None:
    for headers, params in (
        ({}, {"cursor": "9223372036854775808-0-0"}),
        ({"Last-Event-ID": "9223372036854775808-0-0"}, {}),
    ):
        r = client.get("/v1/listings/stream", params={**params, "duration": 1}, headers=headers)
        assert r.status_code == 422, r.text
        assert "out of range" in detail_text(r) and "id:" not in r.text


def test_valuation_of_an_unknown_token_is_404_and_stores_nothing(
    client: TestClient,
    factory: sessionmaker[Session],
) -> None:
    r = client.post(f"/v1/valuations/{CHAIN}/{CONTRACT}/999999?wait=1")
    assert r.status_code == 404 and "not known" in detail_text(r)
    unwatched = client.post(f"/v1/valuations/{CHAIN}/{'0x' + '99' * 20}/1?wait=0")
    assert unwatched.status_code == 404
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Outbox)) == 0
        assert s.scalar(select(func.count()).select_from(Valuation)) == 0


def test_valuation_on_a_chain_without_an_rpc_is_refused_at_once(
    client: TestClient,
    factory: sessionmaker[Session],
) -> None:
    r = client.post(f"/v1/valuations/5/{CONTRACT}/1?wait=10")
    assert r.status_code == 422 and "no RPC" in detail_text(r)
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Outbox)) == 0


def test_valuation_requests_are_rate_limited_per_key_with_retry_after(
    client: TestClient,
    factory: sessionmaker[Session],
) -> None:
    with factory.begin() as s:
        add_token(s, 1)
    codes = [
        client.post(f"/v1/valuations/{CHAIN}/{CONTRACT}/1?wait=0").status_code for _ in range(4)
    ]
    assert codes == [202, 202, 202, 429]
    r = client.post(f"/v1/valuations/{CHAIN}/{CONTRACT}/1?wait=0")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    with factory() as s:  # the refused ones queued nothing
        assert s.scalar(select(func.count()).select_from(Outbox)) == 3


def test_keyed_answers_are_private_and_vary_on_the_key_headers(
    client: TestClient,
    factory: sessionmaker[Session],
) -> None:
    with factory.begin() as s:
        add_token(s, 1)
    image = client.get(f"{TOKEN}/image")
    assert image.status_code == 200
    assert image.headers["cache-control"] == "private, max-age=300"
    for r in (client.get(TOKEN), client.get(TOKEN, headers={"X-API-Key": "wrong"}), image):
        assert "private" in r.headers["cache-control"] or "no-store" in r.headers["cache-control"]
        vary = {v.strip().lower() for v in r.headers["vary"].split(",")}
        assert {"x-api-key", "authorization"} <= vary
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert client.get(TOKEN).headers["cache-control"] == "private, no-store"


def test_desk_page_has_a_policy_of_its_own(client: TestClient) -> None:
    page = client.get("/", headers={"X-API-Key": ""})
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "vary" not in page.headers  # the page itself needs no key
