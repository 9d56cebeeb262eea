"""Which on-chain offers of a batch get an urgent valuation: those still open at its end."""

from __future__ import annotations

from store.chain.sales import open_offers
from store.records import ListingEvent, SaleEvent, TransferEvent

PUNKS = "0x" + "b4" * 20


def _offer(token: int, block: int, kind: str = "offered", log: int = 0) -> ListingEvent:
    return ListingEvent(block, f"0x{block:064x}", f"0x{block:064x}", log, PUNKS, token, kind,
                        10**18, "0x" + "00" * 20)  # fmt: skip


def _sale(token: int, block: int) -> SaleEvent:
    return SaleEvent(block, f"0x{block:064x}", f"0x{block:064x}", 5, 0, PUNKS, token,
                     "0x" + "01" * 20, "0x" + "02" * 20, 10**18, "ETH", "cryptopunks")  # fmt: skip


def _transfer(token: int, block: int, *, mint: bool = False) -> TransferEvent:
    return TransferEvent(block, f"0x{block:064x}", f"0x{block:064x}", 3, 0, PUNKS, token,
                         "0x" + "01" * 20, "0x" + "03" * 20, 1, "cryptopunks", mint)  # fmt: skip


def _open(listings: list[ListingEvent], sales=(), transfers=()) -> list[tuple[int, int]]:
    return [(li.token_id, li.block_number) for li in open_offers(listings, sales, transfers)]


def test_an_offer_nothing_followed_is_valued() -> None:
    assert _open([_offer(1, 10), _offer(2, 11)]) == [(1, 10), (2, 11)]


def test_an_offer_bought_transferred_or_withdrawn_later_in_the_batch_is_not() -> None:
    offers = [_offer(1, 10), _offer(2, 10), _offer(3, 10), _offer(4, 10)]
    withdrawn = _offer(3, 12, "withdrawn")
    assert _open([*offers, withdrawn], [_sale(1, 11)], [_transfer(2, 12)]) == [(4, 10)]


def test_a_new_offer_replaces_the_earlier_one_and_a_bid_ends_neither() -> None:
    listings = [_offer(1, 10), _offer(1, 14), _offer(1, 15, "bid"), _offer(2, 10)]
    assert _open(listings) == [(2, 10), (1, 14)]  # in chain order


def test_events_before_the_offer_or_a_mint_leave_it_open() -> None:
    # the sale that brought the punk to its seller came first; log order counts within a block
    offers = [_offer(1, 10, log=9), _offer(2, 10)]
    assert _open(offers, [_sale(1, 10), _sale(1, 9)], [_transfer(2, 12, mint=True)]) == [
        (2, 10),
        (1, 10),
    ]
