"""CryptoPunks' own market, in the punks contract itself (it predates ERC-721).

``Assign`` is a mint, ``PunkTransfer`` a transfer, ``PunkBought`` a transfer plus a sale.
``acceptBidForPunk`` emits ``PunkBought`` with a zero buyer (and a zero value); the buyer is taken
from the same transaction's ``PunkTransfer``/ERC-20-shaped ``Transfer`` of the market, and the
price from the accepted bid when recorded (:mod:`store.chain.sales`). ``PunkOffered`` /
``PunkNoLongerForSale`` / ``PunkBidEntered`` / ``PunkBidWithdrawn`` are listings.

Source: the verified contract at 0xb47e…3bbb (``CryptoPunksMarket``, solc 0.4.8).
"""

from __future__ import annotations

from listeners.logs import ZERO, DecodeContext, Log, addr, topic, uint, words
from listeners.markets.base import Deployment, Market
from store.records import ListingEvent, SaleEvent, TransferEvent

CRYPTOPUNKS = "0xb47e3cd837ddf8e4c57f05d70ab865de6e193bbb"

ASSIGN = topic("Assign(address,uint256)")
PUNK_TRANSFER = topic("PunkTransfer(address,address,uint256)")
PUNK_OFFERED = topic("PunkOffered(uint256,uint256,address)")
PUNK_BID_ENTERED = topic("PunkBidEntered(uint256,uint256,address)")
PUNK_BID_WITHDRAWN = topic("PunkBidWithdrawn(uint256,uint256,address)")
PUNK_BOUGHT = topic("PunkBought(uint256,uint256,address,address)")
PUNK_NO_LONGER_FOR_SALE = topic("PunkNoLongerForSale(uint256)")


def _move(d: DecodeContext, punk: int, frm: str, to: str, mint: bool) -> TransferEvent:
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


def assign(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    """``Assign(to, punkIndex)``: the original claim, a mint."""
    d.transfers.append(_move(d, uint(words(log["data"])[0]), ZERO, addr(topics[1]), True))
    return True


def punk_transfer(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    """``PunkTransfer(from, to, punkIndex)``."""
    d.punk_recipient[d.raw_tx + log["address"]] = topics[2]
    punk = uint(words(log["data"])[0])
    d.transfers.append(_move(d, punk, addr(topics[1]), addr(topics[2]), False))
    return True


def punk_bought(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    """``PunkBought(punkIndex, value, from, to)``: the punk's move and its sale."""
    punk = int(topics[1], 16)
    value = uint(words(log["data"])[0])
    seller = addr(topics[2])
    buyer = addr(topics[3])
    fixed = buyer == ZERO
    if fixed:
        # acceptBidForPunk's bug: the buyer is the market's transfer recipient in this tx.
        buyer = addr(d.punk_recipient.get(d.raw_tx + log["address"], ZERO))
    d.transfers.append(_move(d, punk, seller, buyer, False))
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


def _listing(
    d: DecodeContext, topics: list[str], kind: str, price: int | None, account: str
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


def punk_offered(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    """``PunkOffered(punkIndex, minValue, toAddress)``: listed (to 0x0: to anyone)."""
    price = uint(words(log["data"])[0])
    d.listings.append(_listing(d, topics, "offered", price, addr(topics[2])))
    return True


def punk_no_longer_for_sale(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    """``PunkNoLongerForSale(punkIndex)``: the listing withdrawn."""
    d.listings.append(_listing(d, topics, "withdrawn", None, ZERO))
    return True


def punk_bid_entered(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    """``PunkBidEntered(punkIndex, value, fromAddress)``."""
    price = uint(words(log["data"])[0])
    d.listings.append(_listing(d, topics, "bid", price, addr(topics[2])))
    return True


def punk_bid_withdrawn(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    """``PunkBidWithdrawn(punkIndex, value, fromAddress)``."""
    price = uint(words(log["data"])[0])
    d.listings.append(_listing(d, topics, "bid_withdrawn", price, addr(topics[2])))
    return True


MARKET = Market(
    name="cryptopunks",
    deployments=(Deployment(CRYPTOPUNKS, 3_914_495),),
    from_collection=True,
    handlers={
        (ASSIGN, 2): assign,
        (PUNK_TRANSFER, 3): punk_transfer,
        (PUNK_BOUGHT, 4): punk_bought,
        (PUNK_OFFERED, 3): punk_offered,
        (PUNK_NO_LONGER_FOR_SALE, 2): punk_no_longer_for_sale,
        (PUNK_BID_ENTERED, 3): punk_bid_entered,
        (PUNK_BID_WITHDRAWN, 3): punk_bid_withdrawn,
    },
)
