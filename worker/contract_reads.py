"""tokenURI / uri reads by ``eth_call``: many tokens per request, at the event's block.

Reads go through Multicall3's ``aggregate3`` when the node has it at its canonical address (one
``eth_call`` per chunk of tokens, each call allowed to fail on its own), and otherwise as a
JSON-RPC batch of plain ``eth_call``s. ERC-165 tells an ERC-721 from an ERC-1155 when the
collection's standard is not known. Every request goes through :class:`listeners.rpc.Rpc`, so a
node that fails one raises :mod:`listeners.errors` (``Retryable`` with the node's Retry-After);
what each token's call came to is a string or a :mod:`worker.errors` outcome.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from listeners.rpc import BlockTag, Rpc, block_tag
from worker.errors import BadTokenURIResult, TokenURIReverted, TokenURIUnavailable, WorkerError

TOKEN_URI_SELECTOR = "0xc87b56dd"  # tokenURI(uint256), ERC-721
URI_SELECTOR = "0x0e89341c"  # uri(uint256), ERC-1155
SUPPORTS_INTERFACE_SELECTOR = "0x01ffc9a7"  # supportsInterface(bytes4), ERC-165
ERC721_INTERFACE = "80ac58cd"
ERC1155_INTERFACE = "d9b67a26"
MULTICALL3_ADDRESS = "0xcA11bde05977b3631167028862bE2a173976CA11"
AGGREGATE3_SELECTOR = "82ad56cb"  # aggregate3((address,bool,bytes)[])
ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)


def encode_call(selector: str, token_id: int) -> str:
    return selector + format(token_id, "064x")


def decode_string(result: str | bytes) -> str:
    """Decode an ABI-encoded ``string`` return value."""
    if isinstance(result, str):
        data = bytes.fromhex(result[2:] if result.startswith("0x") else result)
    else:
        data = result
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


def revert_reason(data: bytes) -> str:
    """A readable revert reason: ``Error(string)``'s text, else the custom error's selector."""
    if data[:4] == ERROR_STRING_SELECTOR:
        try:
            return str(abi_decode(["string"], data[4:])[0])[:200]
        except Exception:  # malformed reason data: fall through to the selector
            pass
    return f"custom error 0x{data[:4].hex()}" if data else "no reason"


def _result(reply: Mapping[str, Any] | None) -> Any:
    return reply.get("result") if reply is not None else None


def _is_revert(error: Mapping[str, Any]) -> bool:
    return error.get("code") == 3 or "revert" in str(error.get("message", "")).lower()


class ContractReader:
    """Reads against one node. ``multicall``: True forces Multicall3, False never uses it, None
    (default) uses it when the node has code at the canonical address. ``client``: a pooled
    HTTP client to share (left open by :meth:`close`)."""

    def __init__(
        self,
        rpc_url: str,
        *,
        timeout: float = 20.0,
        multicall: bool | None = None,
        batch_size: int = 100,
        client: httpx.Client | None = None,
    ) -> None:
        self.rpc = Rpc(rpc_url, timeout=timeout, client=client)
        self.batch_size = batch_size
        self._multicall = multicall

    @property
    def requests(self) -> int:
        """HTTP requests sent, for tests and benchmarks."""
        return self.rpc.requests

    def close(self) -> None:
        self.rpc.close()

    def __enter__(self) -> ContractReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- ERC-165

    def detect_standard(self, contract: str, block: BlockTag = "latest") -> str | None:
        """``"erc1155"`` or ``"erc721"`` by ERC-165, or None when the contract claims neither."""
        calls = [
            (contract, SUPPORTS_INTERFACE_SELECTOR + iface.ljust(64, "0"), block)
            for iface in (ERC1155_INTERFACE, ERC721_INTERFACE)
        ]
        answers = []
        for reply in self.rpc.eth_calls(calls, batch_size=self.batch_size):
            result = _result(reply)
            answers.append(isinstance(result, str) and len(result) >= 66 and int(result, 16) == 1)
        if answers[0]:
            return "erc1155"
        if answers[1]:
            return "erc721"
        return None

    # ---------------------------------------------------------------- Multicall3

    @property
    def multicall(self) -> bool | None:
        """What is known about Multicall3 on this node (None: not asked yet)."""
        return self._multicall

    def has_multicall3(self, block: BlockTag = "latest") -> bool:
        if self._multicall is not None:
            return self._multicall
        code = _result(
            self.rpc.replies([("eth_getCode", [MULTICALL3_ADDRESS, block_tag(block)])])[0]
        )
        self._multicall = isinstance(code, str) and len(code) > 2
        return self._multicall

    def _aggregate3(
        self, contract: str, selector: str, token_ids: Sequence[int], block: BlockTag
    ) -> dict[int, str | WorkerError] | None:
        """One aggregate3 call per chunk; None when Multicall3 is unusable at that block (not
        deployed yet, or the whole call failed) so the caller falls back to a plain batch."""
        target = bytes.fromhex(contract[2:])
        out: dict[int, str | WorkerError] = {}
        for start in range(0, len(token_ids), self.batch_size):
            chunk = token_ids[start : start + self.batch_size]
            calls = [(target, True, bytes.fromhex(encode_call(selector, t)[2:])) for t in chunk]
            encoded = abi_encode(["(address,bool,bytes)[]"], [calls]).hex()
            data = "0x" + AGGREGATE3_SELECTOR + encoded
            result = _result(self.rpc.eth_calls([(MULTICALL3_ADDRESS, data, block)])[0])
            if not isinstance(result, str) or len(result) <= 2:
                return None
            try:
                (results,) = abi_decode(["(bool,bytes)[]"], bytes.fromhex(result[2:]))
            except Exception:  # not Multicall3's answer: use the plain batch
                return None
            if len(results) != len(chunk):
                return None
            for tid, (ok, ret) in zip(chunk, results, strict=True):
                if ok:
                    try:
                        out[tid] = decode_string(ret)
                    except WorkerError as exc:
                        out[tid] = exc
                else:
                    out[tid] = TokenURIReverted(f"tokenURI({tid}) reverted: {revert_reason(ret)}")
        return out

    # ---------------------------------------------------------------- token URIs

    def token_uris(
        self,
        contract: str,
        token_ids: Sequence[int],
        *,
        standard: str = "erc721",
        block: BlockTag = "latest",
        blocks: Mapping[int, int] | None = None,
    ) -> dict[int, str | WorkerError]:
        """Each token's URI, or the classified error for that token. ``blocks`` gives a token's
        event block (read there, so a token burned since still resolves); others read at
        ``block``. A node that fails a request raises :mod:`listeners.errors` for the batch."""
        selector = URI_SELECTOR if standard == "erc1155" else TOKEN_URI_SELECTOR
        groups: dict[BlockTag, list[int]] = defaultdict(list)
        for tid in dict.fromkeys(token_ids):
            groups[(blocks or {}).get(tid, block)].append(tid)
        out: dict[int, str | WorkerError] = {}
        plain: list[tuple[int, BlockTag]] = []
        use_multicall = self.has_multicall3()
        for tag, ids in groups.items():
            via_multicall = None
            if use_multicall:
                via_multicall = self._aggregate3(contract, selector, ids, tag)
            if via_multicall is None:
                plain.extend((tid, tag) for tid in ids)
            else:
                out.update(via_multicall)
        if plain:
            out.update(self._plain(contract, selector, plain))
        # a node without that block's state (not an archive node) still answers at the head
        stale = [
            (tid, "latest")
            for tid, tag in plain
            if isinstance(out.get(tid), TokenURIUnavailable) and tag != "latest"
        ]
        if stale:
            out.update(self._plain(contract, selector, stale))
        return out

    def _plain(
        self, contract: str, selector: str, reads: Sequence[tuple[int, BlockTag]]
    ) -> dict[int, str | WorkerError]:
        replies = self.rpc.eth_calls(
            [(contract, encode_call(selector, tid), tag) for tid, tag in reads],
            batch_size=self.batch_size,
        )
        out: dict[int, str | WorkerError] = {}
        for (tid, _), reply in zip(reads, replies, strict=True):
            if reply is None:
                out[tid] = TokenURIUnavailable(f"tokenURI({tid}) failed: no reply")
                continue
            if "result" in reply:
                try:
                    out[tid] = decode_string(reply["result"])
                except WorkerError as exc:
                    out[tid] = exc
                continue
            error = reply.get("error") or {}
            message = str(error.get("message", "no reply"))[:200]
            if _is_revert(error):
                data = error.get("data")
                if isinstance(data, str) and data.startswith("0x"):
                    with contextlib.suppress(ValueError):  # not hex: keep the node's message
                        message = revert_reason(bytes.fromhex(data[2:]))
                out[tid] = TokenURIReverted(f"tokenURI({tid}) reverted: {message}")
            else:
                out[tid] = TokenURIUnavailable(f"tokenURI({tid}) failed: {message}")
        return out


def read_token_uris(
    rpc_url: str,
    contract: str,
    token_ids: Sequence[int],
    *,
    standard: str = "erc721",
    block: BlockTag = "latest",
    blocks: Mapping[int, int] | None = None,
    timeout: float = 20.0,
    multicall: bool | None = None,
) -> dict[int, str | WorkerError]:
    """One-shot :meth:`ContractReader.token_uris`."""
    with ContractReader(rpc_url, timeout=timeout, multicall=multicall) as reader:
        return reader.token_uris(contract, token_ids, standard=standard, block=block, blocks=blocks)
