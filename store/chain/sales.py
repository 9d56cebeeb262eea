"""Sales, on-chain listings (offers, withdrawals, bids) and the valuation work listings cause.

Outbox contract for an on-chain listing (``offered``) still open at the end of its batch:
``task="value", queue="urgent"``, payload ``{chain_id, contract, token_id, reason: "listing",
price_wei (string)}``, dedupe key ``value:{chain_id}:{block_hash}:{tx_hash}:{log_index}``. An
offer that a later event of the same batch ended (a sale, a transfer, a withdrawal, a new offer)
is not valued: a backfill replays years of offers that were bought minutes after they were made,
and valuing each would put stale work ahead of the desk's live listings on the urgent queue.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from store.chain.staging import LISTINGS, SALES, EventRows, copy_data, insert_events
from store.records import ListingEvent, SaleEvent, TransferEvent

# CryptoPunks' acceptBidForPunk emits PunkBought with value 0: the price is the accepted bid,
# the buyer's latest PunkBidEntered for that punk before the sale.
_FIX_PUNK_BID_PRICES = """
UPDATE sales s SET price_wei = b.price_wei, inferred = true
FROM _st_sales st, LATERAL (
  SELECT l.price_wei FROM listings l
  WHERE l.chain_id = %(chain)s AND l.contract = st.contract AND l.token_id = st.token_id
    AND l.kind = 'bid' AND l.account = st.buyer
    AND (l.block_number, l.log_index) < (st.block_number, st.log_index)
  ORDER BY l.block_number DESC, l.log_index DESC LIMIT 1) b
WHERE st.marketplace = 'cryptopunks' AND st.price_wei = 0
  AND s.chain_id = %(chain)s AND s.block_number = st.block_number
  AND s.block_hash = st.block_hash AND s.tx_hash = st.tx_hash
  AND s.log_index = st.log_index AND s.batch_index = st.batch_index
"""


def is_unpriced_punk_sale(s: SaleEvent) -> bool:
    """An accepted punk bid: no price in the event, filled from the bid when recorded."""
    return s.marketplace == "cryptopunks" and s.price_wei == 0


def record_sales(
    cur: Any,
    chain_id: int,
    sales: Sequence[SaleEvent],
    rows: EventRows,
    unpriced: bytes,
    *,
    check: bool,
) -> list[SaleEvent] | None:
    """Write ``sales`` (their COPY ``rows``) and price the accepted punk bids among them
    (``unpriced``: their COPY lines); returns the sales new to the database, or None when all of
    them were."""
    keys = insert_events(cur, SALES, chain_id, rows, check=check)
    if unpriced:
        if keys is None:  # the direct COPY left _st_sales empty
            copy_data(cur, "COPY _st_sales FROM STDIN", unpriced)
        cur.execute(_FIX_PUNK_BID_PRICES, {"chain": chain_id})
    if keys is None:
        return None
    return [s for s in sales if (s.block_hash, s.tx_hash, s.log_index, s.batch_index) in keys]


def record_listings(
    cur: Any, chain_id: int, listings: Sequence[ListingEvent], rows: EventRows
) -> int:
    """Write ``listings``; returns how many were new to the database."""
    keys = insert_events(cur, LISTINGS, chain_id, rows)
    return len(listings) if keys is None else len(keys)


def open_offers(
    listings: Sequence[ListingEvent],
    sales: Sequence[SaleEvent],
    transfers: Sequence[TransferEvent],
) -> list[ListingEvent]:
    """The offers among ``listings`` that no later event of the same token in the batch ended:
    a sale, a transfer other than a mint, a withdrawal or another offer (a bid ends none)."""
    ended: dict[tuple[str, int], tuple[int, int]] = {}  # token -> its last ending event

    def end(contract: str, token_id: int, at: tuple[int, int]) -> None:
        key = (contract, token_id)
        if at > ended.get(key, (-1, -1)):
            ended[key] = at

    for s in sales:
        end(s.contract, s.token_id, (s.block_number, s.log_index))
    for t in transfers:
        if not t.is_mint:
            end(t.contract, t.token_id, (t.block_number, t.log_index))
    for li in listings:
        if li.kind in ("offered", "withdrawn"):
            end(li.contract, li.token_id, (li.block_number, li.log_index))
    return sorted(
        (
            li
            for li in listings
            if li.kind == "offered"
            and ended[(li.contract, li.token_id)] <= (li.block_number, li.log_index)
        ),
        key=lambda x: (x.block_number, x.log_index),
    )


def record_offers(
    cur: Any,
    chain_id: int,
    listings: Sequence[ListingEvent],
    sales: Sequence[SaleEvent],
    transfers: Sequence[TransferEvent],
) -> int:
    """Urgent valuation work for the offers among ``listings`` still open at the end of the
    batch (:func:`open_offers`); returns the outbox rows added."""
    offered = open_offers(listings, sales, transfers)
    if not offered:
        return 0
    cur.executemany(
        "INSERT INTO outbox (task, queue, payload, dedupe_key, attempts) "
        "VALUES ('value', 'urgent', %s::jsonb, %s, 0) ON CONFLICT (dedupe_key) DO NOTHING",
        [
            (
                json.dumps(
                    {
                        "chain_id": chain_id,
                        "contract": li.contract,
                        "token_id": str(li.token_id),
                        "reason": "listing",
                        "price_wei": str(li.price_wei or 0),
                    }
                ),
                f"value:{chain_id}:{li.block_hash}:{li.tx_hash}:{li.log_index}",
            )
            for li in offered
        ],
    )
    return max(0, int(cur.rowcount))
