"""The listing stream's event source: Server-Sent Events from a cursor, ended by the client,
by its duration, by server shutdown, or by its key being revoked (checked on every poll, so a
revocation ends it within the key cache's lifetime plus one poll)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio.to_thread

from nftwatch.api import listings

log = logging.getLogger(__name__)

POLL_S = 0.5
KEEPALIVE_S = 15.0
RETRY_MS = 2000

Changes = Callable[[listings.Cursor], tuple[list[dict[str, Any]], listings.Cursor]]


def end_event(reason: str) -> str:
    """The last event of a stream the server ends: says why, so a client can tell a key that
    was revoked (reconnecting is refused) from a stream that ran its course (reconnect)."""
    return f"event: end\ndata: {json.dumps({'reason': reason})}\n\n"


async def listing_events(
    since: listings.Cursor,
    *,
    changes: Changes,
    duration: float,
    still_allowed: Callable[[], bool],
    disconnected: Callable[[], Awaitable[bool]],
) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MS}\nid: {since.encode()}\n\n"
    end = time.monotonic() + duration
    quiet_since = time.monotonic()
    while time.monotonic() < end:
        if await disconnected():
            return
        if not await anyio.to_thread.run_sync(still_allowed):
            log.info("listing stream ended: its API key was revoked")
            yield end_event("key revoked")
            return
        bodies, since = await anyio.to_thread.run_sync(changes, since)
        if bodies:
            # one write per batch; only its last event carries the batch's cursor, so a client
            # cut off inside a batch resumes from the one before (and sees some events twice)
            # rather than from a cursor past events it never got
            last = len(bodies) - 1
            yield "".join(
                (f"id: {since.encode()}\n" if i == last else "")
                + f"event: listing\ndata: {json.dumps(b)}\n\n"
                for i, b in enumerate(bodies)
            )
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > KEEPALIVE_S:
            yield ": keep-alive\n\n"
            quiet_since = time.monotonic()
        await asyncio.sleep(POLL_S)
    yield end_event("duration")
