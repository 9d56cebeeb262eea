"""The off-chain listings feed as ``nftwatch run`` and ``nftwatch listings-feed`` start it: its
configuration from the settings, and the thread that follows it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from listeners.errors import FeedRefused
from listeners.feeds.opensea import API_URL, STREAM_URL, FeedConfig, OpenSeaFeed
from nftwatch.settings import Settings

log = logging.getLogger(__name__)


def parse_slugs(items: tuple[str, ...]) -> dict[str, str | None]:
    """``CONTRACT=SLUG`` (only that contract's items count) or ``SLUG`` (all of the
    collection's) -> {slug: contract or None}; ValueError naming a malformed item."""
    out: dict[str, str | None] = {}
    for item in items:
        contract, sep, slug = item.rpartition("=")
        contract, slug = contract.strip().lower(), slug.strip()
        if not slug or (sep and not (contract.startswith("0x") and len(contract) == 42)):
            raise ValueError(f"NFTWATCH_OPENSEA_SLUGS: {item!r} is not CONTRACT=SLUG or SLUG")
        out[slug] = contract if sep else None
    return out


def feed_config(s: Settings, chain_id: int = 1) -> FeedConfig | None:
    """The feed's configuration, or None when no OpenSea key is set."""
    if not s.opensea_api_key:
        return None
    slugs = parse_slugs(s.opensea_slugs)
    if not slugs:
        raise ValueError("OPENSEA_API_KEY is set but NFTWATCH_OPENSEA_SLUGS names no collection")
    return FeedConfig(
        api_key=s.opensea_api_key,
        slugs=slugs,
        chain_id=chain_id,
        stream_url=s.opensea_stream_url or STREAM_URL,
        api_url=(s.opensea_api_url or API_URL).rstrip("/"),
    )


def feed_target(
    config: FeedConfig, factory: sessionmaker[Session], stop: threading.Event
) -> Callable[[], None]:
    """A thread's target: follow the feed until ``stop``. A refused key or collection is logged
    once and the feed then waits for ``stop`` (retrying cannot help); other failures (the
    database gone) end the call, for the caller's restart loop."""

    def run() -> None:
        feed = OpenSeaFeed(config, factory)
        try:
            feed.run(stop)
        except FeedRefused as exc:
            log.error("opensea listings feed stopped: %s", exc)
            stop.wait()
        finally:
            feed.close()

    return run
