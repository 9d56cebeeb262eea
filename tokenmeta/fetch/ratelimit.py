"""Per-host request rates, in one process or shared by every worker through Redis.

Both limiters run GCRA (the generic cell rate algorithm): each host has a "theoretical arrival
time"; a request may start ``burst`` intervals before it. ``reserve(host, max_wait)`` books the
next slot and returns how long to wait for it, or returns the wait *without* booking when it is
longer than ``max_wait`` — the fetcher then raises RateLimited with that ``retry_after`` so a
worker re-queues the token instead of holding a slot. In Redis the whole step is one Lua script
using the server's clock, so workers on different machines share one budget per host.

Rates are requests per second by host name (``"gateway.pinata.cloud": 200 / 60``); ``"*"`` sets a
default for hosts not listed; a host with no rate is not limited.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from tokenmeta.errors import RateLimited


class HostRateLimiter(Protocol):
    async def reserve(self, host: str, max_wait: float) -> tuple[bool, float]:
        """(booked, seconds to wait) for the next request to ``host``."""
        ...


@dataclass(frozen=True, slots=True)
class _Rule:
    interval: float
    tolerance: float


def _rules(rates: Mapping[str, float], burst: int) -> dict[str, _Rule]:
    out = {}
    for host, per_second in rates.items():
        if per_second <= 0:
            raise ValueError(f"rate for {host} must be positive")
        interval = 1.0 / per_second
        out[host.lower()] = _Rule(interval, interval * max(burst - 1, 0))
    return out


class LocalRateLimiter:
    """GCRA in this process only (tests, a single worker)."""

    def __init__(self, rates: Mapping[str, float], *, burst: int = 1) -> None:
        self._rules = _rules(rates, burst)
        self._tat: dict[str, float] = {}
        self._lock = asyncio.Lock()

    def rule(self, host: str) -> _Rule | None:
        return self._rules.get(host.lower()) or self._rules.get("*")

    async def reserve(self, host: str, max_wait: float) -> tuple[bool, float]:
        host = host.lower()
        rule = self.rule(host)
        if rule is None:
            return True, 0.0
        async with self._lock:
            now = time.monotonic()
            tat = max(self._tat.get(host, now), now)
            wait = max(0.0, tat - rule.tolerance - now)
            if wait > max_wait:
                return False, wait
            self._tat[host] = tat + rule.interval
            return True, wait


_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait < 0 then wait = 0 end
if wait > max_wait then return {0, wait} end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now + 1000))
return {1, wait}
"""


class RedisRateLimiter:
    """GCRA shared through Redis (``redis.asyncio.Redis``): one budget per host for all workers."""

    def __init__(
        self,
        client: Any,
        rates: Mapping[str, float],
        *,
        burst: int = 1,
        prefix: str = "nftwatch:ratelimit:",
    ) -> None:
        self._client = client
        self._rules = _rules(rates, burst)
        self._prefix = prefix

    async def reserve(self, host: str, max_wait: float) -> tuple[bool, float]:
        rule = self._rules.get(host.lower()) or self._rules.get("*")
        if rule is None:
            return True, 0.0
        booked, wait_ms = await self._client.eval(
            _GCRA,
            1,
            f"{self._prefix}{host.lower()}",
            int(rule.interval * 1000),
            int(rule.tolerance * 1000),
            int(max_wait * 1000),
        )
        return bool(int(booked)), int(wait_ms) / 1000.0


async def acquire(limiter: HostRateLimiter, host: str, max_wait: float) -> None:
    """Wait for a slot to ``host``; RateLimited (with retry_after) when it is too far away."""
    booked, wait = await limiter.reserve(host, max_wait)
    if not booked:
        raise RateLimited(f"rate limit for {host}: next slot in {wait:.1f} s", retry_after=wait)
    if wait > 0:
        await asyncio.sleep(wait)
