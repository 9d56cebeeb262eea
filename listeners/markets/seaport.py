"""Seaport 1.1–1.6 (OpenSea and the many markets built on it), and the demo market, which
emits the same ``OrderFulfilled``.

``OrderFulfilled(bytes32 orderHash, address indexed offerer, address indexed zone,
address recipient, SpentItem[] offer, ReceivedItem[] consideration)``: data = orderHash,
recipient, offset(offer), offset(consideration), then the two arrays; ``SpentItem`` is
(itemType, token, identifier, amount), ``ReceivedItem`` adds its recipient.

A listing fills with the NFT in ``offer`` (seller = offerer, buyer = recipient, price = the
currency items of ``consideration``); an accepted offer has the NFT in ``consideration`` (buyer =
offerer, seller = recipient, price = the currency items of ``offer``). The price is what the buyer
paid, fees included; fees are the currency items paid to anyone but the seller, and the royalty
the part of them not paid to OpenSea's fee collectors. A bundle (several
NFTs in one order) is split evenly over its items and flagged with its size.

Source: ProjectOpenSea/seaport ``ConsiderationEventsAndErrors.sol``; the addresses are the
canonical deployments (the same on every chain).
"""

from __future__ import annotations

from typing import NamedTuple

from listeners.logs import WETH, DecodeContext, Log, addr, groups, topic, words
from listeners.markets.base import Deployment, Market, currency_name
from store.records import SaleEvent

ORDER_FULFILLED = topic(
    "OrderFulfilled(bytes32,address,address,address,"
    "(uint8,address,uint256,uint256)[],(uint8,address,uint256,uint256,address)[])"
)

# OpenSea's fee collectors: a payment to anyone else but the seller is taken for a royalty
# (on another frontend's orders its own fee would be counted as one)
MARKETPLACE_FEE_RECIPIENTS = frozenset(
    {
        "0x0000a26b00c1f0df003000390027140000faa719",
        "0x8de9c5a032463c561423387a9648c5c7bcc5bc90",
    }
)

# ItemType
NATIVE, ERC20, ERC721, ERC1155, ERC721_WITH_CRITERIA, ERC1155_WITH_CRITERIA = range(6)
_NFT_TYPES = frozenset({ERC721, ERC1155, ERC721_WITH_CRITERIA, ERC1155_WITH_CRITERIA})
_CURRENCY_TYPES = (NATIVE, ERC20)


class _Item(NamedTuple):
    """An offer (recipient: the offerer) or consideration item."""

    item_type: int
    token: str
    identifier: int
    amount: int
    recipient: str


def order_fulfilled(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    offerer = addr(topics[1])
    w = words(log["data"])
    recipient = addr(w[1])
    offer = [
        _Item(int(t, 16), addr(token), int(ident, 16), int(amount, 16), offerer)
        for t, token, ident, amount in groups(w, int(w[2], 16) // 32, 4)
    ]
    consideration = [
        _Item(int(t, 16), addr(token), int(ident, 16), int(amount, 16), addr(to))
        for t, token, ident, amount, to in groups(w, int(w[3], 16) // 32, 5)
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
    royalty = (
        sum(
            it.amount
            for it in payments
            if it.recipient != seller and it.recipient not in MARKETPLACE_FEE_RECIPIENTS
        )
        // count
    )
    first = price_items[0]
    currency = currency_name(None if first.item_type == NATIVE else first.token, WETH)
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
            fees_wei=fees,
            royalty_wei=royalty,
            bundle_size=count,
        )
        for i, nft in enumerate(nfts)
        if d.keeps(nft.token)
    )
    return True


MARKET = Market(
    name="seaport",
    # 1.1 and 1.5: their creation blocks (public indexers of them start there or later).
    # 1.2–1.4 and 1.6 are conservative earlier bounds, not their creation blocks: each is a
    # later version than the one whose block it carries (1.1's, 1.5's), so it cannot be older.
    deployments=(
        Deployment("0x00000000006c3852cbef3e08e8df289169ede581", 14_946_474, "1.1"),
        Deployment("0x00000000000006c7676171937c444f6bde3d6282", 14_946_474, "1.2"),
        Deployment("0x0000000000000ad24e80fd803c6ac37206a45f15", 14_946_474, "1.3"),
        Deployment("0x00000000000001ad428e4906ae43d8f9852d0dd6", 14_946_474, "1.4"),
        Deployment("0x00000000000000adc04c56bf30ac9d3c0aaf14dc", 17_129_405, "1.5"),
        Deployment("0x0000000000000068f116a894984e2db1123eb395", 17_129_405, "1.6"),
    ),
    handlers={(ORDER_FULFILLED, 3): order_fulfilled},
)
