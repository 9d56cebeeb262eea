"""Real HTTP servers on loopback for the fetch tests: an origin with honest and hostile routes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

Route = Callable[[BaseHTTPRequestHandler], None]


def static(body: bytes, content_type: str = "application/octet-stream", status: int = 200) -> Route:
    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return route


def redirect(location: str, status: int = 302) -> Route:
    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Location", location)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return route


def status_with_retry_after(status: int, retry_after: str | None) -> Route:
    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        if retry_after is not None:
            h.send_header("Retry-After", retry_after)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return route


def slow_drip(interval: float = 0.2) -> Route:
    """Headers at once, then one byte per ``interval`` for as long as the client listens."""

    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", "100000")
        h.end_headers()
        try:
            for _ in range(100000):
                h.wfile.write(b" ")
                h.wfile.flush()
                time.sleep(interval)
        except OSError:
            return

    return route


def endless(chunk: int = 64 * 1024) -> Route:
    """A chunked body that never ends."""

    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        block = b"[" * chunk
        try:
            while True:
                h.wfile.write(f"{len(block):x}\r\n".encode() + block + b"\r\n")
        except OSError:
            return

    return route


def sequence(*routes: Route) -> Route:
    """Each request takes the next route; the last one repeats."""
    lock = threading.Lock()
    state = {"i": 0}

    def route(h: BaseHTTPRequestHandler) -> None:
        with lock:
            i = min(state["i"], len(routes) - 1)
            state["i"] += 1
        routes[i](h)

    return route


class OriginServer:
    """A threaded HTTP server whose routes are set per test; unknown paths answer 404."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, int] = {}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                return

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                owner.hits[path] = owner.hits.get(path, 0) + 1
                route = owner.routes.get(path)
                if route is None:
                    static(b"not found", "text/plain", 404)(self)
                    return
                self.query = parse_qs(urlsplit(self.path).query)
                route(self)

            do_POST = do_GET

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"http://{self.netloc}{path}"

    def start(self) -> OriginServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
