"""Fetching with limits: the SSRF-guarded transport, the bounded HTTP fetcher, IPFS sources."""

from tokenmeta.fetch.guard import GuardedTransport, is_blocked_ip, normalize_allow_hosts
from tokenmeta.fetch.http import FetchResult, HttpFetcher, HttpLimits, make_client
from tokenmeta.fetch.ratelimit import HostRateLimiter, LocalRateLimiter, RedisRateLimiter
from tokenmeta.fetch.sources import Attempt, fetch_from, plan_attempts

__all__ = [
    "Attempt",
    "FetchResult",
    "GuardedTransport",
    "HostRateLimiter",
    "HttpFetcher",
    "HttpLimits",
    "LocalRateLimiter",
    "RedisRateLimiter",
    "fetch_from",
    "is_blocked_ip",
    "make_client",
    "normalize_allow_hosts",
    "plan_attempts",
]
