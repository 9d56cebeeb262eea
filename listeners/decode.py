"""Pure decoding of raw ``eth_getLogs`` dicts into typed events, by hand on fixed topic layouts.

No ABI objects on the hot path: each supported event is recognised by its layout, topic0 and
topic count, which picks one small function from :data:`_HANDLERS`; the function slices its words
out of the hex ``data``. Addresses come out lower-case ``0x`` hex, token ids and amounts as Python
ints, the events as the records of :mod:`store.records`.

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
- Seaport 1.x ``OrderFulfilled`` (and the demo market, which emits the same event): the NFT items
  on one side, the currency items on the other give the price (what the buyer paid, fees
  included), the currency and the fees.
- EIP-4906 ``MetadataUpdate`` / ``BatchMetadataUpdate`` and ERC-1155 ``URI``: refresh work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

from eth_hash.auto import keccak

from store.records import (
    Decoded,
    ListingEvent,
    MetadataUpdateEvent,
    OversizedRange,
    SaleEvent,
    TransferEvent,
)


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
# Events emitted by a marketplace rather than the collection: fetched without an address filter.
MARKET_TOPICS: tuple[str, ...] = (ORDER_FULFILLED,)

CRYPTOPUNKS = "0xb47e3cd837ddf8e4c57f05d70ab865de6e193bbb"
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
ZERO = "0x0000000000000000000000000000000000000000"
MAX_UINT256 = 2**256 - 1

Log = dict[str, Any]
# Decodes one log of its layout into the decoder's lists; False when the log is not one after all.
Handler = Callable[["_Decoder", Log, list[str]], bool]


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


class _Decoder:
    """One call of :func:`decode_logs`: its options, its output, where the current log is (set
    by the loop before a handler runs), and the punk market's transfer recipients seen so far."""

    __slots__ = (
        "block_hash",
        "block_number",
        "contract",
        "legacy_contracts",
        "listings",
        "log_index",
        "max_consecutive",
        "nft_contracts",
        "out",
        "punk_recipient",
        "raw_tx",
        "sales",
        "transfers",
        "tx_hash",
        "updates",
    )

    def __init__(
        self,
        legacy_contracts: frozenset[str],
        nft_contracts: frozenset[str] | None,
        max_consecutive: int,
    ) -> None:
        self.legacy_contracts = legacy_contracts
        self.nft_contracts = nft_contracts
        self.max_consecutive = max_consecutive
        self.out = Decoded()
        self.transfers = self.out.transfers
        self.sales = self.out.sales
        self.listings = self.out.listings
        self.updates = self.out.metadata_updates
        self.block_number = 0
        self.block_hash = self.tx_hash = self.raw_tx = self.contract = ""
        self.log_index = 0
        # Last market "Transfer"/"PunkTransfer" recipient topic per tx hash + contract, both as
        # the node spelled them (compared within this response only): fixes PunkBought's buyer.
        self.punk_recipient: dict[str, str] = {}


# --- transfers ---------------------------------------------------------------------------------


def _erc721_transfer(d: _Decoder, log: Log, topics: list[str]) -> bool:
    """``Transfer(from, to, tokenId)``, all indexed, no data: the commonest NFT log."""
    if len(log["data"]) > 2:
        return False
    frm = _addr(topics[1])
    d.transfers.append(
        TransferEvent(
            block_number=d.block_number,
            block_hash=d.block_hash,
            tx_hash=d.tx_hash,
            log_index=d.log_index,
            batch_index=0,
            contract=d.contract,
            token_id=int(topics[3], 16),
            from_address=frm,
            to_address=_addr(topics[2]),
            amount=1,
            standard="erc721",
            is_mint=frm == ZERO,
        )
    )
    return True


def _legacy_transfer(d: _Decoder, log: Log, topics: list[str]) -> bool:
    """``Transfer(from, to, tokenId)`` with nothing indexed (CryptoKitties): the contracts named
    as legacy only, since ERC-20s of the same era look alike."""
    if d.contract not in d.legacy_contracts:
        return False
    w = _words(log["data"])
    if len(w) < 3:
        return False
    frm = _addr(w[0])
    d.transfers.append(
        TransferEvent(
            block_number=d.block_number,
            block_hash=d.block_hash,
            tx_hash=d.tx_hash,
            log_index=d.log_index,
            batch_index=0,
            contract=d.contract,
            token_id=_int(w[2]),
            from_address=frm,
            to_address=_addr(w[1]),
            amount=1,
            standard="erc721",
            is_mint=frm == ZERO,
        )
    )
    return True


def _transfer_single(d: _Decoder, log: Log, topics: list[str]) -> bool:
    """ERC-1155 ``TransferSingle(operator, from, to, id, value)``."""
    w = _words(log["data"])
    frm = _addr(topics[2])
    d.transfers.append(
        TransferEvent(
            block_number=d.block_number,
            block_hash=d.block_hash,
            tx_hash=d.tx_hash,
            log_index=d.log_index,
            batch_index=0,
            contract=d.contract,
            token_id=_int(w[0]),
            from_address=frm,
            to_address=_addr(topics[3]),
            amount=_int(w[1]),
            standard="erc1155",
            is_mint=frm == ZERO,
        )
    )
    return True


def _transfer_batch(d: _Decoder, log: Log, topics: list[str]) -> bool:
    """ERC-1155 ``TransferBatch(operator, from, to, ids[], values[])``: a row per id."""
    w = _words(log["data"])
    ids_at = int(w[0], 16) // 32 + 1
    values_at = int(w[1], 16) // 32 + 1
    count = int(w[ids_at - 1], 16)
    ids = [int(x, 16) for x in w[ids_at : ids_at + count]]
    values = [int(x, 16) for x in w[values_at : values_at + count]]
    frm = _addr(topics[2])
    to = _addr(topics[3])
    mint = frm == ZERO
    bn, bh, tx, li, contract = d.block_number, d.block_hash, d.tx_hash, d.log_index, d.contract
    d.transfers.extend(
        TransferEvent(
            block_number=bn,
            block_hash=bh,
            tx_hash=tx,
            log_index=li,
            batch_index=i,
            contract=contract,
            token_id=token_id,
            from_address=frm,
            to_address=to,
            amount=value,
            standard="erc1155",
            is_mint=mint,
        )
        for i, (token_id, value) in enumerate(zip(ids, values, strict=False))
    )
    return True


def _consecutive_transfer(d: _Decoder, log: Log, topics: list[str]) -> bool:
    """EIP-2309 ``ConsecutiveTransfer(fromTokenId, toTokenId, from, to)``: a row per id, or the
    range as it is when larger than ``max_consecutive``."""
    first = int(topics[1], 16)
    last = _int(_words(log["data"])[0])
    frm = _addr(topics[2])
    to = _addr(topics[3])
    bn, bh, tx, li, contract = d.block_number, d.block_hash, d.tx_hash, d.log_index, d.contract
    if last < first or last - first + 1 > d.max_consecutive:
        d.out.oversized.append(
            OversizedRange(
                block_number=bn,
                block_hash=bh,
                tx_hash=tx,
                log_index=li,
                contract=contract,
                from_token_id=first,
                to_token_id=last,
                from_address=frm,
                to_address=to,
            )
        )
        return True
    mint = frm == ZERO
    d.transfers.extend(
        TransferEvent(
            block_number=bn,
            block_hash=bh,
            tx_hash=tx,
            log_index=li,
            batch_index=i,
            contract=contract,
            token_id=token_id,
            from_address=frm,
            to_address=to,
            amount=1,
            standard="erc721",
            is_mint=mint,
        )
        for i, token_id in enumerate(range(first, last + 1))
    )
    return True


def _punk_assign(d: _Decoder, log: Log, topics: list[str]) -> bool:
    """CryptoPunks ``Assign(to, punkIndex)``: the original claim, a mint."""
    d.transfers.append(_punk_move(d, _int(_words(log["data"])[0]), ZERO, _addr(topics[1]), True))
    return True


def _punk_transfer(d: _Decoder, log: Log, topics: list[str]) -> bool:
    """CryptoPunks ``PunkTransfer(from, to, punkIndex)``."""
    d.punk_recipient[d.raw_tx + log["address"]] = topics[2]
    punk = _int(_words(log["data"])[0])
    d.transfers.append(_punk_move(d, punk, _addr(topics[1]), _addr(topics[2]), False))
    return True


def _punk_move(d: _Decoder, punk: int, frm: str, to: str, mint: bool) -> TransferEvent:
    return TransferEvent(
        block_number=d.block_number,
        block_hash=d.block_hash,
        tx_hash=d.tx_hash,
        log_index=d.log_index,
        batch_index=0,
        contract=d.contract,
        token_id=punk,
        from_address=frm,
        to_address=to,
        amount=1,
        standard="cryptopunks",
        is_mint=mint,
    )


# --- metadata updates --------------------------------------------------------------------------


def _metadata_update(d: _Decoder, log: Log, topics: list[str]) -> bool:
    """EIP-4906 ``MetadataUpdate(tokenId)``."""
    token_id = _int(_words(log["data"])[0])
    d.updates.append(_update(d, token_id, token_id))
    return True


def _batch_metadata_update(d: _Decoder, log: Log, topics: list[str]) -> bool:
    """EIP-4906 ``BatchMetadataUpdate(fromTokenId, toTokenId)``."""
    w = _words(log["data"])
    d.updates.append(_update(d, _int(w[0]), _int(w[1])))
    return True


def _uri(d: _Decoder, log: Log, topics: list[str]) -> bool:
    """ERC-1155 ``URI(value, id)``: the id's metadata moved."""
    token_id = int(topics[1], 16)
    d.updates.append(_update(d, token_id, token_id))
    return True


def _update(d: _Decoder, first: int, last: int) -> MetadataUpdateEvent:
    return MetadataUpdateEvent(
        block_number=d.block_number,
        block_hash=d.block_hash,
        tx_hash=d.tx_hash,
        log_index=d.log_index,
        contract=d.contract,
        from_token_id=first,
        to_token_id=last,
    )


# --- markets: CryptoPunks' own market, Seaport (and the demo market) ---------------------------


def _punk_bought(d: _Decoder, log: Log, topics: list[str]) -> bool:
    """CryptoPunks ``PunkBought(punkIndex, value, from, to)``: the punk's move and its sale."""
    punk = int(topics[1], 16)
    value = _int(_words(log["data"])[0])
    seller = _addr(topics[2])
    buyer = _addr(topics[3])
    fixed = buyer == ZERO
    if fixed:
        # acceptBidForPunk's bug: the buyer is the market's transfer recipient in this tx.
        buyer = _addr(d.punk_recipient.get(d.raw_tx + log["address"], ZERO))
    d.transfers.append(_punk_move(d, punk, seller, buyer, False))
    # A zero value (accepted bid) is filled from the accepted bid when recorded.
    d.sales.append(
        SaleEvent(
            block_number=d.block_number,
            block_hash=d.block_hash,
            tx_hash=d.tx_hash,
            log_index=d.log_index,
            batch_index=0,
            contract=d.contract,
            token_id=punk,
            seller=seller,
            buyer=buyer,
            price_wei=value,
            currency="ETH",
            marketplace="cryptopunks",
            inferred=fixed and value == 0,
        )
    )
    return True


def _punk_offered(d: _Decoder, log: Log, topics: list[str]) -> bool:
    """``PunkOffered(punkIndex, minValue, toAddress)``: listed (to 0x0: to anyone)."""
    price = _int(_words(log["data"])[0])
    d.listings.append(_punk_listing(d, topics, "offered", price, _addr(topics[2])))
    return True


def _punk_no_longer_for_sale(d: _Decoder, log: Log, topics: list[str]) -> bool:
    """``PunkNoLongerForSale(punkIndex)``: the listing withdrawn."""
    d.listings.append(_punk_listing(d, topics, "withdrawn", None, ZERO))
    return True


def _punk_bid_entered(d: _Decoder, log: Log, topics: list[str]) -> bool:
    """``PunkBidEntered(punkIndex, value, fromAddress)``."""
    price = _int(_words(log["data"])[0])
    d.listings.append(_punk_listing(d, topics, "bid", price, _addr(topics[2])))
    return True


def _punk_bid_withdrawn(d: _Decoder, log: Log, topics: list[str]) -> bool:
    """``PunkBidWithdrawn(punkIndex, value, fromAddress)``."""
    price = _int(_words(log["data"])[0])
    d.listings.append(_punk_listing(d, topics, "bid_withdrawn", price, _addr(topics[2])))
    return True


def _punk_listing(
    d: _Decoder, topics: list[str], kind: str, price: int | None, account: str
) -> ListingEvent:
    return ListingEvent(
        block_number=d.block_number,
        block_hash=d.block_hash,
        tx_hash=d.tx_hash,
        log_index=d.log_index,
        contract=d.contract,
        token_id=int(topics[1], 16),
        kind=kind,
        price_wei=price,
        account=account,
    )


# Seaport ItemType
_NATIVE, _ERC20, _ERC721, _ERC1155, _ERC721_CRITERIA, _ERC1155_CRITERIA = range(6)
_NFT_TYPES = frozenset({_ERC721, _ERC1155, _ERC721_CRITERIA, _ERC1155_CRITERIA})
_CURRENCY_TYPES = (_NATIVE, _ERC20)


class _Item(NamedTuple):
    """A Seaport offer (recipient: the offerer) or consideration item."""

    item_type: int
    token: str
    identifier: int
    amount: int
    recipient: str


def _order_fulfilled(d: _Decoder, log: Log, topics: list[str]) -> bool:
    """Seaport ``OrderFulfilled``: data = orderHash, recipient, offset(offer),
    offset(consideration), the two arrays; topic 1 is the offerer.

    A listing fills with the NFT in ``offer`` (seller = offerer, buyer = recipient, price = the
    currency items of ``consideration``); an accepted offer has the NFT in ``consideration``
    (buyer = offerer, seller = recipient, price = the currency items of ``offer``). Fees are the
    currency items paid to anyone but the seller. A bundle's price is split evenly. Only NFTs of
    ``nft_contracts`` are kept, when given."""
    offerer = _addr(topics[1])
    w = _words(log["data"])
    recipient = _addr(w[1])
    offer = [
        _Item(int(t, 16), _addr(token), int(ident, 16), int(amount, 16), offerer)
        for t, token, ident, amount in _groups(w, int(w[2], 16) // 32, 4)
    ]
    consideration = [
        _Item(int(t, 16), _addr(token), int(ident, 16), int(amount, 16), _addr(to))
        for t, token, ident, amount, to in _groups(w, int(w[3], 16) // 32, 5)
    ]
    payments = [it for it in consideration if it.item_type in _CURRENCY_TYPES]
    nfts = [it for it in offer if it.item_type in _NFT_TYPES]
    if nfts:  # a listing filled
        seller, buyer = offerer, recipient
        price_items = payments
    else:  # an offer accepted
        nfts = [it for it in consideration if it.item_type in _NFT_TYPES]
        if not nfts:
            return True  # a currency swap, no NFT
        seller, buyer = recipient, offerer
        price_items = [it for it in offer if it.item_type in _CURRENCY_TYPES]
    if not price_items:
        return True  # NFT-for-NFT swap: no price
    count = len(nfts)
    price = sum(it.amount for it in price_items) // count
    fees = sum(it.amount for it in payments if it.recipient != seller) // count
    first = price_items[0]
    currency = (
        "ETH" if first.item_type == _NATIVE else "WETH" if first.token == WETH else first.token
    )
    keep = d.nft_contracts
    d.sales.extend(
        SaleEvent(
            block_number=d.block_number,
            block_hash=d.block_hash,
            tx_hash=d.tx_hash,
            log_index=d.log_index,
            batch_index=i,
            contract=nft.token,
            token_id=nft.identifier,
            seller=seller,
            buyer=buyer,
            price_wei=price,
            currency=currency,
            marketplace="seaport",
            inferred=False,
            fees_wei=fees,
        )
        for i, nft in enumerate(nfts)
        if keep is None or nft.token in keep
    )
    return True


# --- dispatch ----------------------------------------------------------------------------------

# (topic0, topic count) -> its handler. A layout not here (an ERC-20 Transfer's, an unknown
# event's) is no NFT event.
_HANDLERS: dict[tuple[str, int], Handler] = {
    (TRANSFER, 4): _erc721_transfer,
    (TRANSFER, 1): _legacy_transfer,
    (TRANSFER_SINGLE, 4): _transfer_single,
    (TRANSFER_BATCH, 4): _transfer_batch,
    (CONSECUTIVE_TRANSFER, 4): _consecutive_transfer,
    (ASSIGN, 2): _punk_assign,
    (PUNK_TRANSFER, 3): _punk_transfer,
    (METADATA_UPDATE, 1): _metadata_update,
    (BATCH_METADATA_UPDATE, 1): _batch_metadata_update,
    (URI, 2): _uri,
    (PUNK_BOUGHT, 4): _punk_bought,
    (PUNK_OFFERED, 3): _punk_offered,
    (PUNK_NO_LONGER_FOR_SALE, 2): _punk_no_longer_for_sale,
    (PUNK_BID_ENTERED, 3): _punk_bid_entered,
    (PUNK_BID_WITHDRAWN, 3): _punk_bid_withdrawn,
    (ORDER_FULFILLED, 3): _order_fulfilled,
}
_ERC20_TRANSFER = (TRANSFER, 3)


def decode_logs(
    logs: Iterable[Log],
    *,
    legacy_contracts: frozenset[str] = frozenset(),
    nft_contracts: frozenset[str] | None = None,
    max_consecutive: int = 10_000,
) -> Decoded:
    """Decode ``logs`` (in chain order) into NFT events.

    ``nft_contracts``: when given, marketplace events (Seaport) are kept only for NFTs of these
    contracts (the watched collections); ``None`` keeps every NFT ("all" mode)."""
    d = _Decoder(legacy_contracts, nft_contracts, max_consecutive)
    handlers = _HANDLERS
    # Consecutive logs share their block and often their transaction: parse those once.
    raw_bh = ""
    skipped = 0
    for log in logs:
        if log.get("removed"):
            continue
        topics: list[str] = log["topics"]
        if not topics:
            skipped += 1
            continue
        layout = (topics[0], len(topics))
        handle = handlers.get(layout)
        if handle is None and layout != _ERC20_TRANSFER:  # a node that spells hex upper-case
            layout = (topics[0].lower(), len(topics))
            handle = handlers.get(layout)
        if handle is None:
            if layout == _ERC20_TRANSFER:
                # A third of all logs, never an NFT row; the punk market's carries the buyer of
                # an accepted bid. Nothing else of it is parsed.
                d.punk_recipient[log["transactionHash"] + log["address"]] = topics[2]
            skipped += 1
            continue
        if log["transactionHash"] != d.raw_tx:
            d.raw_tx = log["transactionHash"]
            d.tx_hash = d.raw_tx.lower()
        if log["blockHash"] != raw_bh:
            raw_bh = log["blockHash"]
            d.block_hash = raw_bh.lower()
            d.block_number = int(log["blockNumber"], 16)
        d.contract = log["address"].lower()
        d.log_index = int(log["logIndex"], 16)
        if not handle(d, log, topics):
            skipped += 1
    d.out.skipped = skipped
    return d.out
