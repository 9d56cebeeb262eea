"""Pure decoding of raw ``eth_getLogs`` dicts into typed events, by hand on fixed topic layouts.

No ABI objects on the hot path: each supported event is recognised by topic0 and its topic count,
and its words are sliced out of the hex ``data``. Addresses come out lower-case ``0x`` hex, token
ids and amounts as Python ints.

What becomes what:

- ERC-721 ``Transfer``: topic0 ``0xddf252ad…`` with exactly 4 topics and empty data. The ERC-20
  shape (3 topics + a data word) is never an NFT row; the legacy form with nothing indexed
  (1 topic + 3 data words, CryptoKitties) only for contracts passed in ``legacy_contracts``.
- ERC-1155 ``TransferSingle`` / ``TransferBatch`` (one row per id, ``batch_index`` = position).
- EIP-2309 ``ConsecutiveTransfer``: expanded into one row per id up to ``max_consecutive`` ids;
  larger ranges are reported in :attr:`Decoded.oversized` instead of expanded blindly.
- CryptoPunks: ``Assign`` is a mint, ``PunkTransfer`` a transfer, ``PunkBought`` a transfer plus a
  sale. ``acceptBidForPunk`` emits ``PunkBought`` with a zero buyer (and a zero value); the buyer
  is taken from the same transaction's ``PunkTransfer``/ERC-20-shaped ``Transfer`` of the market.
  ``PunkOffered`` / ``PunkNoLongerForSale`` / ``PunkBidEntered`` / ``PunkBidWithdrawn``: listings.
- Seaport 1.x ``OrderFulfilled``: the NFT items on one side, the currency items on the other give
  the price (what the buyer paid, fees included), the currency and the fees.
- EIP-4906 ``MetadataUpdate`` / ``BatchMetadataUpdate`` and ERC-1155 ``URI``: refresh work.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from eth_hash.auto import keccak


def _topic(signature: str) -> str:
    return "0x" + keccak(signature.encode()).hex()


TRANSFER = _topic("Transfer(address,address,uint256)")
TRANSFER_SINGLE = _topic("TransferSingle(address,address,address,uint256,uint256)")
TRANSFER_BATCH = _topic("TransferBatch(address,address,address,uint256[],uint256[])")
URI = _topic("URI(string,uint256)")
CONSECUTIVE_TRANSFER = _topic("ConsecutiveTransfer(uint256,uint256,address,address)")
METADATA_UPDATE = _topic("MetadataUpdate(uint256)")
BATCH_METADATA_UPDATE = _topic("BatchMetadataUpdate(uint256,uint256)")
ASSIGN = _topic("Assign(address,uint256)")
PUNK_TRANSFER = _topic("PunkTransfer(address,address,uint256)")
PUNK_OFFERED = _topic("PunkOffered(uint256,uint256,address)")
PUNK_BID_ENTERED = _topic("PunkBidEntered(uint256,uint256,address)")
PUNK_BID_WITHDRAWN = _topic("PunkBidWithdrawn(uint256,uint256,address)")
PUNK_BOUGHT = _topic("PunkBought(uint256,uint256,address,address)")
PUNK_NO_LONGER_FOR_SALE = _topic("PunkNoLongerForSale(uint256)")
ORDER_FULFILLED = _topic(
    "OrderFulfilled(bytes32,address,address,address,"
    "(uint8,address,uint256,uint256)[],(uint8,address,uint256,uint256,address)[])"
)

# Every topic0 we decode: the filter for eth_getLogs.
ALL_TOPICS: tuple[str, ...] = (
    TRANSFER,
    TRANSFER_SINGLE,
    TRANSFER_BATCH,
    URI,
    CONSECUTIVE_TRANSFER,
    METADATA_UPDATE,
    BATCH_METADATA_UPDATE,
    ASSIGN,
    PUNK_TRANSFER,
    PUNK_OFFERED,
    PUNK_BID_ENTERED,
    PUNK_BID_WITHDRAWN,
    PUNK_BOUGHT,
    PUNK_NO_LONGER_FOR_SALE,
    ORDER_FULFILLED,
)
_KNOWN = frozenset(ALL_TOPICS)
# Events emitted by a marketplace rather than the collection: fetched without an address filter.
MARKET_TOPICS: tuple[str, ...] = (ORDER_FULFILLED,)

CRYPTOPUNKS = "0xb47e3cd837ddf8e4c57f05d70ab865de6e193bbb"
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
ZERO = "0x0000000000000000000000000000000000000000"
MAX_UINT256 = 2**256 - 1

# Seaport ItemType
_NATIVE, _ERC20, _ERC721, _ERC1155, _ERC721_CRITERIA, _ERC1155_CRITERIA = range(6)
_NFT_TYPES = frozenset({_ERC721, _ERC1155, _ERC721_CRITERIA, _ERC1155_CRITERIA})


@dataclass(slots=True)
class EventKey:
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int


@dataclass(slots=True)
class TransferEvent:
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    batch_index: int
    contract: str
    token_id: int
    from_address: str
    to_address: str
    amount: int
    standard: str  # erc721 | erc1155 | cryptopunks
    is_mint: bool


@dataclass(slots=True)
class SaleEvent:
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    batch_index: int
    contract: str
    token_id: int
    seller: str
    buyer: str
    price_wei: int
    currency: str  # ETH | WETH | the ERC-20's address
    marketplace: str  # seaport | cryptopunks
    inferred: bool = False
    fees_wei: int = 0


@dataclass(slots=True)
class ListingEvent:
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    contract: str
    token_id: int
    kind: str  # offered | withdrawn | bid | bid_withdrawn
    price_wei: int | None
    # offered: the only allowed buyer (0x0 = anyone); bids: the bidder; withdrawn: 0x0
    account: str


@dataclass(slots=True)
class MetadataUpdateEvent:
    """Token ids ``from_token_id..to_token_id`` (inclusive) of ``contract`` changed metadata."""

    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    contract: str
    from_token_id: int
    to_token_id: int


@dataclass(slots=True)
class OversizedRange:
    """An EIP-2309 range larger than the expansion cap: recorded, not expanded."""

    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    contract: str
    from_token_id: int
    to_token_id: int
    from_address: str
    to_address: str


@dataclass
class Decoded:
    transfers: list[TransferEvent] = field(default_factory=list)
    sales: list[SaleEvent] = field(default_factory=list)
    listings: list[ListingEvent] = field(default_factory=list)
    metadata_updates: list[MetadataUpdateEvent] = field(default_factory=list)
    oversized: list[OversizedRange] = field(default_factory=list)
    skipped: int = 0  # logs that matched no NFT layout (ERC-20 noise, unknown events)

    def block_numbers(self) -> set[int]:
        out: set[int] = set()
        for seq in (
            self.transfers,
            self.sales,
            self.listings,
            self.metadata_updates,
            self.oversized,
        ):
            out.update(e.block_number for e in seq)
        return out


def _addr(topic_or_word: str) -> str:
    # the last 20 bytes of a 32-byte word, 0x + 40 hex
    return "0x" + topic_or_word[-40:].lower()


def _words(data: str) -> list[str]:
    body = data[2:] if data.startswith("0x") else data
    return [body[i : i + 64] for i in range(0, len(body), 64)]


def _groups(w: list[str], at: int, size: int) -> Iterator[tuple[str, ...]]:
    """The ``size``-word items of the ABI array whose length word is ``w[at]``."""
    start = at + 1
    items = w[start : start + size * int(w[at], 16)]
    return zip(*[iter(items)] * size, strict=False)


def _int(word: str) -> int:
    return int(word, 16) if word else 0


def decode_logs(
    logs: Iterable[dict[str, Any]],
    *,
    legacy_contracts: frozenset[str] = frozenset(),
    nft_contracts: frozenset[str] | None = None,
    max_consecutive: int = 10_000,
) -> Decoded:
    """Decode ``logs`` (in chain order) into NFT events.

    ``nft_contracts``: when given, marketplace events (Seaport) are kept only for NFTs of these
    contracts (the watched collections); ``None`` keeps every NFT ("all" mode)."""
    out = Decoded()
    transfers, sales, listings, updates = (
        out.transfers,
        out.sales,
        out.listings,
        out.metadata_updates,
    )
    # Last market "Transfer"/"PunkTransfer" recipient topic per tx hash + contract, both as the
    # node spelled them (compared within this response only): fixes PunkBought's buyer.
    punk_recipient: dict[str, str] = {}
    # Consecutive logs share their block and often their transaction: parse those once.
    raw_bh = raw_tx = ""
    bh = tx = ""
    bn = 0
    skipped = 0
    for log in logs:
        if log.get("removed"):
            continue
        topics: list[str] = log["topics"]
        n = len(topics)
        if not n:
            skipped += 1
            continue
        t0 = topics[0]
        if t0 not in _KNOWN:
            t0 = t0.lower()
            if t0 not in _KNOWN:
                skipped += 1
                continue
        if n == 3 and t0 == TRANSFER:
            # ERC-20 shape (a third of all logs): never an NFT row, but the punk market's carries
            # the buyer. Nothing else of it is parsed.
            punk_recipient[log["transactionHash"] + log["address"]] = topics[2]
            skipped += 1
            continue
        if log["transactionHash"] != raw_tx:
            raw_tx = log["transactionHash"]
            tx = raw_tx.lower()
        if log["blockHash"] != raw_bh:
            raw_bh = log["blockHash"]
            bh = raw_bh.lower()
            bn = int(log["blockNumber"], 16)
        contract = log["address"].lower()
        data: str = log["data"]
        li = int(log["logIndex"], 16)

        if t0 == TRANSFER:
            if n == 4 and len(data) <= 2:
                # ERC-721, the commonest NFT log: addresses sliced inline
                frm = "0x" + topics[1][-40:].lower()
                transfers.append(
                    TransferEvent(
                        bn,
                        bh,
                        tx,
                        li,
                        0,
                        contract,
                        int(topics[3], 16),
                        frm,
                        "0x" + topics[2][-40:].lower(),
                        1,
                        "erc721",
                        frm == ZERO,
                    )
                )
            elif n == 1 and contract in legacy_contracts:
                w = _words(data)
                if len(w) >= 3:
                    frm = _addr(w[0])
                    transfers.append(
                        TransferEvent(
                            bn,
                            bh,
                            tx,
                            li,
                            0,
                            contract,
                            _int(w[2]),
                            frm,
                            _addr(w[1]),
                            1,
                            "erc721",
                            frm == ZERO,
                        )
                    )
                else:
                    skipped += 1
            else:
                skipped += 1
        elif t0 == TRANSFER_SINGLE and n == 4:
            w = _words(data)
            frm = _addr(topics[2])
            transfers.append(
                TransferEvent(
                    bn,
                    bh,
                    tx,
                    li,
                    0,
                    contract,
                    _int(w[0]),
                    frm,
                    _addr(topics[3]),
                    _int(w[1]),
                    "erc1155",
                    frm == ZERO,
                )
            )
        elif t0 == TRANSFER_BATCH and n == 4:
            w = _words(data)
            ids_at = int(w[0], 16) // 32 + 1
            values_at = int(w[1], 16) // 32 + 1
            count = int(w[ids_at - 1], 16)
            ids = [int(x, 16) for x in w[ids_at : ids_at + count]]
            values = [int(x, 16) for x in w[values_at : values_at + count]]
            frm = _addr(topics[2])
            to = _addr(topics[3])
            mint = frm == ZERO
            for i, (token_id, value) in enumerate(zip(ids, values, strict=False)):
                transfers.append(
                    TransferEvent(
                        bn, bh, tx, li, i, contract, token_id, frm, to, value, "erc1155", mint
                    )
                )
        elif t0 == CONSECUTIVE_TRANSFER and n == 4:
            first = int(topics[1], 16)
            last = _int(_words(data)[0])
            frm = _addr(topics[2])
            to = _addr(topics[3])
            if last < first or last - first + 1 > max_consecutive:
                out.oversized.append(OversizedRange(bn, bh, tx, li, contract, first, last, frm, to))
            else:
                for i, token_id in enumerate(range(first, last + 1)):
                    transfers.append(
                        TransferEvent(
                            bn, bh, tx, li, i, contract, token_id, frm, to, 1, "erc721", frm == ZERO
                        )
                    )
        elif t0 == ASSIGN and n == 2:
            transfers.append(
                TransferEvent(
                    bn,
                    bh,
                    tx,
                    li,
                    0,
                    contract,
                    _int(_words(data)[0]),
                    ZERO,
                    _addr(topics[1]),
                    1,
                    "cryptopunks",
                    True,
                )
            )
        elif t0 == PUNK_TRANSFER and n == 3:
            to = _addr(topics[2])
            punk_recipient[raw_tx + log["address"]] = topics[2]
            transfers.append(
                TransferEvent(
                    bn,
                    bh,
                    tx,
                    li,
                    0,
                    contract,
                    _int(_words(data)[0]),
                    _addr(topics[1]),
                    to,
                    1,
                    "cryptopunks",
                    False,
                )
            )
        elif t0 == PUNK_BOUGHT and n == 4:
            punk = int(topics[1], 16)
            value = _int(_words(data)[0])
            seller = _addr(topics[2])
            buyer = _addr(topics[3])
            fixed = False
            if buyer == ZERO:
                # acceptBidForPunk's bug: the buyer is the market's transfer recipient in this tx.
                buyer = _addr(punk_recipient.get(raw_tx + log["address"], ZERO))
                fixed = True
            transfers.append(
                TransferEvent(
                    bn, bh, tx, li, 0, contract, punk, seller, buyer, 1, "cryptopunks", False
                )
            )
            # A zero value (accepted bid) is filled from the accepted bid when recorded.
            sales.append(
                SaleEvent(
                    bn,
                    bh,
                    tx,
                    li,
                    0,
                    contract,
                    punk,
                    seller,
                    buyer,
                    value,
                    "ETH",
                    "cryptopunks",
                    inferred=fixed and value == 0,
                )
            )
        elif t0 == PUNK_OFFERED and n == 3:
            listings.append(
                ListingEvent(
                    bn,
                    bh,
                    tx,
                    li,
                    contract,
                    int(topics[1], 16),
                    "offered",
                    _int(_words(data)[0]),
                    _addr(topics[2]),
                )
            )
        elif t0 == PUNK_NO_LONGER_FOR_SALE and n == 2:
            listings.append(
                ListingEvent(bn, bh, tx, li, contract, int(topics[1], 16), "withdrawn", None, ZERO)
            )
        elif t0 == PUNK_BID_ENTERED and n == 3:
            listings.append(
                ListingEvent(
                    bn,
                    bh,
                    tx,
                    li,
                    contract,
                    int(topics[1], 16),
                    "bid",
                    _int(_words(data)[0]),
                    _addr(topics[2]),
                )
            )
        elif t0 == PUNK_BID_WITHDRAWN and n == 3:
            listings.append(
                ListingEvent(
                    bn,
                    bh,
                    tx,
                    li,
                    contract,
                    int(topics[1], 16),
                    "bid_withdrawn",
                    _int(_words(data)[0]),
                    _addr(topics[2]),
                )
            )
        elif t0 == ORDER_FULFILLED and n == 3:
            for sale in _order_fulfilled(bn, bh, tx, li, _addr(topics[1]), data):
                if nft_contracts is None or sale.contract in nft_contracts:
                    sales.append(sale)
        elif t0 == METADATA_UPDATE and n == 1:
            token_id = _int(_words(data)[0])
            updates.append(MetadataUpdateEvent(bn, bh, tx, li, contract, token_id, token_id))
        elif t0 == BATCH_METADATA_UPDATE and n == 1:
            w = _words(data)
            updates.append(MetadataUpdateEvent(bn, bh, tx, li, contract, _int(w[0]), _int(w[1])))
        elif t0 == URI and n == 2:
            token_id = int(topics[1], 16)
            updates.append(MetadataUpdateEvent(bn, bh, tx, li, contract, token_id, token_id))
        else:
            skipped += 1
    out.skipped = skipped
    return out


def _currency(item_type: int, token: str) -> str:
    if item_type == _NATIVE:
        return "ETH"
    return "WETH" if token == WETH else token


def _order_fulfilled(
    bn: int, bh: str, tx: str, li: int, offerer: str, data: str
) -> list[SaleEvent]:
    """Seaport: data = orderHash, recipient, offset(offer), offset(consideration), arrays.

    A listing fills with the NFT in ``offer`` (seller = offerer, buyer = recipient, price = the
    currency items of ``consideration``); an accepted offer has the NFT in ``consideration``
    (buyer = offerer, seller = recipient, price = the currency items of ``offer``). Fees are the
    currency items paid to anyone but the seller. A bundle's price is split evenly."""
    w = _words(data)
    recipient = _addr(w[1])
    off_at = int(w[2], 16) // 32
    con_at = int(w[3], 16) // 32
    offer = [
        (int(t, 16), "0x" + token[-40:].lower(), int(ident, 16), int(amount, 16), offerer)
        for t, token, ident, amount in _groups(w, off_at, 4)
    ]
    consideration = [
        (int(t, 16), "0x" + token[-40:].lower(), int(ident, 16), int(amount, 16), _addr(to))
        for t, token, ident, amount, to in _groups(w, con_at, 5)
    ]
    nfts = [it for it in offer if it[0] in _NFT_TYPES]
    if nfts:
        seller, buyer = offerer, recipient
        payments = [it for it in consideration if it[0] in (_NATIVE, _ERC20)]
        price_items = payments
    else:
        nfts = [it for it in consideration if it[0] in _NFT_TYPES]
        if not nfts:
            return []  # a currency swap, no NFT
        seller, buyer = recipient, offerer
        price_items = [it for it in offer if it[0] in (_NATIVE, _ERC20)]
        payments = [it for it in consideration if it[0] in (_NATIVE, _ERC20)]
    if not price_items:
        return []  # NFT-for-NFT swap: no price
    price = sum(it[3] for it in price_items)
    fees = sum(it[3] for it in payments if it[4] != seller)
    currency = _currency(price_items[0][0], price_items[0][1])
    count = len(nfts)
    return [
        SaleEvent(
            bn,
            bh,
            tx,
            li,
            i,
            it[1],
            it[2],
            seller,
            buyer,
            price // count,
            currency,
            "seaport",
            False,
            fees // count,
        )
        for i, it in enumerate(nfts)
    ]
