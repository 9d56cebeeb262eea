"""The bounded fetcher against real loopback servers, honest and hostile."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.servers import (
    OriginServer,
    endless,
    redirect,
    sequence,
    slow_drip,
    static,
    status_with_retry_after,
)
from tokenmeta.errors import (
    BlockedAddress,
    FetchTimeout,
    NotFound,
    RateLimited,
    ResponseTooLarge,
    TokenMetaError,
    TooManyRedirects,
    UpstreamUnavailable,
)
from tokenmeta.fetch import FetchResult, GuardedTransport, HttpFetcher, HttpLimits, make_client
from tokenmeta.fetch.http import parse_retry_after

LIMITS = HttpLimits(connect_timeout=1.0, read_timeout=0.5, deadline=2.0, max_inline_retry_wait=0.3)


def fetch(
    url: str, allow: set[str], *, cap: int = 1 << 20, limits: HttpLimits = LIMITS
) -> FetchResult:
    async def run() -> FetchResult:
        client = make_client(GuardedTransport(allow), limits)
        async with client:
            return await HttpFetcher(client, limits).fetch(url, cap=cap)

    return asyncio.run(run())


def test_plain_fetch_from_an_allow_listed_origin(origin: OriginServer) -> None:
    origin.routes["/a.json"] = static(b'{"a":1}', "application/json")
    result = fetch(origin.url("/a.json"), {origin.netloc})
    assert result.body == b'{"a":1}' and result.status == 200


def test_loopback_is_refused_when_not_allow_listed(origin: OriginServer) -> None:
    origin.routes["/a.json"] = static(b"{}")
    with pytest.raises(BlockedAddress):
        fetch(origin.url("/a.json"), set())
    with pytest.raises(BlockedAddress):
        fetch(f"http://localhost:{origin.port}/a.json", set())
    assert origin.hits.get("/a.json") is None


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/secret",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:{port}/secret",
        "http://[::ffff:127.0.0.1]:{port}/secret",
        "http://localhost:{port}/secret",
        "http://0.0.0.0:{port}/secret",
    ],
)
def test_redirects_to_internal_addresses_are_refused(origin: OriginServer, target: str) -> None:
    origin.routes["/secret"] = static(b"top secret")
    origin.routes["/go"] = redirect(target.format(port=origin.port))
    # The first hop is allow-listed by name; the redirect names the same server another way.
    if "127.0.0.1" in target:
        start, allow = f"http://localhost:{origin.port}/go", {f"localhost:{origin.port}"}
    else:
        start, allow = origin.url("/go"), {origin.netloc}
    with pytest.raises(BlockedAddress):
        fetch(start, allow)
    assert origin.hits["/go"] == 1
    assert origin.hits.get("/secret") is None


def test_redirect_loop_stops_at_five(origin: OriginServer) -> None:
    origin.routes["/loop"] = redirect("/loop")
    with pytest.raises(TooManyRedirects):
        fetch(origin.url("/loop"), {origin.netloc})
    assert origin.hits["/loop"] == 6


def test_redirect_chain_within_the_limit_is_followed(origin: OriginServer) -> None:
    for i in range(5):
        origin.routes[f"/r{i}"] = redirect(f"/r{i + 1}", 301 if i % 2 else 307)
    origin.routes["/r5"] = static(b"done")
    assert fetch(origin.url("/r0"), {origin.netloc}).body == b"done"


def test_slow_drip_hits_the_deadline(origin: OriginServer) -> None:
    origin.routes["/drip"] = slow_drip(0.1)
    limits = HttpLimits(connect_timeout=1.0, read_timeout=1.0, deadline=0.8)
    with pytest.raises(FetchTimeout):
        fetch(origin.url("/drip"), {origin.netloc}, limits=limits)


def test_endless_body_hits_the_byte_cap(origin: OriginServer) -> None:
    origin.routes["/endless"] = endless()
    with pytest.raises(ResponseTooLarge):
        fetch(origin.url("/endless"), {origin.netloc}, cap=1 << 20)


def test_declared_length_over_the_cap_fails_before_reading(origin: OriginServer) -> None:
    origin.routes["/big"] = static(b"x" * 5000)
    with pytest.raises(ResponseTooLarge, match="declares"):
        fetch(origin.url("/big"), {origin.netloc}, cap=1000)


def test_429_with_short_retry_after_is_waited_out(origin: OriginServer) -> None:
    origin.routes["/busy"] = sequence(status_with_retry_after(429, "0"), static(b"ok"))
    assert fetch(origin.url("/busy"), {origin.netloc}).body == b"ok"
    assert origin.hits["/busy"] == 2


def test_429_and_504_with_long_retry_after_are_raised_with_it(origin: OriginServer) -> None:
    origin.routes["/busy"] = status_with_retry_after(429, "120")
    origin.routes["/gw"] = status_with_retry_after(504, "30")
    with pytest.raises(RateLimited) as limited:
        fetch(origin.url("/busy"), {origin.netloc})
    assert limited.value.retry_after == 120 and limited.value.retryable
    with pytest.raises(UpstreamUnavailable) as unavailable:
        fetch(origin.url("/gw"), {origin.netloc})
    assert unavailable.value.retry_after == 30
    assert origin.hits["/busy"] == 1


def test_404_is_permanent_and_refused_connection_is_retryable(origin: OriginServer) -> None:
    with pytest.raises(NotFound) as missing:
        fetch(origin.url("/nothing"), {origin.netloc})
    assert not missing.value.retryable and missing.value.code == "NotFound"
    dead = OriginServer().start()
    port = dead.port
    dead.stop()
    with pytest.raises(TokenMetaError) as refused:
        fetch(f"http://127.0.0.1:{port}/x", {f"127.0.0.1:{port}"})
    assert isinstance(refused.value, UpstreamUnavailable | FetchTimeout)


def test_retry_after_http_date() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480.0 - 10) == 10
    assert parse_retry_after("soon") is None
    assert parse_retry_after("5") == 5
