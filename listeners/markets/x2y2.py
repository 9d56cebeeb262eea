"""X2Y2's exchange: ``EvInventory``, emitted once per settled order item.

``EvInventory(bytes32 indexed itemHash, address maker, address taker, uint256 orderSalt,
uint256 settleSalt, uint256 intent, uint256 delegateType, uint256 deadline, address currency,
bytes dataMask, OrderItem item, SettleDetail detail)`` with OrderItem = (uint256 price, bytes
data) and SettleDetail = (uint8 op, uint256 orderIdx, uint256 itemIdx, uint256 price, bytes32
itemHash, address executionDelegate, bytes dataReplacement, uint256 bidIncentivePct, uint256
aucMinIncrementPct, uint256 aucIncDurationSecs, Fee[] fees), Fee = (uint256 percentage,
address to). Two topics; the data holds ten head words, then the three dynamic parts.

The NFTs are ``item.data``: ``abi.encode`` of (token, tokenId)[] for the ERC-721 delegate
(delegateType 1) or (token, tokenId, amount)[] for the ERC-1155 one (2). A collection offer's
token id is filled in by ``detail.dataReplacement`` where ``dataMask`` is set; the exchange
writes it into ``item.data`` before emitting, and applying it again here changes nothing.

Every settle op emits the event, sales or not: ``op`` 1 (COMPLETE_SELL_OFFER, a listing bought:
maker sells to taker) and 2 (COMPLETE_BUY_OFFER, an offer accepted: taker sells to maker) are
sales at ``detail.price``, which the buyer paid; each fee is ``price * percentage / 1e6`` out of
the seller's share. The event does not say which fee is the creator's, so ``royalty_wei`` stays
0. Auction completions (op 5) settle at the auction's stored price, not in the event, and are not
recorded; bids, cancels and refunds are no sales. A multi-NFT item is split evenly.

Source: the verified X2Y2 exchange (proxy 0x7431…eed3, implementation ``X2Y2_r1``: ``_run``,
``_emitInventory``, ``_distributeFeeAndProfit``, ``_arrayReplace``) and its delegates' ``decode``.
"""

from __future__ import annotations

from listeners.logs import WETH, DecodeContext, Log, addr, topic, uint, words
from listeners.markets.base import Deployment, Market, currency_name
from store.records import SaleEvent

NAME = "x2y2"
EXCHANGE = "0x74312363e45dcaba76c59ec49a7aa8a65a67eed3"

EV_INVENTORY = topic(
    "EvInventory(bytes32,address,address,uint256,uint256,uint256,uint256,uint256,address,bytes,"
    "(uint256,bytes),"
    "(uint8,uint256,uint256,uint256,bytes32,address,bytes,uint256,uint256,uint256,"
    "(uint256,address)[]))"
)

# Market.Op, Market.INTENT_*, delegate types
COMPLETE_SELL_OFFER, COMPLETE_BUY_OFFER, COMPLETE_AUCTION = 1, 2, 5
INTENT_SELL, INTENT_AUCTION, INTENT_BUY = 1, 2, 3
ERC721_DELEGATE, ERC1155_DELEGATE = 1, 2
RATE_BASE = 1_000_000


def _bytes(body: str, at_word: int) -> bytes:
    """The ``bytes`` whose length word is word ``at_word`` of ``body`` (hex, no 0x)."""
    start = at_word * 64
    length = int(body[start : start + 64], 16)
    return bytes.fromhex(body[start + 64 : start + 64 + 2 * length])


def _masked(data: bytes, replacement: bytes, mask: bytes) -> bytes:
    if not mask or len(replacement) != len(data) or len(mask) != len(data):
        return data
    return bytes(r if m else b for b, r, m in zip(data, replacement, mask, strict=True))


def _nfts(data: bytes, delegate_type: int) -> list[tuple[str, int]] | None:
    """(token, id) of each pair in ``item.data``; None for an unknown delegate."""
    size = {ERC721_DELEGATE: 2, ERC1155_DELEGATE: 3}.get(delegate_type)
    if size is None or len(data) < 64:
        return None
    w = words(data.hex())
    at = int(w[0], 16) // 32
    count = int(w[at], 16)
    items = w[at + 1 : at + 1 + size * count]
    if len(items) != size * count:
        return None
    return [(addr(items[i]), int(items[i + 1], 16)) for i in range(0, len(items), size)]


def ev_inventory(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    body = log["data"][2:] if log["data"].startswith("0x") else log["data"]
    w = words(body)
    if len(w) < 11:
        return False
    item_at = int(w[9], 16) // 32
    detail_at = int(w[10], 16) // 32
    op = uint(w[detail_at])
    if op not in (COMPLETE_SELL_OFFER, COMPLETE_BUY_OFFER):
        return True  # a bid, cancel, refund or auction completion: no priced sale here
    maker, taker = addr(w[0]), addr(w[1])
    seller, buyer = (maker, taker) if op == COMPLETE_SELL_OFFER else (taker, maker)
    data = _bytes(body, item_at + int(w[item_at + 1], 16) // 32)
    replacement = _bytes(body, detail_at + int(w[detail_at + 6], 16) // 32)
    data = _masked(data, replacement, _bytes(body, int(w[8], 16) // 32))
    nfts = _nfts(data, uint(w[5]))
    if not nfts:
        return False
    price = uint(w[detail_at + 3])
    fees_at = detail_at + int(w[detail_at + 10], 16) // 32
    fee_count = int(w[fees_at], 16)
    fees = sum(price * int(w[fees_at + 1 + 2 * i], 16) // RATE_BASE for i in range(fee_count))
    count = len(nfts)
    currency = currency_name(addr(w[7]), WETH)
    d.sales.extend(
        SaleEvent(
            block_number=d.block_number,
            block_hash=d.block_hash,
            tx_hash=d.tx_hash,
            log_index=d.log_index,
            batch_index=i,
            contract=token,
            token_id=token_id,
            seller=seller,
            buyer=buyer,
            price_wei=price // count,
            currency=currency,
            marketplace=NAME,
            fees_wei=fees // count,
            bundle_size=count,
        )
        for i, (token, token_id) in enumerate(nfts)
        if d.keeps(token)
    )
    return True


MARKET = Market(
    name=NAME,
    deployments=(
        # X2Y2 opened in mid-February 2022; 14_100_000 (end of January 2022) is a conservative
        # earlier bound, not the proxy's creation block.
        Deployment(EXCHANGE, 14_100_000),
    ),
    handlers={(EV_INVENTORY, 2): ev_inventory},
)
