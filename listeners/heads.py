"""New heads over WebSocket (``eth_subscribe("newHeads")``): a wake-up signal for the follower.

The subscription only says *that* a block arrived; the follower still reads headers and logs over
HTTP, in order, with its parent-hash checks, so a missed or duplicated notification costs nothing
but latency. While the socket is down the follower polls on its interval; the watcher reconnects
with backoff.
"""

from __future__ import annotations

import json
import logging
import threading
from urllib.parse import urlsplit, urlunsplit

from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

log = logging.getLogger(__name__)


def ws_url_for(http_url: str) -> str:
    """The WebSocket URL of a node that serves both on one address (geth, anvil, erigon)."""
    parts = urlsplit(http_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, parts.fragment))


class HeadWatcher:
    """Sets ``wake`` on every new head while subscribed; ``connected`` tells whether it is."""

    def __init__(self, url: str, wake: threading.Event, *, open_timeout: float = 5.0) -> None:
        self.url = url
        self.wake = wake
        self.open_timeout = open_timeout
        self.connected = threading.Event()
        self.heads = 0
        self.failures = 0

    def run(self, stop: threading.Event) -> None:
        backoff = 1.0
        while not stop.is_set():
            try:
                self._subscribe_and_listen(stop)
                backoff = 1.0
            except (OSError, TimeoutError, WebSocketException, ValueError) as exc:
                self.failures += 1
                if self.failures == 1 or self.failures % 20 == 0:
                    log.warning("new heads over %s unavailable (%s); polling", self.url, exc)
            finally:
                if self.connected.is_set():
                    self.connected.clear()
                    self.wake.set()  # poll now, then on the interval
            stop.wait(backoff)
            backoff = min(backoff * 2, 30.0)

    def _subscribe_and_listen(self, stop: threading.Event) -> None:
        with connect(self.url, open_timeout=self.open_timeout, close_timeout=1) as ws:
            ws.send(
                json.dumps(
                    {"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}
                )
            )
            reply = json.loads(ws.recv(timeout=self.open_timeout))
            if not isinstance(reply, dict) or reply.get("error") or not reply.get("result"):
                raise ValueError(f"eth_subscribe refused: {str(reply)[:200]}")
            self.connected.set()
            self.wake.set()  # heads may have arrived while connecting
            log.info("following new heads over %s", self.url)
            while not stop.is_set():
                try:
                    message = ws.recv(timeout=1.0)
                except TimeoutError:
                    continue
                data = json.loads(message)
                if isinstance(data, dict) and data.get("method") == "eth_subscription":
                    self.heads += 1
                    self.wake.set()
