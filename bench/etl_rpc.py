"""A JSON-RPC endpoint on loopback that serves the bench's ``eth_getLogs`` logs as a node would,
for ethereum-etl's own command line (``bench/etl_compare.py``).

ethereum-etl's ``stream -e token_transfer`` never calls ``eth_getLogs``: it reads every block with
its transactions (``eth_getBlockByNumber``, full), then every transaction's receipt
(``eth_getTransactionReceipt``) and takes the logs from the receipts. Its
``export_token_transfers`` uses a log filter (``eth_newFilter`` / ``eth_getFilterLogs`` /
``eth_uninstallFilter``). So the server derives, from the same logs and block headers our side
ingests, one transaction and one receipt per transaction hash (the logs themselves unchanged; the
fields a log does not carry, such as sender, gas and bloom, are fixed plausible values of a node's
sizes), and answers:

    eth_blockNumber, eth_chainId, eth_getBlockByNumber (number or "latest", full or hashes),
    eth_getTransactionReceipt, eth_getLogs, eth_newFilter, eth_getFilterLogs,
    eth_uninstallFilter

single or batched. Every answer is encoded once, up front, so serving costs a dictionary look-up
and a join: the time measured is ethereum-etl's, not the server's.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol


class Header(Protocol):
    number: int
    hash: str
    parent_hash: str
    timestamp: int


_ZERO32 = "0x" + "00" * 32
_BLOOM = "0x" + "00" * 256
_SENDER = "0x" + "5e" * 20


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass
class _Block:
    full: bytes
    hashes: bytes
    logs: list[tuple[str, str, bytes]]  # (topic0, address, encoded log)


class RecordedChain:
    """The answers, encoded: blocks (with transactions or their hashes), receipts, logs."""

    def __init__(self, logs: Sequence[dict[str, Any]], headers: Sequence[Header]) -> None:
        by_block: dict[int, list[dict[str, Any]]] = {}
        for log in logs:
            by_block.setdefault(int(log["blockNumber"], 16), []).append(log)
        self.blocks: dict[int, _Block] = {}
        self.receipts: dict[str, bytes] = {}
        for h in headers:
            block_logs = by_block.get(h.number, [])
            txs: dict[str, list[dict[str, Any]]] = {}
            for log in block_logs:
                txs.setdefault(log["transactionHash"], []).append(log)
            tx_objs = []
            cumulative = 0
            for i, (tx_hash, tx_logs) in enumerate(txs.items()):
                common = {
                    "blockHash": h.hash,
                    "blockNumber": hex(h.number),
                    "transactionIndex": hex(i),
                    "from": _SENDER,
                    "to": tx_logs[0]["address"],
                }
                tx_objs.append(
                    {
                        **common,
                        "hash": tx_hash,
                        "nonce": hex(i),
                        "value": "0x0",
                        "gas": hex(300_000),
                        "gasPrice": hex(30 * 10**9),
                        "maxFeePerGas": hex(40 * 10**9),
                        "maxPriorityFeePerGas": hex(10**9),
                        "input": "0x" + "ab" * 68,
                        "type": "0x2",
                        "chainId": "0x1",
                        "accessList": [],
                        "v": "0x1",
                        "r": "0x" + "11" * 32,
                        "s": "0x" + "22" * 32,
                    }
                )
                cumulative += 100_000
                self.receipts[tx_hash] = _dumps(
                    {
                        **common,
                        "transactionHash": tx_hash,
                        "cumulativeGasUsed": hex(cumulative),
                        "gasUsed": hex(100_000),
                        "effectiveGasPrice": hex(30 * 10**9),
                        "contractAddress": None,
                        "logs": tx_logs,
                        "logsBloom": _BLOOM,
                        "status": "0x1",
                        "type": "0x2",
                    }
                )
            block = {
                "number": hex(h.number),
                "hash": h.hash,
                "parentHash": h.parent_hash,
                "nonce": "0x0000000000000000",
                "sha3Uncles": _ZERO32,
                "logsBloom": _BLOOM,
                "transactionsRoot": _ZERO32,
                "stateRoot": _ZERO32,
                "receiptsRoot": _ZERO32,
                "miner": "0x" + "00" * 20,
                "difficulty": "0x0",
                "totalDifficulty": hex(58_750_003_716_598_352_816_469),
                "extraData": "0x",
                "size": hex(100_000),
                "gasLimit": hex(30_000_000),
                "gasUsed": hex(cumulative),
                "timestamp": hex(h.timestamp),
                "baseFeePerGas": hex(29 * 10**9),
                "mixHash": _ZERO32,
                "uncles": [],
            }
            self.blocks[h.number] = _Block(
                full=_dumps({**block, "transactions": tx_objs}),
                hashes=_dumps({**block, "transactions": list(txs)}),
                logs=[(lg["topics"][0], lg["address"].lower(), _dumps(lg)) for lg in block_logs],
            )
        self.latest = max(self.blocks)
        self.filters: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    def _block_number(self, tag: Any) -> int:
        if tag in (None, "latest", "safe", "finalized", "pending"):
            return self.latest
        if tag == "earliest":
            return min(self.blocks)
        return int(tag, 16) if isinstance(tag, str) else int(tag)

    def _logs(self, flt: dict[str, Any]) -> bytes:
        lo = self._block_number(flt.get("fromBlock", "latest"))
        hi = self._block_number(flt.get("toBlock", "latest"))
        topics = flt.get("topics") or []
        t0 = topics[0] if topics else None
        t0s = set(t0) if isinstance(t0, list) else ({t0} if t0 else None)
        addr = flt.get("address")
        addrs = {a.lower() for a in ([addr] if isinstance(addr, str) else addr)} if addr else None
        out = [
            enc
            for n in range(lo, hi + 1)
            if n in self.blocks
            for topic0, address, enc in self.blocks[n].logs
            if (t0s is None or topic0 in t0s) and (addrs is None or address in addrs)
        ]
        return b"[" + b",".join(out) + b"]"

    def result(self, method: str, params: list[Any]) -> bytes:
        """The encoded ``result`` of one call; raises KeyError for a method not served."""
        if method == "eth_getBlockByNumber":
            b = self.blocks.get(self._block_number(params[0]))
            if b is None:
                return b"null"
            return b.full if len(params) > 1 and params[1] else b.hashes
        if method == "eth_getTransactionReceipt":
            return self.receipts.get(params[0], b"null")
        if method == "eth_blockNumber":
            return _dumps(hex(self.latest))
        if method == "eth_chainId":
            return b'"0x1"'
        if method == "net_version":
            return b'"1"'
        if method == "eth_getLogs":
            return self._logs(params[0])
        if method == "eth_newFilter":
            fid = hex(next(self._ids))
            self.filters[fid] = params[0]
            return _dumps(fid)
        if method == "eth_getFilterLogs":
            return self._logs(self.filters[params[0]])
        if method == "eth_uninstallFilter":
            return b"true" if self.filters.pop(params[0], None) is not None else b"false"
        raise KeyError(method)


class RpcServer:
    """``RecordedChain`` over HTTP/1.1 (keep-alive) on 127.0.0.1, in a thread of this process.
    Counts calls per method and notes when the first request of a run arrived."""

    def __init__(self, chain: RecordedChain) -> None:
        self.chain = chain
        self.calls: Counter[str] = Counter()
        self.first_request: float | None = None
        lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms stall on keep-alive replies

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _one(self, req: dict[str, Any]) -> bytes:
                rid = _dumps(req.get("id"))
                method = req.get("method", "")
                with lock:
                    server.calls[method] += 1
                try:
                    res = server.chain.result(method, req.get("params") or [])
                except KeyError:
                    err = {"code": -32601, "message": f"the method {method} does not exist"}
                    return b'{"jsonrpc":"2.0","id":' + rid + b',"error":' + _dumps(err) + b"}"
                return b'{"jsonrpc":"2.0","id":' + rid + b',"result":' + res + b"}"

            def do_POST(self) -> None:
                if server.first_request is None:
                    server.first_request = time.perf_counter()
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if isinstance(body, list):
                    out = b"[" + b",".join(self._one(r) for r in body) + b"]"
                else:
                    out = self._one(body)
                head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                self.wfile.write(head + str(len(out)).encode() + b"\r\n\r\n" + out)  # one write

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> RpcServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def reset(self) -> None:
        self.calls.clear()
        self.first_request = None
