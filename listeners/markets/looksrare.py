"""LooksRare: the v1 exchange (``TakerAsk`` / ``TakerBid``, and ``RoyaltyPayment``) and the v2
protocol (``TakerAsk`` / ``TakerBid`` with the nonce-invalidation tuple).

v1, ``TakerBid(bytes32 orderHash, uint256 orderNonce, address indexed taker, address indexed
maker, address indexed strategy, address currency, address collection, uint256 tokenId,
uint256 amount, uint256 price)`` and ``TakerAsk`` with the same fields: four topics, seven data
words. ``TakerBid``: a listing bought (taker = buyer, maker = seller); ``TakerAsk``: a bid
accepted (taker = seller, maker = buyer). ``price`` is what the buyer paid for ``amount`` units of
one token id. The exchange emits ``RoyaltyPayment(address indexed collection, uint256 indexed
tokenId, address indexed royaltyRecipient, address currency, uint256 amount)`` before the
sale's event in the same transaction: it becomes the sale's ``royalty_wei``. v1's protocol fee
(the strategy's) is in no event, so ``fees_wei`` is the royalty alone.

v2, one topic (nothing indexed): ``TakerBid(NonceInvalidationParameters, address bidUser,
address bidRecipient, uint256 strategyId, address currency, address collection,
uint256[] itemIds, uint256[] amounts, address[2] feeRecipients, uint256[3] feeAmounts)`` with
NonceInvalidationParameters = (bytes32 orderHash, uint256 orderNonce, bool isNonceInvalidated)
inline; ``TakerAsk`` has (askUser, bidUser) in the two address slots. ``feeRecipients[0]``
receives the proceeds (the seller of a ``TakerBid``), ``feeAmounts`` are (the seller's proceeds,
the creator fee, the protocol fee), so the buyer paid their sum. A fill of several item ids is
split evenly over them and flagged with its size. Currency 0x0 is ETH.

Sources: LooksRare's verified ``LooksRareExchange`` (v1, 0x5972…ce3a) and ``ILooksRareProtocol``
/ ``LooksRareProtocol`` (v2, 0x0000…2377, ``_executeTakerBid``/``_executeTakerAsk``).
"""

from __future__ import annotations

from listeners.logs import WETH, DecodeContext, Log, addr, array, topic, uint, words
from listeners.markets.base import Deployment, Market, currency_name
from store.records import SaleEvent

NAME = "looksrare"
EXCHANGE_V1 = "0x59728544b08ab483533076417fbbb2fd0b17ce3a"
PROTOCOL_V2 = "0x0000000000e655fae4d56241588680f86e3b2377"

_V1_FIELDS = "bytes32,uint256,address,address,address,address,address,uint256,uint256,uint256"
TAKER_ASK_V1 = topic(f"TakerAsk({_V1_FIELDS})")
TAKER_BID_V1 = topic(f"TakerBid({_V1_FIELDS})")
ROYALTY_PAYMENT = topic("RoyaltyPayment(address,uint256,address,address,uint256)")

_V2_FIELDS = (
    "(bytes32,uint256,bool),address,address,uint256,address,address,"
    "uint256[],uint256[],address[2],uint256[3]"
)
TAKER_ASK_V2 = topic(f"TakerAsk({_V2_FIELDS})")
TAKER_BID_V2 = topic(f"TakerBid({_V2_FIELDS})")


def _sale(
    d: DecodeContext,
    batch: int,
    contract: str,
    token_id: int,
    seller: str,
    buyer: str,
    price: int,
    currency: str,
    fees: int,
    royalty: int,
    count: int,
) -> SaleEvent:
    return SaleEvent(
        block_number=d.block_number,
        block_hash=d.block_hash,
        tx_hash=d.tx_hash,
        log_index=d.log_index,
        batch_index=batch,
        contract=contract,
        token_id=token_id,
        seller=seller,
        buyer=buyer,
        price_wei=price,
        currency=currency,
        marketplace=NAME,
        fees_wei=fees,
        royalty_wei=royalty,
        bundle_size=count,
    )


# --- v1 ----------------------------------------------------------------------------------------


def royalty_payment(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    """Held for the sale event that follows it in the same transaction."""
    amount = uint(words(log["data"])[1])
    key = (d.tx_hash, d.contract, addr(topics[1]), int(topics[2], 16))
    royalties: dict[tuple[str, str, str, int], int] = d.scratch.setdefault(NAME, {})
    royalties[key] = royalties.get(key, 0) + amount
    return True


def _v1(d: DecodeContext, log: Log, topics: list[str], taker_buys: bool) -> bool:
    w = words(log["data"])
    if len(w) < 7:
        return False
    collection = addr(w[3])
    token_id = uint(w[4])
    royalties: dict[tuple[str, str, str, int], int] = d.scratch.get(NAME, {})
    royalty = royalties.pop((d.tx_hash, d.contract, collection, token_id), 0)
    if not d.keeps(collection):
        return True
    taker, maker = addr(topics[1]), addr(topics[2])
    buyer, seller = (taker, maker) if taker_buys else (maker, taker)
    currency = currency_name(addr(w[2]), WETH)
    d.sales.append(
        _sale(d, 0, collection, token_id, seller, buyer, uint(w[6]), currency, royalty, royalty, 1)
    )
    return True


def taker_bid_v1(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    """A listing bought: the taker is the buyer."""
    return _v1(d, log, topics, taker_buys=True)


def taker_ask_v1(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    """A bid accepted: the taker is the seller."""
    return _v1(d, log, topics, taker_buys=False)


# --- v2 ----------------------------------------------------------------------------------------


def _v2(d: DecodeContext, log: Log, taker_bid: bool) -> bool:
    w = words(log["data"])
    if len(w) < 17:
        return False
    collection = addr(w[7])
    if not d.keeps(collection):
        return True
    item_ids = array(w, 8)
    if not item_ids:
        return True
    if taker_bid:  # bidUser pays, bidRecipient gets the NFTs, feeRecipients[0] is the seller
        buyer, seller = addr(w[4]), addr(w[10])
    else:  # askUser sells, bidUser (the maker) buys
        seller, buyer = addr(w[3]), addr(w[4])
    proceeds, creator_fee, protocol_fee = uint(w[12]), uint(w[13]), uint(w[14])
    count = len(item_ids)
    price = (proceeds + creator_fee + protocol_fee) // count
    fees = (creator_fee + protocol_fee) // count
    royalty = creator_fee // count
    currency = currency_name(addr(w[6]), WETH)
    d.sales.extend(
        _sale(d, i, collection, item, seller, buyer, price, currency, fees, royalty, count)
        for i, item in enumerate(item_ids)
    )
    return True


def taker_bid_v2(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    return _v2(d, log, taker_bid=True)


def taker_ask_v2(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    return _v2(d, log, taker_bid=False)


def finish(d: DecodeContext) -> None:
    """Royalty payments whose sale event never came (another market's fill) are dropped."""
    d.scratch.pop(NAME, None)


MARKET = Market(
    name=NAME,
    deployments=(
        # v1: the block of its creation (LooksRare's own subgraph starts there).
        Deployment(EXCHANGE_V1, 13_885_625, "1"),
        # v2 launched in April 2023; 16_900_000 (late March 2023) is a conservative earlier
        # bound, not its creation block.
        Deployment(PROTOCOL_V2, 16_900_000, "2"),
    ),
    handlers={
        (TAKER_BID_V1, 4): taker_bid_v1,
        (TAKER_ASK_V1, 4): taker_ask_v1,
        (ROYALTY_PAYMENT, 4): royalty_payment,
        (TAKER_BID_V2, 1): taker_bid_v2,
        (TAKER_ASK_V2, 1): taker_ask_v2,
    },
    finish=finish,
)
