"""A loopback stand-in for OpenSea's Stream API and REST listings book: a real WebSocket server
speaking Phoenix Channels v2 (join, heartbeat, pushed events) and a real HTTP server answering
``GET /api/v2/listings/collection/{slug}/all`` in pages linked by ``next``.

The book follows what is published: ``item_listed`` adds an order, ``item_cancelled`` and
``item_sold`` remove it. While :meth:`FakeOpenSea.go_down` holds, open sockets are closed and new
ones refused with 503, but publishing still changes the book, as the real service's does."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection, serve


def listed(
    slug: str,
    contract: str,
    token_id: int,
    order_hash: str,
    price_wei: int,
    *,
    maker: str = "0x" + "ab" * 20,
    at: dt.datetime | None = None,
    expires: dt.datetime | None = None,
) -> dict[str, Any]:
    """An ``item_listed`` message as the Stream API sends it (ETH priced)."""
    at = at or dt.datetime.now(dt.UTC)
    expires = expires or at + dt.timedelta(days=7)
    return {
        "event_type": "item_listed",
        "sent_at": at.isoformat(),
        "payload": {
            "item": {
                "nft_id": f"ethereum/{contract}/{token_id}",
                "chain": {"name": "ethereum"},
                "permalink": f"https://opensea.io/assets/ethereum/{contract}/{token_id}",
                "metadata": {"name": f"#{token_id}"},
            },
            "collection": {"slug": slug},
            "base_price": str(price_wei),
            "payment_token": {
                "address": "0x" + "0" * 40,
                "symbol": "ETH",
                "decimals": 18,
                "eth_price": "1.000000000000000",
            },
            "order_hash": order_hash,
            "maker": {"address": maker},
            "taker": None,
            "listing_date": at.isoformat(),
            "expiration_date": expires.isoformat(),
            "listing_type": None,
            "is_private": False,
            "quantity": 1,
            "event_timestamp": at.isoformat(),
        },
    }


def ended(message: dict[str, Any], kind: str) -> dict[str, Any]:
    """The ``item_cancelled`` or ``item_sold`` of the listing ``message`` announced."""
    p = dict(message["payload"])
    at = dt.datetime.now(dt.UTC).isoformat()
    p["event_timestamp"] = at
    if kind == "item_sold":
        p["sale_price"] = p.pop("base_price")
        p["closing_date"] = at
        p["transaction"] = {"hash": "0x" + "cd" * 32, "timestamp": at}
    return {"event_type": kind, "sent_at": at, "payload": p}


def rest_entry(message: dict[str, Any]) -> dict[str, Any]:
    """The REST book's entry for the listing ``message`` announced (Seaport protocol data)."""
    p = message["payload"]
    _, contract, token_id = p["item"]["nft_id"].split("/")
    start = int(dt.datetime.fromisoformat(p["listing_date"]).timestamp())
    end = int(dt.datetime.fromisoformat(p["expiration_date"]).timestamp())
    return {
        "order_hash": p["order_hash"],
        "chain": "ethereum",
        "type": "basic",
        "status": "ACTIVE",
        "remaining_quantity": 1,
        "price": {"current": {"currency": "ETH", "decimals": 18, "value": p["base_price"]}},
        "protocol_address": "0x0000000000000068f116a894984e2db1123eb395",
        "protocol_data": {
            "parameters": {
                "offerer": p["maker"]["address"],
                "offer": [
                    {
                        "itemType": 2,
                        "token": contract,
                        "identifierOrCriteria": token_id,
                        "startAmount": "1",
                        "endAmount": "1",
                    }
                ],
                "consideration": [
                    {
                        "itemType": 0,
                        "token": "0x" + "0" * 40,
                        "identifierOrCriteria": "0",
                        "startAmount": p["base_price"],
                        "endAmount": p["base_price"],
                        "recipient": p["maker"]["address"],
                    }
                ],
                "startTime": str(start),
                "endTime": str(end),
            },
            "signature": None,
        },
    }


class FakeOpenSea:
    def __init__(self, api_key: str, *, page_size: int = 2) -> None:
        self.api_key = api_key
        self.page_size = page_size
        self.books: dict[str, dict[str, dict[str, Any]]] = {}  # slug -> order hash -> entry
        self.joins = 0
        self.heartbeats = 0
        self.rest_requests = 0
        self.refused = 0
        self._down = False
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._clients: dict[ServerConnection, set[str]] = {}
        self._ws = serve(self._handle, "127.0.0.1", 0, process_request=self._check)
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._rest_handler())
        self._http.daemon_threads = True
        self._threads = [
            threading.Thread(target=self._ws.serve_forever, daemon=True),
            threading.Thread(
                target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            ),
        ]

    # -------------------------------------------------------------- lifecycle

    @property
    def stream_url(self) -> str:
        host, port = self._ws.socket.getsockname()[:2]
        return f"ws://{host}:{port}/socket/websocket"

    @property
    def api_url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeOpenSea:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self.go_down()
        self._ws.shutdown()
        self._http.shutdown()
        self._http.server_close()

    def go_down(self) -> None:
        """Close every open socket mid-stream and refuse new ones (503) until come_back."""
        with self._lock:
            self._down = True
            clients = list(self._clients)
        for ws in clients:
            ws.close(code=1011, reason="going away")

    def come_back(self) -> None:
        with self._lock:
            self._down = False

    def add_collection(self, slug: str) -> None:
        """A collection the REST API knows (an unknown slug answers 404)."""
        with self._lock:
            self.books.setdefault(slug, {})

    def wait_joins(self, n: int, timeout: float = 30.0) -> bool:
        """True once ``n`` channel joins have been answered since the start."""
        with self._cond:
            return self._cond.wait_for(lambda: self.joins >= n, timeout)

    # -------------------------------------------------------------- publishing

    def publish(self, slug: str, message: dict[str, Any]) -> None:
        """Change the book as ``message`` says and push it to the sockets joined to ``slug``."""
        p = message["payload"]
        book = self.books.setdefault(slug, {})
        with self._lock:
            if message["event_type"] == "item_listed":
                book[p["order_hash"]] = rest_entry(message)
            elif message["event_type"] in ("item_cancelled", "item_sold"):
                book.pop(p["order_hash"], None)
            topic = f"collection:{slug}"
            targets = [ws for ws, topics in self._clients.items() if topic in topics]
        frame = json.dumps(["1", None, topic, message["event_type"], message])
        for ws in targets:
            with contextlib.suppress(ConnectionClosed):
                ws.send(frame)

    def push_raw(self, slug: str, text: str) -> None:
        """Send ``text`` as is to the sockets joined to ``slug`` (a malformed frame)."""
        with self._lock:
            targets = [ws for ws, t in self._clients.items() if f"collection:{slug}" in t]
        for ws in targets:
            ws.send(text)

    # -------------------------------------------------------------- the socket

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        query = parse_qs(urlsplit(request.path).query)
        if query.get("token") != [self.api_key]:
            self.refused += 1
            return connection.respond(403, "invalid token\n")
        if query.get("vsn") != ["2.0.0"]:
            return connection.respond(400, "unsupported serializer\n")
        if self._down:
            return connection.respond(503, "unavailable\n")
        return None

    def _handle(self, ws: ServerConnection) -> None:
        with self._lock:
            self._clients[ws] = set()
        try:
            for text in ws:
                join_ref, ref, topic, event, _payload = json.loads(text)
                if topic == "phoenix" and event == "heartbeat":
                    self.heartbeats += 1
                    ws.send(json.dumps([None, ref, "phoenix", "phx_reply", _ok()]))
                elif event == "phx_join":
                    with self._cond:
                        self._clients[ws].add(topic)
                    ws.send(json.dumps([join_ref, ref, topic, "phx_reply", _ok()]))
                    with self._cond:
                        self.joins += 1
                        self._cond.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                self._clients.pop(ws, None)

    # -------------------------------------------------------------- REST

    def _rest_handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                return

            def do_GET(self) -> None:
                owner.rest_requests += 1
                url = urlsplit(self.path)
                parts = url.path.strip("/").split("/")
                if self.headers.get("x-api-key") != owner.api_key:
                    return self._send(401, {"detail": "invalid api key"})
                if owner._down:
                    return self._send(503, {"detail": "unavailable"})
                if parts[:4] != ["api", "v2", "listings", "collection"] or parts[5:] != ["all"]:
                    return self._send(404, {"detail": "not found"})
                with owner._lock:
                    book = owner.books.get(parts[4])
                    entries = None if book is None else list(book.values())
                if entries is None:
                    return self._send(404, {"detail": "collection not found"})
                query = parse_qs(url.query)
                start = int(query.get("next", ["0"])[0])
                limit = min(int(query.get("limit", ["100"])[0]), owner.page_size)
                page = entries[start : start + limit]
                more = start + limit < len(entries)
                body: dict[str, Any] = {"listings": page}
                if more:
                    body["next"] = str(start + limit)
                self._send(200, body)

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


def _ok() -> dict[str, Any]:
    return {"status": "ok", "response": {}}
