"""Raw ``eth_getLogs`` dicts, read by hand: topic hashes, 32-byte words, and the state of one
decoding pass that every handler (transfers here, markets in :mod:`listeners.markets`) writes to.

No ABI objects on the hot path: a handler slices the words it needs out of the hex ``data``.
Addresses come out lower-case ``0x`` hex, amounts and ids as Python ints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from eth_hash.auto import keccak

from store.records import Decoded

Log = dict[str, Any]

ZERO = "0x0000000000000000000000000000000000000000"
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
MAX_UINT256 = 2**256 - 1


def topic(signature: str) -> str:
    """The topic0 of an event signature, ``0x`` + 64 hex."""
    return "0x" + keccak(signature.encode()).hex()


# ERC-20's and ERC-721's (the NFT's has its token id indexed: four topics, no data)
TRANSFER = topic("Transfer(address,address,uint256)")


def checksummed(address: str) -> str:
    """EIP-55 mixed case, as some nodes spell addresses in logs."""
    body = address[2:].lower()
    digest = keccak(body.encode()).hex()
    cased = (c.upper() if int(h, 16) >= 8 else c for c, h in zip(body, digest[:40], strict=True))
    return "0x" + "".join(cased)


def addr(topic_or_word: str) -> str:
    """The last 20 bytes of a 32-byte word, ``0x`` + 40 lower-case hex."""
    return "0x" + topic_or_word[-40:].lower()


def words(data: str) -> list[str]:
    """The 64-hex-digit words of a log's ``data``."""
    body = data[2:] if data.startswith("0x") else data
    return [body[i : i + 64] for i in range(0, len(body), 64)]


def uint(word: str) -> int:
    return int(word, 16) if word else 0


def groups(w: list[str], at: int, size: int) -> Iterator[tuple[str, ...]]:
    """The ``size``-word items of the ABI array whose length word is ``w[at]``."""
    start = at + 1
    items = w[start : start + size * int(w[at], 16)]
    return zip(*[iter(items)] * size, strict=False)


def array(w: list[str], offset_word: int) -> list[int]:
    """The ``uint256[]`` whose head offset (in bytes) is ``w[offset_word]``."""
    at = int(w[offset_word], 16) // 32
    return [int(x, 16) for x in w[at + 1 : at + 1 + int(w[at], 16)]]


class Payment:
    """An ERC-20 ``Transfer`` of a currency a market asked for (Blur Pool ETH, WETH)."""

    __slots__ = ("amount", "log_index", "receiver", "sender", "token", "tx_hash")

    def __init__(
        self, tx_hash: str, log_index: int, token: str, sender: str, receiver: str, amount: int
    ) -> None:
        self.tx_hash = tx_hash
        self.log_index = log_index
        self.token = token
        self.sender = sender
        self.receiver = receiver
        self.amount = amount


class DecodeContext:
    """One call of :func:`listeners.decode.decode_logs`: its options, its output, where the
    current log is (set by the loop before a handler runs), and what markets keep between logs.

    ``scratch`` is each market's own space (keyed by its name) for state across the logs of a
    transaction; ``payments`` are the ERC-20 transfers of the currencies in ``payment_tokens``."""

    __slots__ = (
        "block_hash",
        "block_number",
        "contract",
        "legacy_contracts",
        "listings",
        "loans",
        "log_index",
        "max_consecutive",
        "nft_contracts",
        "out",
        "payment_tokens",
        "payments",
        "punk_recipient",
        "raw_tx",
        "sales",
        "scratch",
        "transfers",
        "tx_hash",
        "updates",
    )

    def __init__(
        self,
        legacy_contracts: frozenset[str],
        nft_contracts: frozenset[str] | None,
        max_consecutive: int,
        payment_tokens: frozenset[str] = frozenset(),
    ) -> None:
        self.legacy_contracts = legacy_contracts
        self.nft_contracts = nft_contracts
        self.max_consecutive = max_consecutive
        self.payment_tokens = payment_tokens
        self.out = Decoded()
        self.transfers = self.out.transfers
        self.sales = self.out.sales
        self.listings = self.out.listings
        self.loans = self.out.loans
        self.updates = self.out.metadata_updates
        self.block_number = 0
        self.block_hash = self.tx_hash = self.raw_tx = self.contract = ""
        self.log_index = 0
        # Last market "Transfer"/"PunkTransfer" recipient topic per tx hash + contract, both as
        # the node spelled them (compared within this response only): fixes PunkBought's buyer.
        self.punk_recipient: dict[str, str] = {}
        self.payments: list[Payment] = []
        self.scratch: dict[str, Any] = {}

    def keeps(self, contract: str) -> bool:
        """Whether a market event about an NFT of ``contract`` is kept (the watched set)."""
        return self.nft_contracts is None or contract in self.nft_contracts


# Decodes one log of its layout into the context's lists; False when the log is not one after all.
Handler = Callable[[DecodeContext, Log, list[str]], bool]
