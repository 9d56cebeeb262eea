"""A JSON-RPC node on loopback that replays recorded mainnet logs: the network seam of a hosted
Ethereum node, for tests that run the real backfill and CLI against real chain data.

It serves, single or batched, what our backfill asks of a node::

    eth_chainId, net_version, eth_blockNumber, eth_getBlockByNumber, eth_getLogs,
    eth_getTransactionByHash, eth_getTransactionReceipt

``eth_getLogs`` filters as a node does: ``fromBlock``/``toBlock`` (or ``blockHash``), an
``address`` string or list, and ``topics`` by position, where null matches anything and a list
matches any of its values. A recording holds logs and block headers, not transactions, so
``eth_getTransactionByHash`` answers null (a node's answer for a transaction it does not
know); a receipt carries the recorded logs of its transaction (the recording keeps every log of
the transactions it keeps) and nothing else of a receipt but its block and status; any other
method gets the JSON-RPC "method not found" error. ``calls`` counts the methods asked, so a
test can see what the client did.

The recording is a JSON file: ``{"blocks": [{number, hash, parent_hash, timestamp}], "logs":
[eth_getLogs results]}``.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_ZERO32 = "0x" + "00" * 32
_BLOOM = "0x" + "00" * 256


class MethodNotFound(Exception):
    pass


class InvalidParams(Exception):
    pass


def _matches(log: dict[str, Any], addresses: set[str] | None, topics: Sequence[Any]) -> bool:
    if addresses is not None and log["address"].lower() not in addresses:
        return False
    if len(topics) > len(log["topics"]) and any(
        t is not None for t in topics[len(log["topics"]) :]
    ):
        return False  # a position asked for that the log does not have
    for want, have in zip(topics, log["topics"], strict=False):
        if want is None:
            continue
        options = want if isinstance(want, list) else [want]
        if have.lower() not in {o.lower() for o in options}:
            return False
    return True


class RecordedChain:
    """The recorded blocks and logs, answering JSON-RPC calls."""

    def __init__(self, blocks: Sequence[dict[str, Any]], logs: Sequence[dict[str, Any]]) -> None:
        self.headers = {int(b["number"]): b for b in blocks}
        self.by_hash = {b["hash"].lower(): int(b["number"]) for b in blocks}
        self.logs = sorted(
            logs, key=lambda lg: (int(lg["blockNumber"], 16), int(lg["logIndex"], 16))
        )
        self.latest = max(self.headers)

    @classmethod
    def load(cls, path: Path) -> RecordedChain:
        doc = json.loads(path.read_text())
        return cls(doc["blocks"], doc["logs"])

    def _number(self, tag: Any) -> int:
        if tag in (None, "latest", "safe", "finalized", "pending"):
            return self.latest
        if tag == "earliest":
            return 0
        if not isinstance(tag, str) or not tag.startswith("0x"):
            raise InvalidParams(f"invalid block tag {tag!r}")
        return int(tag, 16)

    def _block(self, number: int, full: bool) -> dict[str, Any] | None:
        h = self.headers.get(number)
        if h is None:
            return None
        tx_hashes = list(
            dict.fromkeys(
                lg["transactionHash"] for lg in self.logs if int(lg["blockNumber"], 16) == number
            )
        )
        return {
            "number": hex(number),
            "hash": h["hash"],
            "parentHash": h["parent_hash"],
            "timestamp": hex(int(h["timestamp"])),
            "nonce": "0x0000000000000000",
            "sha3Uncles": _ZERO32,
            "logsBloom": _BLOOM,
            "transactionsRoot": _ZERO32,
            "stateRoot": _ZERO32,
            "receiptsRoot": _ZERO32,
            "miner": "0x" + "00" * 20,
            "difficulty": "0x0",
            "extraData": "0x",
            "gasLimit": hex(30_000_000),
            "gasUsed": "0x0",
            "uncles": [],
            # the recording has no transactions: hashes only, and none in full
            "transactions": [] if full else tx_hashes,
        }

    def get_logs(self, flt: dict[str, Any]) -> list[dict[str, Any]]:
        if "blockHash" in flt:
            number = self.by_hash.get(str(flt["blockHash"]).lower())
            if number is None:
                return []
            lo = hi = number
        else:
            lo = self._number(flt.get("fromBlock", "latest"))
            hi = self._number(flt.get("toBlock", "latest"))
            if lo > hi:
                raise InvalidParams("fromBlock is after toBlock")
        address = flt.get("address")
        addresses = None
        if address:
            addresses = {a.lower() for a in ([address] if isinstance(address, str) else address)}
        topics = flt.get("topics") or []
        return [
            lg
            for lg in self.logs
            if lo <= int(lg["blockNumber"], 16) <= hi and _matches(lg, addresses, topics)
        ]

    def result(self, method: str, params: list[Any]) -> Any:
        if method == "eth_chainId":
            return "0x1"
        if method == "net_version":
            return "1"
        if method == "eth_blockNumber":
            return hex(self.latest)
        if method == "eth_getBlockByNumber":
            return self._block(
                self._number(params[0]), bool(params[1]) if len(params) > 1 else False
            )
        if method == "eth_getLogs":
            return self.get_logs(params[0] if params else {})
        if method == "eth_getTransactionByHash":
            return None
        if method == "eth_getTransactionReceipt":
            return self._receipt(str(params[0]).lower())
        raise MethodNotFound(method)

    def _receipt(self, tx_hash: str) -> dict[str, Any] | None:
        logs = [lg for lg in self.logs if lg["transactionHash"].lower() == tx_hash]
        if not logs:
            return None
        return {
            "transactionHash": logs[0]["transactionHash"],
            "blockHash": logs[0]["blockHash"],
            "blockNumber": logs[0]["blockNumber"],
            "status": "0x1",
            "logs": logs,
        }


class RecordedNode:
    """``RecordedChain`` over HTTP on 127.0.0.1 (a context manager; ``url`` once entered)."""

    def __init__(self, chain: RecordedChain) -> None:
        self.chain = chain
        self.calls: Counter[str] = Counter()
        lock = threading.Lock()
        node = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _one(self, req: dict[str, Any]) -> dict[str, Any]:
                method = str(req.get("method", ""))
                with lock:
                    node.calls[method] += 1
                reply: dict[str, Any] = {"jsonrpc": "2.0", "id": req.get("id")}
                try:
                    reply["result"] = node.chain.result(method, list(req.get("params") or []))
                except MethodNotFound:
                    reply["error"] = {
                        "code": -32601,
                        "message": f"the method {method} does not exist",
                    }
                except (InvalidParams, KeyError, IndexError, TypeError, ValueError) as e:
                    reply["error"] = {"code": -32602, "message": f"invalid params: {e}"}
                return reply

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                answer = [self._one(r) for r in body] if isinstance(body, list) else self._one(body)
                out = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> RecordedNode:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
