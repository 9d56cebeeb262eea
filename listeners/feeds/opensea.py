"""The OpenSea Stream API client: listings of the watched collections, as they happen.

One connection (Phoenix Channels v2 over a WebSocket, ``?token=KEY&vsn=2.0.0``) joins
``collection:{slug}`` for each watched collection, sends a heartbeat every 30 s and records each
listing, cancel and sale through :func:`store.orders.record`. The Stream API is best-effort and
has no replay cursor, so after every (re)connect, once the channels are joined, the client reads
each collection's whole book from the REST API (``GET /api/v2/listings/collection/{slug}/all``,
paged by ``next``): what was listed while nobody listened is stored, what left the book is
retired. Events buffered on the socket meanwhile are handled afterwards; upserts by order hash
commute, so nothing is lost and nothing doubled.

A dropped socket, a timeout, a 5xx or 429 is :class:`FeedUnavailable`: reconnect after an
exponential backoff with full jitter. A refused key or collection is :class:`FeedRefused`, which
ends :meth:`OpenSeaFeed.run`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from sqlalchemy.orm import Session, sessionmaker
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from listeners.errors import FeedMessageError, FeedRefused, FeedUnavailable, Retryable
from listeners.feeds import opensea_events, phoenix
from store import orders
from store.orders import OrderEvent

log = logging.getLogger(__name__)

RECENT_ERRORS = 20  # FeedStats keeps the latest this many error lines

STREAM_URL = "wss://stream-api.opensea.io/socket/websocket"
API_URL = "https://api.opensea.io"


@dataclass(frozen=True)
class FeedConfig:
    """``slugs``: collection slug -> the contract whose items count (lower-case), or None to
    take every contract the collection lists."""

    api_key: str
    slugs: Mapping[str, str | None]
    chain_id: int = 1  # the chain of the contracts in ``slugs``
    stream_url: str = STREAM_URL
    api_url: str = API_URL
    heartbeat_s: float = 30.0
    timeout_s: float = 20.0
    backoff_s: float = 1.0
    backoff_max_s: float = 60.0
    page_size: int = 100


@dataclass
class FeedStats:
    connects: int = 0
    events: int = 0
    new: int = 0
    retired: int = 0
    skipped: int = 0
    bad: int = 0
    caught_up: int = 0  # REST entries read in catch-ups
    failures: int = 0  # retryable failures since start
    # the latest few only: a feed that reconnects for weeks must not grow without bound
    errors: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_ERRORS))


class OpenSeaFeed:
    def __init__(
        self,
        config: FeedConfig,
        factory: sessionmaker[Session],
        *,
        http: httpx.Client | None = None,
    ) -> None:
        if not config.slugs:
            raise ValueError("no collection slugs to watch")
        self.config = config
        self.factory = factory
        self.stats = FeedStats()
        self._http = http or httpx.Client(timeout=config.timeout_s)
        self._refs = itertools.count(1)
        self._next_beat = 0.0
        self._pending_beat: str | None = None

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ the loop

    def run(self, stop: threading.Event, *, max_attempts: int | None = None) -> None:
        """Follow the feed until ``stop``; a retryable failure reconnects after a jittered
        backoff (``max_attempts`` in a row at most, then it is raised); FeedRefused is raised."""
        failures = 0
        while not stop.is_set():
            try:
                self.session(stop)
                failures = 0
            except Retryable as exc:
                failures += 1
                self.stats.failures += 1
                self.stats.errors.append(f"{exc.code}: {exc}")
                if max_attempts is not None and failures >= max_attempts:
                    raise
                pause = self._backoff(failures, exc.retry_after)
                log.warning("opensea feed: %s; reconnecting in %.1fs", exc, pause)
                stop.wait(pause)

    def _backoff(self, failures: int, retry_after: float | None) -> float:
        ceiling = min(self.config.backoff_max_s, self.config.backoff_s * 2 ** (failures - 1))
        # full jitter: many clients dropped together do not come back together
        return max(retry_after or 0.0, random.uniform(0, ceiling))

    def session(self, stop: threading.Event) -> None:
        """One connection: join, catch up over REST, then read until ``stop`` (returns) or the
        socket fails (FeedUnavailable)."""
        with self._connect() as ws:
            self.stats.connects += 1
            early = self._join(ws)
            self.catch_up(ws)
            for frame in early:
                self._handle(frame)
            while not stop.is_set():
                self._beat(ws)
                try:
                    text = ws.recv(timeout=max(0.05, min(1.0, self._next_beat - time.monotonic())))
                except TimeoutError:
                    continue
                except ConnectionClosed as exc:
                    raise FeedUnavailable(f"stream closed: {exc}") from None
                self._handle_text(text)

    # ------------------------------------------------------------------ socket

    def _connect(self) -> ClientConnection:
        query = urlencode({"token": self.config.api_key, "vsn": phoenix.VSN})
        sep = "&" if "?" in self.config.stream_url else "?"
        try:
            return connect(
                f"{self.config.stream_url}{sep}{query}",
                open_timeout=self.config.timeout_s,
                close_timeout=2,
                max_size=2**22,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise FeedRefused(f"the Stream API refused the API key (HTTP {status})") from None
            if status == 429 or status >= 500:
                raise FeedUnavailable(f"the Stream API answered HTTP {status}") from None
            raise FeedRefused(f"the Stream API answered HTTP {status}") from None
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise FeedUnavailable(f"cannot reach the Stream API: {exc}") from None

    def _send(self, ws: ClientConnection, frame: phoenix.Frame) -> None:
        try:
            ws.send(frame.encode())
        except ConnectionClosed as exc:
            raise FeedUnavailable(f"stream closed: {exc}") from None

    def _join(self, ws: ClientConnection) -> list[phoenix.Frame]:
        """Join every watched collection's topic; returns the frames that came before the
        replies (events of channels already joined), to handle after the catch-up."""
        waiting: dict[str, str] = {}
        for slug in self.config.slugs:
            ref = str(next(self._refs))
            waiting[ref] = f"collection:{slug}"
            self._send(ws, phoenix.join(waiting[ref], ref))
        early: list[phoenix.Frame] = []
        deadline = time.monotonic() + self.config.timeout_s
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                raise FeedUnavailable(f"no join reply for {', '.join(waiting.values())}")
            try:
                frame = phoenix.decode(ws.recv(timeout=left))
            except TimeoutError:
                continue
            except ConnectionClosed as exc:
                raise FeedUnavailable(f"stream closed while joining: {exc}") from None
            if frame.event == phoenix.REPLY and frame.ref in waiting:
                topic = waiting.pop(frame.ref)
                if not frame.reply_ok:
                    raise FeedRefused(f"joining {topic} was refused: {frame.payload}")
            else:
                early.append(frame)
        self._next_beat = time.monotonic() + self.config.heartbeat_s
        self._pending_beat = None
        return early

    def _beat(self, ws: ClientConnection) -> None:
        if time.monotonic() < self._next_beat:
            return
        if self._pending_beat is not None:
            raise FeedUnavailable("no heartbeat reply: the connection is dead")
        self._pending_beat = str(next(self._refs))
        self._send(ws, phoenix.heartbeat(self._pending_beat))
        self._next_beat = time.monotonic() + self.config.heartbeat_s
        with self.factory.begin() as s:
            orders.expire(s)

    def _handle_text(self, text: str | bytes) -> None:
        try:
            frame = phoenix.decode(text)
        except FeedMessageError as exc:
            self._bad(exc)
            return
        self._handle(frame)

    def _handle(self, frame: phoenix.Frame) -> None:
        if frame.topic == phoenix.PHOENIX:
            if frame.event == phoenix.REPLY and frame.ref == self._pending_beat:
                self._pending_beat = None
            return
        if frame.event in (phoenix.ERROR, phoenix.CLOSE):
            raise FeedUnavailable(f"channel {frame.topic} {frame.event}: rejoining")
        if frame.event == phoenix.REPLY:
            return
        self.stats.events += 1
        try:
            event = opensea_events.from_stream(frame.payload, _now())
        except FeedMessageError as exc:
            self._bad(exc)
            return
        if event is None or not self._watched(frame.topic.partition(":")[2], event):
            self.stats.skipped += 1
            return
        self._record([event])

    def _bad(self, exc: FeedMessageError) -> None:
        # kept whole in the log: the next catch-up restores the listing it described
        self.stats.bad += 1
        log.warning("opensea feed: skipped a message: %s; message: %.2000r", exc, exc.raw)

    def _watched(self, slug: str, event: OrderEvent) -> bool:
        if slug not in self.config.slugs:
            return False
        contract = self.config.slugs[slug]
        return contract is None or contract == event.contract

    def _record(self, events: list[OrderEvent]) -> None:
        with self.factory.begin() as s:
            done = orders.record(s, events)
        self.stats.new += done.new
        self.stats.retired += done.retired

    # ------------------------------------------------------------------ REST catch-up

    def catch_up(self, ws: ClientConnection | None = None) -> None:
        """Read each watched collection's whole book and store it; listings stored earlier that
        the book no longer holds are retired. ``ws``: keep its heartbeat going meanwhile."""
        for slug, contract in self.config.slugs.items():
            try:
                self._catch_up(slug, contract, ws)
            except FeedMessageError as exc:  # this book is unreadable; the others are not
                self._bad(exc)

    def _catch_up(self, slug: str, contract: str | None, ws: ClientConnection | None) -> None:
        with self.factory() as s:
            started = orders.db_now(s)
        seen: dict[tuple[int, str], list[str]] = {}
        if contract is not None:
            seen[(self.config.chain_id, contract)] = []  # an empty book retires every listing
        for page in self._book(slug):
            events = []
            for entry in page:
                self.stats.caught_up += 1
                try:
                    event = opensea_events.from_rest(entry, _now())
                except FeedMessageError as exc:
                    self._bad(exc)
                    continue
                if event is None or (contract is not None and event.contract != contract):
                    continue
                seen.setdefault((event.chain_id, event.contract), []).append(event.order_hash)
                events.append(event)
            self._record(events)
            if ws is not None:
                self._beat(ws)
        with self.factory.begin() as s:
            for (chain_id, address), hashes in seen.items():
                self.stats.retired += orders.retire_unseen(
                    s, opensea_events.MARKETPLACE, chain_id, address, hashes, started
                )

    def _book(self, slug: str) -> Iterator[list[dict[str, Any]]]:
        url = f"{self.config.api_url}/api/v2/listings/collection/{quote(slug, safe='')}/all"
        cursor: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": self.config.page_size}
            if cursor:
                params["next"] = cursor
            body = self._get(url, params)
            listings = body.get("listings")
            if not isinstance(listings, list):
                raise FeedMessageError(f"{slug}: the book has no listings array", raw=body)
            yield listings
            cursor = body.get("next") or None
            if cursor is None:
                return

    def _get(self, url: str, params: Mapping[str, str | int]) -> dict[str, Any]:
        headers = {"x-api-key": self.config.api_key, "accept": "application/json"}
        try:
            r = self._http.get(url, params=params, headers=headers)
        except httpx.TimeoutException as exc:
            raise FeedUnavailable(f"REST timeout: {exc}") from None
        except httpx.HTTPError as exc:
            raise FeedUnavailable(f"REST unreachable: {exc}") from None
        if r.status_code in (401, 403):
            raise FeedRefused(f"the REST API refused the API key (HTTP {r.status_code})")
        if r.status_code == 404:
            raise FeedRefused(f"unknown collection: {url}")
        if r.status_code == 429 or r.status_code >= 500:
            raise FeedUnavailable(
                f"REST HTTP {r.status_code}", retry_after=_retry_after(r.headers.get("retry-after"))
            )
        if r.status_code != 200:
            raise FeedRefused(f"REST HTTP {r.status_code}: {r.text[:200]}")
        try:
            body = r.json()
        except ValueError:
            raise FeedMessageError("REST answer is not JSON", raw=r.text[:2000]) from None
        if not isinstance(body, dict):
            raise FeedMessageError("REST answer is not an object", raw=body)
        return body


def _retry_after(value: str | None) -> float | None:
    try:
        return None if value is None else max(0.0, float(value))
    except ValueError:
        return None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
