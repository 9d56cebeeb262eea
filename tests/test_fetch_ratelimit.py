"""Per-host rates: GCRA in process and shared through the machine's Redis by several workers."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

from tests.support.servers import OriginServer, static
from tokenmeta.errors import RateLimited
from tokenmeta.fetch import LocalRateLimiter, RedisRateLimiter
from tokenmeta.fetch.ratelimit import HostRateLimiter
from tokenmeta.resolve import FetchPolicy, Resolver


async def book(limiter: HostRateLimiter, host: str, n: int, max_wait: float) -> list[float]:
    waits = []
    for _ in range(n):
        booked, wait = await limiter.reserve(host, max_wait)
        assert booked
        waits.append(wait)
    return waits


def test_local_gcra_spaces_requests_and_refuses_far_slots() -> None:
    async def run() -> None:
        limiter = LocalRateLimiter({"slow.example": 0.1, "*": 1000.0}, burst=2)
        waits = await book(limiter, "slow.example", 3, max_wait=60)
        # burst of 2 goes at once, the third waits about one 10 s interval
        assert waits[0] == 0 and waits[1] == 0 and 9 < waits[2] <= 10
        booked, wait = await limiter.reserve("slow.example", max_wait=1)
        assert not booked and wait > 15
        assert (await limiter.reserve("other.example", 0))[0]  # the "*" default
        assert await limiter.reserve("SLOW.example", 100) != (True, 0.0)

    asyncio.run(run())


def test_redis_budget_is_shared_by_two_workers(redis_url: str, redis_prefix: str) -> None:
    prefix = f"{redis_prefix}rl-{uuid.uuid4().hex[:8]}:"

    async def run() -> None:
        a, b = aioredis.from_url(redis_url), aioredis.from_url(redis_url)
        try:
            first = RedisRateLimiter(a, {"gw.example": 0.1}, prefix=prefix)
            second = RedisRateLimiter(b, {"gw.example": 0.1}, prefix=prefix)
            assert await first.reserve("gw.example", 60) == (True, 0.0)
            booked, wait = await second.reserve("gw.example", 60)
            assert booked and 9 < wait <= 10  # the second worker sees the first one's booking
            booked, wait = await first.reserve("gw.example", 5)
            assert not booked and 19 < wait <= 20
            assert await second.reserve("unlisted.example", 0) == (True, 0.0)
            assert await a.pttl(f"{prefix}gw.example") > 0  # keys expire on their own
        finally:
            await a.aclose()
            await b.aclose()

    asyncio.run(run())


def test_resolvers_sharing_redis_give_tokens_back_as_rate_limited(
    origin: OriginServer, redis_url: str, redis_prefix: str
) -> None:
    origin.routes["/meta/1"] = static(b'{"name": "one"}')
    origin.routes["/meta/2"] = static(b'{"name": "two"}')
    prefix = f"{redis_prefix}rl-{uuid.uuid4().hex[:8]}:"
    policy = FetchPolicy(
        gateways=(), allow_hosts=frozenset({origin.netloc}), rate_max_wait=0.5, deadline=3
    )

    async def run() -> None:
        clients = [aioredis.from_url(redis_url), aioredis.from_url(redis_url)]
        try:
            limiters = [RedisRateLimiter(c, {"127.0.0.1": 0.05}, prefix=prefix) for c in clients]
            async with Resolver(policy, limiter=limiters[0]) as one:
                assert (await one.resolve(origin.url("/meta/1"))).metadata == {"name": "one"}
            async with Resolver(policy, limiter=limiters[1]) as two:
                with pytest.raises(RateLimited) as limited:
                    await two.resolve(origin.url("/meta/2"))
            assert limited.value.retryable and (limited.value.retry_after or 0) > 10
        finally:
            for c in clients:
                await c.aclose()

    asyncio.run(run())
    assert origin.hits.get("/meta/2") is None
