"""Blur Exchange: v1 (``OrdersMatched``) and v2 (``Execution`` and its three packed forms).

v1, ``OrdersMatched(address indexed maker, address indexed taker, Order sell, bytes32 sellHash,
Order buy, bytes32 buyHash)``, Order = (trader, side, matchingPolicy, collection, tokenId,
amount, paymentToken, price, listingTime, expirationTime, Fee[] fees, salt, extraParams) and
Fee = (uint16 rate, address recipient). Both orders are in the data, so the seller is
``sell.trader`` and the buyer ``buy.trader``. The price is the maker's (the order listed
first, as the exchange matches them); the buyer pays it and the sell order's fees (the
creator's royalty: v1 took no fee of its own) come out of the seller's share. Listings are paid
in ETH, bids in Blur Pool ETH (``paymentToken``).

v2, all fields unindexed (one topic):

- ``Execution(Transfer transfer, bytes32 orderHash, uint256 listingIndex, uint256 price,
  FeeRate makerFee, Fees fees, OrderType orderType)`` with Transfer = (trader, id, amount,
  collection, assetType), FeeRate = (address recipient, uint16 rate), Fees = (protocolFee,
  takerFee) and OrderType ASK = 0 / BID = 1: fifteen static words.
- ``Execution721Packed(bytes32 orderHash, uint256 tokenIdListingIndexTrader,
  uint256 collectionPriceSide)``: tokenId << 168 | listingIndex << 160 | trader, and
  orderType << 248 | price << 160 | collection (price below 2**88). The two ``…FeePacked``
  forms add one word, rate << 160 | recipient, for the taker's or the maker's fee; a packed
  event means a zero protocol fee.

``trader`` is the maker: the seller of an ASK (a listing, paid in ETH), the buyer of a BID
(paid in Blur Pool ETH). The other side is not in the event; it is read from the NFT's own
``Transfer`` in the same transaction by the finishing pass. ``price`` is the listing's price;
an ASK's buyer pays it plus the taker fee (the maker and protocol fees come out of the
seller's share), a BID's buyer pays it plus the maker fee (the taker and protocol fees come out
of the seller's share). The royalty is the fee the seller's own order names (ASK: maker fee,
BID: taker fee); the protocol fee is Blur's.

Sources: the verified BlurExchange (proxy 0x0000…ad05…5127) and BlurExchangeV2 (proxy
0xb2ec…cea5) sources (``IExecutor``, ``Executor._emitOptimalExecutionEvent`` and its ``pack…``
helpers, ``_computeFees``, ``_executeBatchTransfer``).
"""

from __future__ import annotations

from listeners.logs import WETH, ZERO, DecodeContext, Log, addr, topic, uint, words
from listeners.markets.base import BLUR_POOL, Deployment, Market, currency_name
from store.records import SaleEvent

NAME = "blur"
EXCHANGE_V1 = "0x000000000000ad05ccc4f10045630fb830b95127"
EXCHANGE_V2 = "0xb2ecfe4e4d61f8790bbb9de2d1259b9e2410cea5"

_ORDER = (
    "(address,uint8,address,address,uint256,uint256,address,uint256,uint256,uint256,"
    "(uint16,address)[],uint256,bytes)"
)
ORDERS_MATCHED = topic(f"OrdersMatched(address,address,{_ORDER},bytes32,{_ORDER},bytes32)")
EXECUTION = topic(
    "Execution((address,uint256,uint256,address,uint8),bytes32,uint256,uint256,"
    "(address,uint16),((address,uint16),(address,uint16)),uint8)"
)
EXECUTION_721_PACKED = topic("Execution721Packed(bytes32,uint256,uint256)")
EXECUTION_721_TAKER_FEE_PACKED = topic(
    "Execution721TakerFeePacked(bytes32,uint256,uint256,uint256)"
)
EXECUTION_721_MAKER_FEE_PACKED = topic(
    "Execution721MakerFeePacked(bytes32,uint256,uint256,uint256)"
)

ASK, BID = 0, 1
BASIS_POINTS = 10_000
_ADDRESS_MASK = (1 << 160) - 1
_PRICE_MASK = (1 << 88) - 1


def _sale(
    d: DecodeContext,
    contract: str,
    token_id: int,
    seller: str,
    buyer: str,
    price: int,
    currency: str,
    fees: int,
    royalty: int,
) -> SaleEvent:
    return SaleEvent(
        block_number=d.block_number,
        block_hash=d.block_hash,
        tx_hash=d.tx_hash,
        log_index=d.log_index,
        batch_index=0,
        contract=contract,
        token_id=token_id,
        seller=seller,
        buyer=buyer,
        price_wei=price,
        currency=currency,
        marketplace=NAME,
        fees_wei=fees,
        royalty_wei=royalty,
    )


# --- v1 ----------------------------------------------------------------------------------------


class _Order:
    """The fields of a v1 ``Order`` the sale needs, read at word ``at`` of the data."""

    __slots__ = ("collection", "fee_rates", "listing_time", "payment_token", "price", "token_id")

    def __init__(self, w: list[str], at: int) -> None:
        self.collection = addr(w[at + 3])
        self.token_id = uint(w[at + 4])
        self.payment_token = addr(w[at + 6])
        self.price = uint(w[at + 7])
        self.listing_time = uint(w[at + 8])
        fees_at = at + uint(w[at + 10]) // 32
        count = uint(w[fees_at])
        if fees_at + 2 * count >= len(w):
            raise ValueError("fee array runs past the data")
        self.fee_rates = [uint(w[fees_at + 1 + 2 * i]) for i in range(count)]


def orders_matched(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    """v1 ``OrdersMatched``: one NFT from ``sell.trader`` to ``buy.trader``."""
    w = words(log["data"])
    try:
        sell = _Order(w, uint(w[0]) // 32)
        buy = _Order(w, uint(w[2]) // 32)
        seller = addr(w[uint(w[0]) // 32])
        buyer = addr(w[uint(w[2]) // 32])
    except (IndexError, ValueError):
        return False  # not the published layout
    if not d.keeps(sell.collection):
        return True
    price = sell.price if sell.listing_time <= buy.listing_time else buy.price
    fees = sum(price * rate // BASIS_POINTS for rate in sell.fee_rates)
    currency = currency_name(sell.payment_token, WETH)
    d.sales.append(
        _sale(d, sell.collection, sell.token_id, seller, buyer, price, currency, fees, fees)
    )
    return True


# --- v2 ----------------------------------------------------------------------------------------


def _fill(
    d: DecodeContext,
    collection: str,
    token_id: int,
    trader: str,
    price: int,
    order_type: int,
    maker_rate: int,
    taker_rate: int,
    protocol_rate: int,
) -> None:
    """One v2 execution: the sale with its other side left for :func:`finish`."""
    if not d.keeps(collection):
        return
    maker = price * maker_rate // BASIS_POINTS
    taker = price * taker_rate // BASIS_POINTS
    protocol = price * protocol_rate // BASIS_POINTS
    fees = maker + taker + protocol
    if order_type == ASK:
        sale = _sale(d, collection, token_id, trader, ZERO, price + taker, "ETH", fees, maker)
    else:
        sale = _sale(d, collection, token_id, ZERO, trader, price + maker, "BLUR_POOL", fees, taker)
    d.sales.append(sale)
    d.scratch.setdefault(NAME, []).append((sale, order_type, trader))


def execution(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    """v2 ``Execution``: fifteen static words."""
    w = words(log["data"])
    if len(w) < 15:
        return False
    _fill(
        d,
        addr(w[3]),
        uint(w[1]),
        addr(w[0]),
        uint(w[7]),
        uint(w[14]),
        uint(w[9]),
        uint(w[13]),
        uint(w[11]),
    )
    return True


def _packed(d: DecodeContext, log: Log, fee: str | None) -> bool:
    """The packed forms; ``fee``: which side the fourth word's rate belongs to."""
    w = words(log["data"])
    if len(w) < (3 if fee is None else 4):
        return False
    ids = uint(w[1])
    side = uint(w[2])
    rate = uint(w[3]) >> 160 if fee is not None else 0
    _fill(
        d,
        addr(f"{side & _ADDRESS_MASK:040x}"),
        ids >> 168,
        addr(f"{ids & _ADDRESS_MASK:040x}"),
        (side >> 160) & _PRICE_MASK,
        side >> 248,
        rate if fee == "maker" else 0,
        rate if fee == "taker" else 0,
        0,
    )
    return True


def execution_721_packed(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    return _packed(d, log, None)


def execution_721_taker_fee_packed(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    return _packed(d, log, "taker")


def execution_721_maker_fee_packed(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    return _packed(d, log, "maker")


def finish(d: DecodeContext) -> None:
    """The v2 sales' other side, from the NFT's move in the same transaction: an ASK's buyer is
    whom the seller's token went to, a BID's seller whom the buyer's token came from. Without
    that transfer among the decoded logs the side stays 0x0."""
    pending = d.scratch.pop(NAME, None)
    if not pending:
        return
    moves: dict[tuple[str, str, int], list[tuple[str, str]]] = {}
    for t in d.transfers:
        moves.setdefault((t.tx_hash, t.contract, t.token_id), []).append(
            (t.from_address, t.to_address)
        )
    for sale, order_type, trader in pending:
        for frm, to in moves.get((sale.tx_hash, sale.contract, sale.token_id), ()):
            if order_type == ASK and frm == trader:
                sale.buyer = to
                break
            if order_type != ASK and to == trader:
                sale.seller = frm
                break


MARKET = Market(
    name=NAME,
    deployments=(
        # The v1 proxy's first block by an indexer's configuration (15,779,232); rounded down,
        # which only widens a backfill's start.
        Deployment(EXCHANGE_V1, 15_779_000, "1"),
        # BlurExchangeV2's proxy launched in July 2023; not verified to the block: an earlier
        # bound (Blend's launch, May 2023).
        Deployment(EXCHANGE_V2, 17_165_000, "2"),
    ),
    handlers={
        (ORDERS_MATCHED, 3): orders_matched,
        (EXECUTION, 1): execution,
        (EXECUTION_721_PACKED, 1): execution_721_packed,
        (EXECUTION_721_TAKER_FEE_PACKED, 1): execution_721_taker_fee_packed,
        (EXECUTION_721_MAKER_FEE_PACKED, 1): execution_721_maker_fee_packed,
    },
    payment_tokens=frozenset({BLUR_POOL}),
    finish=finish,
)
