"""One bounded HTTP GET (or POST): redirects, timeouts, a deadline, byte caps, Retry-After.

The fetcher follows redirects itself (at most ``max_redirects``) so that every hop goes through
the guarded transport again, reads bodies as a stream and stops at the byte cap, and maps every
failure onto ``tokenmeta.errors``. A 429/502/503/504 whose Retry-After is short is waited out and
retried in place; a longer one is raised with ``retry_after`` for the caller's backoff.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin

import httpx

from tokenmeta.errors import (
    ClientError,
    FetchTimeout,
    InvalidURI,
    NotFound,
    RateLimited,
    ResponseTooLarge,
    TokenMetaError,
    TooManyRedirects,
    UpstreamUnavailable,
)
from tokenmeta.fetch.ratelimit import HostRateLimiter, acquire

Cap = int | Callable[[bytes], int]
"""A byte cap, or a function choosing it from the first bytes (JSON vs media)."""

_SNIFF_BYTES = 64
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RETRY_AFTER_STATUSES = frozenset({429, 502, 503, 504})
MAX_RETRY_AFTER = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class HttpLimits:
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    deadline: float = 30.0
    """Overall seconds for one fetch, redirects, in-place retries and a slow drip included."""
    max_redirects: int = 5
    max_inline_retry_wait: float = 2.0
    """A Retry-After up to this long is waited out in place; a longer one is raised."""
    inline_retries: int = 1
    per_host_concurrency: int = 8
    rate_max_wait: float = 5.0
    """Longest wait for a rate-limit slot before giving the token back as RateLimited."""


@dataclass(frozen=True, slots=True)
class FetchResult:
    url: str
    final_url: str
    status: int
    content_type: str | None
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def status_error(status: int, url: str, retry_after: float | None) -> TokenMetaError:
    if status in (404, 410):
        return NotFound(f"{status} from {url}")
    if status == 429:
        return RateLimited(f"429 from {url}", retry_after=retry_after)
    if status >= 500:
        return UpstreamUnavailable(f"{status} from {url}", retry_after=retry_after)
    return ClientError(f"{status} from {url}")


def make_client(
    transport: httpx.AsyncBaseTransport, limits: HttpLimits, *, max_connections: int = 100
) -> httpx.AsyncClient:
    """An AsyncClient that never follows redirects or reads proxy settings on its own."""
    return httpx.AsyncClient(
        transport=transport,
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(
            connect=limits.connect_timeout,
            read=limits.read_timeout,
            write=limits.read_timeout,
            pool=limits.deadline,
        ),
        limits=httpx.Limits(max_connections=max_connections),
        headers={"User-Agent": "nftwatch/0.1 (+metadata resolver)"},
    )


class HttpFetcher:
    def __init__(
        self,
        client: httpx.AsyncClient,
        limits: HttpLimits | None = None,
        *,
        limiter: HostRateLimiter | None = None,
    ) -> None:
        self.client = client
        self.limits = limits or HttpLimits()
        self.limiter = limiter
        self._host_slots: dict[str, asyncio.Semaphore] = {}

    def _slot(self, url: httpx.URL) -> asyncio.Semaphore:
        key = f"{url.host}:{url.port}"
        slot = self._host_slots.get(key)
        if slot is None:
            slot = self._host_slots[key] = asyncio.Semaphore(self.limits.per_host_concurrency)
        return slot

    async def fetch(
        self,
        url: str,
        *,
        cap: Cap,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        raise_for_status: bool = True,
    ) -> FetchResult:
        """Fetch ``url`` within the deadline; raises an TokenMetaError on any failure."""
        try:
            async with asyncio.timeout(self.limits.deadline):
                for attempt in range(self.limits.inline_retries + 1):
                    try:
                        return await self._follow(url, cap, method, headers, raise_for_status)
                    except (RateLimited, UpstreamUnavailable) as exc:
                        wait = exc.retry_after
                        if (
                            wait is None
                            or wait > self.limits.max_inline_retry_wait
                            or attempt == self.limits.inline_retries
                        ):
                            raise
                        await asyncio.sleep(wait)
                raise AssertionError("unreachable")
        except TimeoutError:
            raise FetchTimeout(f"{url} exceeded the {self.limits.deadline:g} s deadline") from None

    async def _follow(
        self,
        url: str,
        cap: Cap,
        method: str,
        headers: dict[str, str] | None,
        raise_for_status: bool,
    ) -> FetchResult:
        current = url
        for _hop in range(self.limits.max_redirects + 1):
            try:
                target = httpx.URL(current)
            except (httpx.InvalidURL, ValueError) as exc:
                raise InvalidURI(f"malformed URL {current[:80]!r}: {exc}") from None
            if target.scheme not in ("http", "https") or not target.host:
                raise InvalidURI(f"refused non-HTTP URL {current[:80]!r}")
            async with self._slot(target):
                if self.limiter is not None:
                    await acquire(self.limiter, target.host, self.limits.rate_max_wait)
                request = self.client.build_request(method, target, headers=headers)
                try:
                    response = await self.client.send(request, stream=True)
                except httpx.TimeoutException as exc:
                    raise FetchTimeout(f"{type(exc).__name__} for {current}") from None
                except httpx.RequestError as exc:
                    raise UpstreamUnavailable(
                        f"{type(exc).__name__} for {current}: {exc}"
                    ) from None
                try:
                    location = response.headers.get("location")
                    if response.status_code in _REDIRECTS and location:
                        current = urljoin(current, location.strip())
                        if response.status_code == 303:
                            method = "GET"
                        continue
                    if raise_for_status and response.status_code >= 400:
                        retry_after = None
                        if response.status_code in _RETRY_AFTER_STATUSES:
                            retry_after = parse_retry_after(response.headers.get("retry-after"))
                        raise status_error(response.status_code, current, retry_after)
                    body = await _read_capped(response, cap, current)
                    return FetchResult(
                        url=url,
                        final_url=current,
                        status=response.status_code,
                        content_type=response.headers.get("content-type"),
                        body=body,
                        headers=dict(response.headers),
                    )
                finally:
                    await response.aclose()
        raise TooManyRedirects(f"more than {self.limits.max_redirects} redirects from {url}")


async def _read_capped(response: httpx.Response, cap: Cap, url: str) -> bytes:
    limit = cap if isinstance(cap, int) else None
    declared = response.headers.get("content-length")
    if limit is not None and declared and declared.isdigit() and int(declared) > limit:
        raise ResponseTooLarge(f"{url} declares {declared} bytes, over the {limit} byte cap")
    buf = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            buf += chunk
            if limit is None and (len(buf) >= _SNIFF_BYTES) and callable(cap):
                limit = cap(bytes(buf[:_SNIFF_BYTES]))
            if limit is not None and len(buf) > limit:
                raise ResponseTooLarge(f"{url} sent more than the {limit} byte cap")
    except httpx.TimeoutException as exc:
        raise FetchTimeout(f"{type(exc).__name__} while reading {url}") from None
    except httpx.RequestError as exc:
        raise UpstreamUnavailable(f"{type(exc).__name__} while reading {url}: {exc}") from None
    if limit is None and callable(cap) and len(buf) > cap(bytes(buf)):
        raise ResponseTooLarge(f"{url} sent more than the byte cap")
    return bytes(buf)
