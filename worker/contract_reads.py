"""tokenURI / uri reads by ``eth_call``, many tokens in one JSON-RPC batch request."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from worker.errors import BadTokenURIResult, RPCUnavailable, TokenURIReverted, WorkerError

TOKEN_URI_SELECTOR = "0xc87b56dd"  # tokenURI(uint256), ERC-721
URI_SELECTOR = "0x0e89341c"  # uri(uint256), ERC-1155


def encode_call(selector: str, token_id: int) -> str:
    return selector + format(token_id, "064x")


def decode_string(result: str) -> str:
    """Decode an ABI-encoded ``string`` return value."""
    data = bytes.fromhex(result[2:] if result.startswith("0x") else result)
    if len(data) < 64:
        raise BadTokenURIResult(f"return data of {len(data)} bytes is not an ABI string")
    offset = int.from_bytes(data[:32], "big")
    if offset + 32 > len(data):
        raise BadTokenURIResult("string offset points past the return data")
    length = int.from_bytes(data[offset : offset + 32], "big")
    body = data[offset + 32 : offset + 32 + length]
    if len(body) != length:
        raise BadTokenURIResult("string length runs past the return data")
    return body.decode("utf-8", errors="replace")


def read_token_uris(
    rpc_url: str,
    contract: str,
    token_ids: Sequence[int],
    *,
    standard: str = "erc721",
    block: int | str = "latest",
    timeout: float = 20.0,
) -> dict[int, str | WorkerError]:
    """Each token's URI, or the classified error for that token. A node that is down raises
    :class:`RPCUnavailable` for the whole batch."""
    selector = URI_SELECTOR if standard == "erc1155" else TOKEN_URI_SELECTOR
    tag = hex(block) if isinstance(block, int) else block
    batch = [
        {
            "jsonrpc": "2.0",
            "id": i,
            "method": "eth_call",
            "params": [{"to": contract, "data": encode_call(selector, tid)}, tag],
        }
        for i, tid in enumerate(token_ids)
    ]
    try:
        response = httpx.post(rpc_url, json=batch, timeout=timeout)
    except httpx.HTTPError as exc:
        raise RPCUnavailable(f"eth_call failed: {type(exc).__name__}") from None
    if response.status_code == 429 or response.status_code >= 500:
        raise RPCUnavailable(f"eth_call answered HTTP {response.status_code}")
    replies = response.json()
    if isinstance(replies, dict):  # some nodes answer a batch error with one object
        raise RPCUnavailable(f"eth_call batch refused: {replies.get('error')}")
    by_id = {r.get("id"): r for r in replies}
    out: dict[int, str | WorkerError] = {}
    for i, tid in enumerate(token_ids):
        reply = by_id.get(i, {})
        if "result" in reply:
            try:
                out[tid] = decode_string(reply["result"])
            except WorkerError as exc:
                out[tid] = exc
        else:
            error = reply.get("error") or {}
            message = str(error.get("message", "no reply"))
            if "revert" in message.lower() or error.get("code") == 3:
                out[tid] = TokenURIReverted(f"tokenURI({tid}) reverted: {message[:200]}")
            else:
                out[tid] = RPCUnavailable(f"tokenURI({tid}) failed: {message[:200]}")
    return out
