"""Per-key rate limits for the routes that cost the service work (a valuation request, a
stream). Counted by the ``limits`` library in Redis when one is given, so that every worker
process of the server shares one count, else in this process's memory."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from fastapi import HTTPException
from limits import RateLimitItem, parse
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RateLimits:
    """``limits`` notation: "30/minute", "5/second;100/hour"."""

    valuation_requests: str = "30/minute"
    stream_opens: str = "20/minute"
    # memory:// (per process), or redis://, rediss://, redis+unix:// (shared)
    storage_uri: str = "memory://"
    key_prefix: str = "nftwatch-ratelimit"


def storage_uri_for(broker_url: str | None) -> str:
    """The rate limits' storage for a broker: the same Redis where the broker is one, else this
    process's memory."""
    if not broker_url:
        return "memory://"
    if broker_url.startswith(("redis://", "rediss://")):
        return broker_url
    if broker_url.startswith(("redis+socket://", "socket://")):  # kombu's unix socket form
        return "redis+unix://" + broker_url.split("://", 1)[1]
    return "memory://"


class Limiter:
    """One moving window per (route, key)."""

    def __init__(self, limits: RateLimits) -> None:
        options: dict[str, str] = {}
        if not limits.storage_uri.startswith("memory"):
            options["key_prefix"] = limits.key_prefix
        storage = storage_from_string(limits.storage_uri, **options)
        if not isinstance(storage, Storage):
            raise ValueError(f"not a synchronous rate limit storage: {limits.storage_uri}")
        self._storage = storage
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._items: dict[str, list[RateLimitItem]] = {
            "valuation": _parse_many(limits.valuation_requests),
            "stream": _parse_many(limits.stream_opens),
        }

    def hit(self, route: str, who: str) -> None:
        """Count one request by ``who``; HTTP 429 with Retry-After when over a limit."""
        for item in self._items[route]:
            try:
                allowed = self._limiter.hit(item, route, who)
            except Exception as exc:  # storage unreachable: refuse work rather than fail open
                log.warning("rate limit storage unavailable: %s", exc)
                raise HTTPException(
                    status_code=503,
                    detail="rate limit storage unavailable; try again shortly",
                    headers={"Retry-After": "5"},
                ) from None
            if not allowed:
                reset = self._limiter.get_window_stats(item, route, who).reset_time
                retry = max(1, math.ceil(reset - time.time()))
                raise HTTPException(
                    status_code=429,
                    detail=f"rate limit exceeded: {item} per API key for this route; "
                    f"retry in {retry} s",
                    headers={"Retry-After": str(retry)},
                )


def _parse_many(spec: str) -> list[RateLimitItem]:
    return [parse(part) for part in spec.split(";") if part.strip()]
