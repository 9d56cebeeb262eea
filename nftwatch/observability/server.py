"""A small HTTP server for ``/metrics`` (Prometheus text format) and ``/healthz`` (JSON; 200
when healthy, 503 otherwise), on a daemon thread."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

# () -> (healthy, details)
HealthCheck = Callable[[], tuple[bool, dict[str, Any]]]


def _always_healthy() -> tuple[bool, dict[str, Any]]:
    return True, {}


class MetricsServer:
    def __init__(
        self,
        registry: CollectorRegistry,
        health: HealthCheck = _always_healthy,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.registry = registry
        self.health = health
        self.host = host
        self.requested_port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the metrics server is not running")
        return int(self._server.server_address[1])

    def start(self) -> int:
        registry, health = self.registry, self.health

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
                elif path == "/healthz":
                    try:
                        ok, details = health()
                    except Exception as exc:  # a failing check is an unhealthy answer
                        ok, details = False, {"error": type(exc).__name__}
                    body = json.dumps({"status": "ok" if ok else "unhealthy", **details})
                    self._send(200 if ok else 503, "application/json", body.encode())
                else:
                    self._send(404, "text/plain", b"not found\n")

            def _send(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # scrapes are not news
                return

        self._server = ThreadingHTTPServer((self.host, self.requested_port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-http", daemon=True
        )
        self._thread.start()
        log.info("metrics and health on http://%s:%d/", self.host, self.port)
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
