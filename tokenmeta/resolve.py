"""tokenURI → metadata → image: the resolving the workers run, one token or a batch at a time.

``Resolver`` holds one guarded AsyncClient and the per-host concurrency slots for everything it
resolves, so a batch shares connections and never overloads one gateway. Errors are raised as
``tokenmeta.errors`` classes (``.code`` and ``.retryable`` are what the caller records);
``resolve_many`` returns them in place of a Resolution so one bad token never sinks a batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from tokenmeta import media as media_mod
from tokenmeta.errors import InvalidURI, NotFound, TokenMetaError, UnexpectedError
from tokenmeta.fetch.guard import GuardedTransport, system_resolver
from tokenmeta.fetch.guard import Resolver as DnsResolver
from tokenmeta.fetch.http import HttpFetcher, HttpLimits, make_client
from tokenmeta.fetch.ratelimit import HostRateLimiter
from tokenmeta.fetch.sources import fetch_from, plan_attempts
from tokenmeta.media import DecodedMedia, decode_media, sniff
from tokenmeta.metadata import animation_url_of, attributes_of, choose_image, parse_metadata
from tokenmeta.uri import (
    DEFAULT_ARWEAVE_GATEWAYS,
    ParsedURI,
    has_id_placeholder,
    join_relative,
    parse_token_uri,
    substitute_id,
)

MiB = 1 << 20


@dataclass(frozen=True)
class FetchPolicy:
    gateways: tuple[str, ...] = ("https://ipfs.io", "https://dweb.link")
    """IPFS gateway base URLs, tried in order (``https://host``; ``/ipfs/CID`` is appended)."""
    ipfs_api_url: str | None = None
    """A kubo RPC address (``http://127.0.0.1:5001``), tried before the gateways."""
    allow_hosts: frozenset[str] = frozenset()
    """Hosts exempt from the SSRF guard (``host`` or ``host:port``): the user's own gateways."""
    arweave_gateways: tuple[str, ...] = DEFAULT_ARWEAVE_GATEWAYS
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    deadline: float = 30.0
    max_redirects: int = 5
    max_inline_retry_wait: float = 2.0
    per_host_concurrency: int = 8
    rate_max_wait: float = 5.0
    """With a rate limiter: the longest wait for a slot before RateLimited is raised."""
    json_cap: int = 5 * MiB
    media_cap: int = 50 * MiB
    max_pixels: int = media_mod.DEFAULT_MAX_PIXELS
    max_frames: int = media_mod.DEFAULT_MAX_FRAMES
    svg_max_side: int = media_mod.DEFAULT_SVG_MAX_SIDE
    fetch_media: bool = True
    """False: stop after metadata (the image URI is still reported)."""

    def http_limits(self) -> HttpLimits:
        return HttpLimits(
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            deadline=self.deadline,
            max_redirects=self.max_redirects,
            max_inline_retry_wait=self.max_inline_retry_wait,
            per_host_concurrency=self.per_host_concurrency,
            rate_max_wait=self.rate_max_wait,
        )


@dataclass
class Resolution:
    token_uri: str
    metadata: dict[str, Any] | None
    metadata_uri: str | None
    """The normalised URI the metadata came from (None when the tokenURI served an image)."""
    image_uri: str | None
    attributes: list[Any] = field(default_factory=list)
    animation_url: str | None = None
    media: DecodedMedia | None = None
    latin1_fallback: bool = False
    media_error: TokenMetaError | None = None
    """Metadata resolved but its image did not: the error to record (and retry if retryable)."""
    id_decimal_fallback: bool = False


class Resolver:
    """Resolve tokenURIs under one FetchPolicy; use as ``async with Resolver(policy) as r``."""

    def __init__(
        self,
        policy: FetchPolicy,
        *,
        limiter: HostRateLimiter | None = None,
        dns: DnsResolver = system_resolver,
    ) -> None:
        """``limiter``: per-host request rates (``RedisRateLimiter`` shares them across workers)."""
        self.policy = policy
        allow = set(policy.allow_hosts)
        self._transport = GuardedTransport(allow, resolver=dns)
        self._client = make_client(self._transport, policy.http_limits())
        self.fetcher = HttpFetcher(self._client, policy.http_limits(), limiter=limiter)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    def _cap(self, first: bytes) -> int:
        """Media cap when the first bytes are an image, the JSON cap otherwise."""
        kind = sniff(first)
        if kind is not None and kind != "application/json" and kind != "text/html":
            return self.policy.media_cap
        return self.policy.json_cap

    async def fetch_bytes(self, parsed: ParsedURI, *, media: bool = False) -> bytes:
        if parsed.kind == "data":
            assert parsed.data is not None
            return parsed.data
        attempts = plan_attempts(
            parsed,
            gateways=self.policy.gateways,
            ipfs_api_url=self.policy.ipfs_api_url,
            arweave_gateways=self.policy.arweave_gateways,
        )
        cap = self.policy.media_cap if media else self._cap
        return (await fetch_from(self.fetcher, attempts, cap=cap)).body

    async def resolve(self, token_uri: str, token_id: int | None = None) -> Resolution:
        parsed = parse_token_uri(token_uri, token_id)
        decimal = False
        try:
            body = await self.fetch_bytes(parsed)
        except NotFound:
            # ERC-1155 says hex, but many contracts serve the decimal id: one retry.
            if token_id is None or not has_id_placeholder(token_uri):
                raise
            parsed = parse_token_uri(substitute_id(token_uri, token_id, decimal=True))
            body = await self.fetch_bytes(parsed)
            decimal = True
        kind = sniff(body)
        if kind is not None and (media_mod.is_image_type(kind) or kind.startswith("video/")):
            decoded = await self._decode(body)
            return Resolution(
                token_uri, None, None, parsed.normalized, media=decoded, id_decimal_fallback=decimal
            )
        if kind is None and parsed.kind == "data" and (parsed.media_type or "").startswith("image"):
            await self._decode(body)  # raises the precise reason (corrupt, unsupported)
        parsed_meta = parse_metadata(body)
        meta = parsed_meta.data
        image_uri = choose_image(meta)
        result = Resolution(
            token_uri,
            meta,
            parsed.normalized,
            image_uri,
            attributes=attributes_of(meta),
            animation_url=_animation(meta),
            latin1_fallback=parsed_meta.latin1_fallback,
            id_decimal_fallback=decimal,
        )
        if image_uri is None or not self.policy.fetch_media:
            return result
        try:
            image_parsed = self._image_source(parsed, image_uri, token_id)
            result.image_uri = image_parsed.normalized
            image_bytes = await self.fetch_bytes(image_parsed, media=True)
            result.media = await self._decode(image_bytes)
        except TokenMetaError as exc:
            result.media_error = exc
        return result

    @staticmethod
    def _image_source(base: ParsedURI, image_uri: str, token_id: int | None) -> ParsedURI:
        try:
            return parse_token_uri(image_uri, token_id)
        except InvalidURI:
            joined = join_relative(base, image_uri)
            if joined is None:
                raise
            return parse_token_uri(joined, token_id)

    async def _decode(self, data: bytes) -> DecodedMedia:
        return await asyncio.to_thread(
            decode_media,
            data,
            max_pixels=self.policy.max_pixels,
            max_frames=self.policy.max_frames,
            svg_max_side=self.policy.svg_max_side,
        )


def _animation(meta: dict[str, Any]) -> str | None:
    return animation_url_of(meta)


async def resolve_many(
    resolver: Resolver, items: Sequence[tuple[str, int | None]], concurrency: int
) -> list[Resolution | TokenMetaError]:
    """Resolve every (tokenURI, token id) concurrently; each slot is a Resolution or its error."""
    slots = asyncio.Semaphore(max(1, concurrency))

    async def one(uri: str, token_id: int | None) -> Resolution | TokenMetaError:
        async with slots:
            try:
                return await resolver.resolve(uri, token_id)
            except TokenMetaError as exc:
                return exc
            except (ValueError, TypeError, KeyError, OSError, RecursionError) as exc:
                return UnexpectedError(f"{type(exc).__name__}: {exc}")

    return list(await asyncio.gather(*(one(uri, tid) for uri, tid in items)))


__all__ = [
    "FetchPolicy",
    "Resolution",
    "Resolver",
    "resolve_many",
]
