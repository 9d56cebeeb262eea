"""The one provider seam: a small JSON-RPC client over httpx.

Everything the listener reads from a node goes through :class:`Rpc`, as raw JSON (hex strings),
so decoding stays by hand and tests fake the network with a real HTTP server on loopback.
Errors are classified into :mod:`listeners.errors`: timeouts, connection failures, 429 and 5xx
and "range too large" answers are ``Retryable``; other JSON-RPC errors are ``Permanent``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

import httpx

from listeners.errors import RangeTooLarge, RpcError, RpcTimeout, RpcUnavailable

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


@dataclass(slots=True)
class BlockHeader:
    number: int
    hash: str
    parent_hash: str
    timestamp: int


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
    """JSON-RPC over HTTP with batch support. Thread-safe (httpx.Client is)."""

    def __init__(self, url: str, *, timeout: float = 30.0, client: httpx.Client | None = None):
        self.url = url
        self._client = client or httpx.Client(timeout=timeout)
        self._ids = itertools.count(1)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Rpc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, body: Any) -> Any:
        try:
            resp = self._client.post(self.url, json=body)
        except httpx.TimeoutException as exc:
            raise RpcTimeout(f"{type(exc).__name__} calling {self.url}") from exc
        except httpx.TransportError as exc:
            raise RpcUnavailable(f"{type(exc).__name__} calling {self.url}: {exc}") from exc
        if resp.status_code == 429 or resp.status_code >= 500:
            retry_after: float | None = None
            ra = resp.headers.get("retry-after")
            if ra and ra.strip().isdigit():
                retry_after = float(ra)
            raise RpcUnavailable(
                f"HTTP {resp.status_code} from {self.url}", retry_after=retry_after
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

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Send ``calls`` as one JSON-RPC batch; results in the order of ``calls``."""
        if not calls:
            return []
        first = next(self._ids)
        body = [
            {"jsonrpc": "2.0", "id": first + i, "method": m, "params": p}
            for i, (m, p) in enumerate(calls)
        ]
        self._ids = itertools.count(first + len(calls))
        payload = self._post(body)
        if isinstance(payload, dict) and "error" in payload:
            raise classify_rpc_error(payload["error"])
        if not isinstance(payload, list):
            raise RpcError(f"unexpected batch answer: {str(payload)[:200]}")
        by_id = {item.get("id"): item for item in payload}
        out: list[Any] = []
        for i in range(len(calls)):
            item = by_id.get(first + i)
            if item is None:
                raise RpcUnavailable(f"batch answer lacks id {first + i}")
            if item.get("error") is not None:
                raise classify_rpc_error(item["error"])
            out.append(item.get("result"))
        return out

    # ---- typed reads ----

    def chain_id(self) -> int:
        return int(self.call("eth_chainId", []), 16)

    def get_block_number(self) -> int:
        return int(self.call("eth_blockNumber", []), 16)

    def get_block(self, number: int | str) -> BlockHeader | None:
        tag = hex(number) if isinstance(number, int) else number
        raw = self.call("eth_getBlockByNumber", [tag, False])
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

    def eth_call(self, to: str, data: str, block: int | str = "latest") -> str:
        tag = hex(block) if isinstance(block, int) else block
        return str(self.call("eth_call", [{"to": to, "data": data}, tag]))


def _header(raw: dict[str, Any]) -> BlockHeader:
    return BlockHeader(
        number=int(raw["number"], 16),
        hash=raw["hash"].lower(),
        parent_hash=raw["parentHash"].lower(),
        timestamp=int(raw["timestamp"], 16),
    )
