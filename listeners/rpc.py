"""The one provider seam: a small JSON-RPC client over httpx.

Everything read from a node goes through :class:`Rpc` (the listeners' blocks and logs, the
worker's contract reads), as raw JSON (hex strings), so decoding stays by hand and tests fake the
network with a real HTTP server on loopback. Errors are classified into :mod:`listeners.errors`:
timeouts, connection failures, 429 and 5xx (with the node's Retry-After) and "range too large"
answers are ``Retryable``; other JSON-RPC errors are ``Permanent``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Any

import httpx

from listeners.errors import RangeTooLarge, RpcError, RpcTimeout, RpcUnavailable
from store.records import BlockHeader

# Provider phrasings of "your eth_getLogs range is too large".
_RANGE_MESSAGES = (
    "query returned more than",  # Infura -32005, geth
    "block range",  # Alchemy "You can make eth_getLogs requests with up to a 2K block range"
    "range is too large",
    "range too large",
    "limit exceeded",
    "too many results",
    "response size exceeded",
    "exceed maximum block range",
    "query timeout exceeded",
    "logs matched by query exceeds",
)
# Infura: "Try with this block range [0x1, 0x2]"; Alchemy: "... should work: [0x1, 0x2]"
_SUGGESTED = re.compile(r"\[\s*(0x[0-9a-fA-F]+)\s*,\s*(0x[0-9a-fA-F]+)\s*\]")
# Alchemy: "up to a 2K block range" / "up to a 500 block range"
_MAX_SPAN = re.compile(r"up to a (\d+)(K?) block range", re.IGNORECASE)

BlockTag = int | str  # a block number, or a tag such as "latest"
Call = tuple[str, list[Any]]  # (method, params)


def block_tag(block: BlockTag) -> str:
    return hex(block) if isinstance(block, int) else block


def classify_rpc_error(error: dict[str, Any], *, from_block: int | None = None) -> Exception:
    """Map a JSON-RPC ``error`` object to one of our exceptions."""
    code = error.get("code")
    message = str(error.get("message", ""))
    data = error.get("data")
    text = f"{message} {data if isinstance(data, str) else ''}".lower()
    if code == -32005 or any(m in text for m in _RANGE_MESSAGES):
        suggested: tuple[int, int] | None = None
        m = _SUGGESTED.search(message) or (
            _SUGGESTED.search(data) if isinstance(data, str) else None
        )
        if m:
            suggested = (int(m.group(1), 16), int(m.group(2), 16))
        elif from_block is not None and (span := _MAX_SPAN.search(message)):
            width = int(span.group(1)) * (1000 if span.group(2) else 1)
            suggested = (from_block, from_block + max(1, width) - 1)
        if code == -32005 or suggested is not None or "range" in text or "result" in text:
            return RangeTooLarge(f"rpc {code}: {message}", suggested=suggested)
    if code in (429, -32029) or "rate limit" in text or "too many requests" in text:
        return RpcUnavailable(f"rpc {code}: {message}")
    if code == -32603 and ("timeout" in text or "temporarily" in text):
        return RpcUnavailable(f"rpc {code}: {message}")
    return RpcError(f"rpc {code}: {message}", rpc_code=code if isinstance(code, int) else None)


class Rpc:
    """JSON-RPC over HTTP with batch support. Thread-safe (httpx.Client is). A ``client`` passed
    in is shared: :meth:`close` leaves it open for its owner."""

    def __init__(self, url: str, *, timeout: float = 30.0, client: httpx.Client | None = None):
        self.url = url
        self.timeout = timeout
        self._owns_client = client is None
        self._client = client or httpx.Client(timeout=timeout)
        self._ids = itertools.count(1)
        self.requests = 0  # HTTP requests sent, for tests and benchmarks

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Rpc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, body: Any) -> Any:
        self.requests += 1
        try:
            resp = self._client.post(self.url, json=body, timeout=self.timeout)
        except httpx.TimeoutException as exc:
            raise RpcTimeout(f"{type(exc).__name__} calling {self.url}") from exc
        except httpx.HTTPError as exc:
            raise RpcUnavailable(f"{type(exc).__name__} calling {self.url}: {exc}") from exc
        if resp.status_code == 429 or resp.status_code >= 500:
            raise RpcUnavailable(
                f"HTTP {resp.status_code} from {self.url}",
                retry_after=_retry_after(resp.headers.get("retry-after")),
            )
        try:
            payload = resp.json()
        except ValueError as exc:
            if resp.status_code >= 400:
                raise RpcError(f"HTTP {resp.status_code} from {self.url}") from exc
            raise RpcUnavailable(f"non-JSON answer from {self.url}") from exc
        return payload

    def call(self, method: str, params: list[Any], *, from_block: int | None = None) -> Any:
        payload = self._post(
            {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        )
        if not isinstance(payload, dict):
            raise RpcError(f"unexpected answer to {method}: {str(payload)[:200]}")
        if "error" in payload and payload["error"] is not None:
            raise classify_rpc_error(payload["error"], from_block=from_block)
        return payload.get("result")

    def replies(
        self, calls: Sequence[Call], *, batch_size: int | None = None
    ) -> list[dict[str, Any] | None]:
        """Each call's raw reply object, in the order of ``calls``, sent as JSON-RPC batches of at
        most ``batch_size`` calls (one batch when None); None where the node sent no reply.

        A call's own ``error`` stays in its reply for the caller to read (a revert carries its
        data there); a failed request, or a batch the node refused as a whole, raises."""
        out: list[dict[str, Any] | None] = []
        step = batch_size or max(1, len(calls))
        for start in range(0, len(calls), step):
            chunk = calls[start : start + step]
            ids = [next(self._ids) for _ in chunk]
            body = [
                {"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                for i, (m, p) in zip(ids, chunk, strict=True)
            ]
            payload = self._post(body)
            if isinstance(payload, dict) and "error" in payload:
                raise classify_rpc_error(payload["error"])
            if not isinstance(payload, list):
                raise RpcError(f"unexpected batch answer: {str(payload)[:200]}")
            by_id = {item.get("id"): item for item in payload if isinstance(item, dict)}
            out.extend(by_id.get(i) for i in ids)
        return out

    def batch(self, calls: Sequence[Call]) -> list[Any]:
        """Send ``calls`` as one JSON-RPC batch; results in the order of ``calls``. Any call's
        error raises."""
        out: list[Any] = []
        for (method, _), reply in zip(calls, self.replies(calls), strict=True):
            if reply is None:
                raise RpcUnavailable(f"batch answer lacks a reply to {method}")
            if reply.get("error") is not None:
                raise classify_rpc_error(reply["error"])
            out.append(reply.get("result"))
        return out

    # ---- typed reads ----

    def chain_id(self) -> int:
        return int(self.call("eth_chainId", []), 16)

    def get_block_number(self) -> int:
        return int(self.call("eth_blockNumber", []), 16)

    def get_block(self, number: BlockTag) -> BlockHeader | None:
        raw = self.call("eth_getBlockByNumber", [block_tag(number), False])
        return _header(raw) if raw else None

    def get_blocks(self, numbers: list[int], *, batch_size: int = 200) -> dict[int, BlockHeader]:
        """Headers of ``numbers`` in JSON-RPC batches; a block the node lacks is left out."""
        out: dict[int, BlockHeader] = {}
        for i in range(0, len(numbers), batch_size):
            chunk = numbers[i : i + batch_size]
            results = self.batch([("eth_getBlockByNumber", [hex(n), False]) for n in chunk])
            for raw in results:
                if raw:
                    h = _header(raw)
                    out[h.number] = h
        return out

    def get_receipt_logs(
        self, tx_hashes: Sequence[str], *, batch_size: int = 100
    ) -> list[dict[str, Any]]:
        """Every log of the transactions ``tx_hashes`` (their receipts, in JSON-RPC batches);
        a receipt the node lacks (an orphaned transaction) gives none."""
        out: list[dict[str, Any]] = []
        for i in range(0, len(tx_hashes), batch_size):
            chunk = tx_hashes[i : i + batch_size]
            for receipt in self.batch([("eth_getTransactionReceipt", [h]) for h in chunk]):
                if receipt:
                    out.extend(receipt.get("logs") or [])
        return out

    def get_logs(
        self,
        from_block: int,
        to_block: int,
        addresses: list[str] | None = None,
        topics: list[Any] | None = None,
    ) -> list[dict[str, Any]]:
        flt: dict[str, Any] = {"fromBlock": hex(from_block), "toBlock": hex(to_block)}
        if addresses:
            flt["address"] = addresses
        if topics:
            flt["topics"] = topics
        result = self.call("eth_getLogs", [flt], from_block=from_block)
        return list(result or [])

    def eth_call(self, to: str, data: str, block: BlockTag = "latest") -> str:
        return str(self.call("eth_call", [{"to": to, "data": data}, block_tag(block)]))

    def eth_calls(
        self, calls: Sequence[tuple[str, str, BlockTag]], *, batch_size: int | None = None
    ) -> list[dict[str, Any] | None]:
        """``eth_call`` of each (to, data, block) in JSON-RPC batches: the raw replies of
        :meth:`replies`, so one call's revert is that call's answer, not the batch's."""
        return self.replies(
            [("eth_call", [{"to": to, "data": data}, block_tag(b)]) for to, data, b in calls],
            batch_size=batch_size,
        )


def _retry_after(value: str | None) -> float | None:
    """The node's Retry-After in seconds, when it sent delta-seconds."""
    if value and value.strip().isdigit():
        return float(value)
    return None


def _header(raw: dict[str, Any]) -> BlockHeader:
    return BlockHeader(
        number=int(raw["number"], 16),
        hash=raw["hash"].lower(),
        parent_hash=raw["parentHash"].lower(),
        timestamp=int(raw["timestamp"], 16),
    )
