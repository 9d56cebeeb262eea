"""The provider seam against misbehaving providers (real HTTP servers on loopback in front of
anvil): "range too large" answers split the range, 5xx is retried, errors are classified; and a
backfill killed with SIGKILL resumes to the same database as an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from listeners.backfill import backfill
from listeners.errors import RangeTooLarge, RpcError, RpcTimeout, RpcUnavailable
from listeners.rpc import Rpc, classify_rpc_error
from nftwatch.localstack import chaintools as ct
from nftwatch.localstack.embedded import Anvil
from tests.support.db import truncate

CHAIN = 31337
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Proxy:
    """Forwards JSON-RPC to anvil; ``rule(body) -> (status, payload) | None`` may answer first."""

    def __init__(self, upstream: str, rule: Any) -> None:
        self.upstream = upstream
        self.rule = rule
        self.seen: list[dict[str, Any]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if isinstance(body, dict):
                    proxy.seen.append(body)
                answer = proxy.rule(body)
                if answer is None:
                    r = httpx.post(proxy.upstream, json=body, timeout=30)
                    status, raw = r.status_code, r.content
                else:
                    status, payload = answer
                    raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def dump(factory: sessionmaker[Session]) -> dict[str, list[tuple[Any, ...]]]:
    with factory() as s:
        return {
            t: [tuple(r) for r in s.execute(text(sql)).all()]
            for t, sql in {
                "transfers": "SELECT * FROM transfers ORDER BY 1,2,3,4,5,6",
                "sales": "SELECT * FROM sales ORDER BY 1,2,3,4,5,6",
                "tokens": "SELECT contract, token_id, owner, minted_block, transfer_count, "
                "sale_count, last_sale_wei FROM tokens ORDER BY 1,2",
                "outbox": "SELECT task, payload, dedupe_key FROM outbox ORDER BY dedupe_key",
            }.items()
        }


def _history(anvil: Anvil, tokens: int = 12) -> tuple[str, int]:
    w3 = ct.connect(anvil.url)
    a = w3.eth.accounts
    nft = ct.deploy(w3, "DemoNFT", "Demo", "DMO")
    market = ct.deploy(w3, "DemoMarket", a[9])
    for i in range(tokens):
        ct.mint(w3, nft, a[1 + i % 3], i)
    for i in range(0, tokens, 3):
        ct.transfer(w3, nft, a[1 + i % 3], a[5], i)
    ct.sell(w3, market, nft, a[5], a[6], 0, 10**18)
    return nft.address, int(w3.eth.block_number)


def _span(body: dict[str, Any]) -> tuple[int, int]:
    flt = body["params"][0]
    return int(flt["fromBlock"], 16), int(flt["toBlock"], 16)


def test_infura_range_error_splits_to_the_suggested_range(anvil: Anvil, sessions) -> None:
    address, head = _history(anvil)

    def infura(body: Any) -> Any:
        if isinstance(body, dict) and body["method"] == "eth_getLogs":
            lo, hi = _span(body)
            if hi - lo + 1 > 3:
                msg = (
                    "query returned more than 10000 results. "
                    f"Try with this block range [{hex(lo)}, {hex(lo + 2)}]."
                )
                return 200, {
                    "jsonrpc": "2.0",
                    "id": body["id"],
                    "error": {"code": -32005, "message": msg},
                }
        return None

    proxy = Proxy(anvil.url, infura)
    try:
        with Rpc(proxy.url) as rpc:
            stats = backfill(rpc, sessions, CHAIN, 0, head, [address], initial_span=1000)
    finally:
        proxy.close()
    assert stats.splits > 0 and stats.blocks == head + 1
    served = [_span(b) for b in proxy.seen if b["method"] == "eth_getLogs"]
    assert (0, 2) in served  # it asked for exactly the range the provider offered
    got = dump(sessions)
    truncate(sessions)
    with Rpc(anvil.url) as direct:
        backfill(direct, sessions, CHAIN, 0, head, [address])
    assert dump(sessions) == got and len(got["transfers"]) == 12 + 4 + 1


def test_alchemy_message_and_plain_halving(anvil: Anvil, sessions) -> None:
    address, head = _history(anvil, tokens=6)
    calls = {"n": 0}

    def alchemy(body: Any) -> Any:
        if isinstance(body, dict) and body["method"] == "eth_getLogs":
            calls["n"] += 1
            if calls["n"] == 1:
                return 503, {"error": "upstream down"}  # retried
            lo, hi = _span(body)
            if hi - lo + 1 > 4:
                msg = (
                    "Log response size exceeded. "
                    "You can make eth_getLogs requests with up to a 4 block range"
                )
                return 200, {
                    "jsonrpc": "2.0",
                    "id": body["id"],
                    "error": {"code": -32602, "message": msg},
                }
        return None

    proxy = Proxy(anvil.url, alchemy)
    try:
        with Rpc(proxy.url) as rpc:
            stats = backfill(rpc, sessions, CHAIN, 0, head, [address], initial_span=64, max_span=64)
    finally:
        proxy.close()
    assert stats.retries == 1 and stats.splits >= 1
    spans = [_span(b) for b in proxy.seen if b["method"] == "eth_getLogs"]
    assert (0, 3) in spans
    assert len(dump(sessions)["transfers"]) == 6 + 2 + 1


def test_error_classification() -> None:
    e = classify_rpc_error(
        {
            "code": -32005,
            "message": "query returned more than 10000 results. "
            "Try with this block range [0x10, 0x1F].",
        }
    )
    assert isinstance(e, RangeTooLarge) and e.suggested == (16, 31) and e.retryable
    e = classify_rpc_error(
        {
            "code": -32600,
            "message": "You can make eth_getLogs requests with up to a 2K block "
            "range and no limit on the response size.",
        },
        from_block=100,
    )
    assert isinstance(e, RangeTooLarge) and e.suggested == (100, 2099)
    assert isinstance(
        classify_rpc_error({"code": 429, "message": "Too Many Requests"}), RpcUnavailable
    )
    e = classify_rpc_error({"code": 3, "message": "execution reverted"})
    assert isinstance(e, RpcError) and not e.retryable and e.rpc_code == 3


def test_transport_errors_are_retryable() -> None:
    with Rpc("http://127.0.0.1:9", timeout=1) as dead, pytest.raises(RpcUnavailable):
        dead.get_block_number()

    def slow(body: Any) -> Any:
        time.sleep(1.0)
        return 200, {"jsonrpc": "2.0", "id": 1, "result": "0x1"}

    proxy = Proxy("http://127.0.0.1:9", slow)
    try:
        with Rpc(proxy.url, timeout=0.2) as rpc, pytest.raises(RpcTimeout):
            rpc.get_block_number()
    finally:
        proxy.close()


_CHILD = """
import sys
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker
from listeners.backfill import backfill
from listeners.rpc import Rpc
url, db, address, head = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
backfill(Rpc(url), sessionmaker(create_engine(db)), 31337, 0, head, [address],
         initial_span=1, max_span=1)
"""


def test_sigkilled_backfill_resumes_to_the_same_database(
    anvil: Anvil, db_url: str, sessions
) -> None:
    address, head = _history(anvil, tokens=15)

    def slow(body: Any) -> Any:
        if isinstance(body, dict) and body["method"] == "eth_getLogs":
            time.sleep(0.05)  # gives the kill a chance to land mid-range
        return None

    proxy = Proxy(anvil.url, slow)
    try:
        for kill_after in (3, 9):
            child = subprocess.Popen(
                [sys.executable, "-c", _CHILD, proxy.url, db_url, address, str(head)],
                cwd=REPO,
                start_new_session=True,
            )
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with sessions() as s:
                    done = s.execute(text("SELECT max(block_number) FROM checkpoints")).scalar()
                if done is not None and done >= kill_after:
                    break
                time.sleep(0.01)
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            assert child.returncode == -signal.SIGKILL
    finally:
        proxy.close()
    with Rpc(anvil.url) as rpc:
        stats = backfill(rpc, sessions, CHAIN, 0, head, [address], initial_span=1, max_span=1)
    assert 0 < stats.resumed_from <= head  # it resumed, not restarted
    resumed = dump(sessions)
    truncate(sessions)
    with Rpc(anvil.url) as rpc:
        backfill(rpc, sessions, CHAIN, 0, head, [address])
    assert dump(sessions) == resumed
