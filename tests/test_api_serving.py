"""The live server against slow and vanishing clients: a request whose headers never finish
is answered 408 and closed (slowloris), a connection that never sends one is closed, and every
closed connection is logged with its cause; on a host so busy that its workers are slow to
start, they are waited for, not killed and restarted; and connections that arrive together are
spread over the workers."""

from __future__ import annotations

import socket
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.api import config, live_api

KEY = "serving-key-0123456789"


def read_until_closed(sock: socket.socket) -> bytes:
    sock.settimeout(60)  # only bounds a server that never closes
    chunks = []
    while chunk := sock.recv(4096):
        chunks.append(chunk)
    return b"".join(chunks)


def wait_for_log(api: object, *needles: str) -> str:
    for _ in range(300):  # the log line follows the close; give the worker a moment to write
        text = api.log_text()  # type: ignore[attr-defined]
        if any(n in text for n in needles):
            return str(text)
        time.sleep(0.1)
    return str(api.log_text())  # type: ignore[attr-defined]


def wait_for_workers(api: object, count: int) -> str:
    for _ in range(600):
        log = str(api.log_text())  # type: ignore[attr-defined]
        if log.count("Application startup complete") >= count or "died" in log:
            return log
        time.sleep(0.1)
    return str(api.log_text())  # type: ignore[attr-defined]


def test_slow_headers_are_cut_off_and_every_close_is_logged(db_url: str) -> None:
    cfg = config(db_url, [KEY], workers=1, header_timeout_s=1.0, keep_alive_s=1)
    with live_api(cfg) as api:
        with socket.create_connection(("127.0.0.1", api.port)) as slow:
            slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            answer = read_until_closed(slow)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        log = wait_for_log(api, "request headers incomplete")
        assert "request headers incomplete after 1 s" in log

        with socket.create_connection(("127.0.0.1", api.port)) as silent:
            assert read_until_closed(silent) == b""
        assert "no request within 1 s of connecting" in wait_for_log(api, "no request within")

        with socket.create_connection(("127.0.0.1", api.port)) as idle:
            idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = read_until_closed(idle)  # answered, then closed once idle
        assert answer.startswith(b"HTTP/1.1 200")
        assert "after 1 request(s): idle for 1 s" in wait_for_log(api, "idle for 1 s")

        with socket.create_connection(("127.0.0.1", api.port)) as rude:
            rude.sendall(
                b"GET /v1/listings/stream HTTP/1.1\r\nHost: x\r\nX-API-Key: " + KEY.encode()
            )
            rude.sendall(b"\r\n\r\n")
            assert rude.recv(100).startswith(b"HTTP/1.1 200")
        # a stream the client walked away from: closed, or reset where data was unread
        walked_away = ("before the response was complete", "lost (ConnectionResetError")
        log = wait_for_log(api, *walked_away)
        assert any(
            f"closed after 1 request(s): {c}" in log for c in ("client closed", "connection")
        )
        assert any(n in log for n in walked_away)
        assert "Traceback" not in log


# Imported first by every Python process started with this folder on its path; only uvicorn's
# spawned workers (``--multiprocessing-fork`` in argv) pause, as on a host too busy to import fast.
SLOW_WORKER = """
import sys, time
if "--multiprocessing-fork" in sys.argv:
    time.sleep({pause})
"""


def test_workers_slow_to_start_are_waited_for_not_restarted(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # uvicorn's supervisor kills a worker that has not answered its ping within 5 s of starting
    # (by default): a busy host then restarts every worker for ever and the API never answers
    (tmp_path / "sitecustomize.py").write_text(SLOW_WORKER.format(pause=8))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    cfg = config(db_url, [KEY], workers=2)
    with live_api(cfg, startup_s=120) as api:
        assert httpx.get(f"{api.base}/healthz", timeout=10).status_code == 200
        log = wait_for_workers(api, 2)  # the first worker answered; the second may be waking
    assert "died" not in log, log
    assert log.count("Application startup complete") == 2, log


def test_connections_that_arrive_together_are_spread_over_the_workers(db_url: str) -> None:
    # on one shared socket the first worker to wake accepts every pending connection; with a
    # socket per worker the kernel spreads them (by address: 10+ of 50 each, all but surely)
    cfg = config(db_url, [KEY], workers=2)
    with live_api(cfg) as api:
        wait_for_workers(api, 2)  # a worker still starting listens on nothing yet
        clients = [socket.create_connection(("127.0.0.1", api.port)) for _ in range(50)]
        try:
            for c in clients:
                c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            for c in clients:
                c.settimeout(60)
                assert c.recv(100).startswith(b"HTTP/1.1 200")
            per_worker = Counter(
                c.pid
                for c in psutil.net_connections("tcp")
                if c.laddr and c.laddr.port == api.port and c.status == psutil.CONN_ESTABLISHED
            )
        finally:
            for c in clients:
                c.close()
        log = api.log_text()
    assert sum(per_worker.values()) == 50
    assert len(per_worker) == 2 and min(per_worker.values()) >= 10, per_worker
    assert "one socket per worker (2)" in log


def test_the_cli_serves_with_the_configs_default_threads() -> None:
    # the CLI spells the default out rather than import the server (and uvicorn) at start-up
    import inspect

    from nftwatch.api.serve import ServeConfig
    from nftwatch.cli.api import api

    assert inspect.signature(api).parameters["threads"].default == ServeConfig.threads
