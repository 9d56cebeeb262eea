"""Sales: a collection's, as the valuation model reads them, and their fingerprint; one
token's, for the API; and a collection's 30-day statistics."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from store.chain import token_key_sql
from store.models import (
    Sale,
    Token,
)


def collection_sales(
    session: Session, chain_id: int, contract: str, before: dt.datetime | None = None
) -> list[Sale]:
    query = select(Sale).where(Sale.chain_id == chain_id, Sale.contract == contract.lower())
    if before is not None:
        query = query.where(Sale.block_time < before)
    return list(session.scalars(query.order_by(Sale.block_time, Sale.log_index)))


def sales_stamp(session: Session, chain_id: int, contract: str) -> tuple[int, int, int]:
    """A cheap fingerprint of the collection's sales, (count, max block, block sum): it changes
    when one is added or rolled back."""
    n, top, total = session.execute(
        select(
            func.count(),
            func.coalesce(func.max(Sale.block_number), 0),
            func.coalesce(func.sum(Sale.block_number), 0),
        ).where(Sale.chain_id == chain_id, Sale.contract == contract)
    ).one()
    return int(n), int(top), int(total)


def token_sales(session: Session, chain_id: int, contract: str, token_id: int) -> list[Sale]:
    return list(
        session.scalars(
            select(Sale)
            .where(
                Sale.chain_id == chain_id,
                Sale.contract == contract,
                Sale.token_id == Decimal(token_id),
            )
            .order_by(Sale.block_time.desc(), Sale.log_index.desc())
        )
    )


STATS_WINDOW = dt.timedelta(days=30)

# One statement, one round trip: the counts and the window's percentiles together, the window
# ending at :end_at or, when that is NULL, the transaction's now() (as database_now reads it).
# The window is subtracted in seconds: '30 days' would be calendar days in the session's zone.
_COLLECTION_STATS = """
WITH w AS (SELECT COALESCE(CAST(:end_at AS timestamptz), now()) AS end_at)
SELECT w.end_at,
       (SELECT name FROM collections WHERE chain_id = :chain_id AND address = :contract) AS name,
       (SELECT count(*) FROM tokens WHERE chain_id = :chain_id AND contract = :contract) AS tokens,
       (SELECT count(*) FROM sales WHERE chain_id = :chain_id AND contract = :contract) AS sales,
       (SELECT count(*) FROM listings
        WHERE chain_id = :chain_id AND contract = :contract) AS listings,
       win.n, win.median, win.floor
FROM w CROSS JOIN LATERAL (
  SELECT count(*) AS n,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY price_eth_wei) AS median,
         percentile_cont(0.1) WITHIN GROUP (ORDER BY price_eth_wei) AS floor
  FROM sales
  WHERE chain_id = :chain_id AND contract = :contract AND price_eth_wei > 0 AND bundle_size = 1
    AND block_time > w.end_at - make_interval(secs => :window_s) AND block_time <= w.end_at
) win
"""


@dataclass(frozen=True)
class CollectionStats:
    name: str | None
    token_count: int
    sales_count: int
    window_start: dt.datetime
    window_end: dt.datetime
    window_sales: int
    median_eth: float | None
    floor_eth: float | None
    listings_count: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "token_count": self.token_count,
            "sales_count": self.sales_count,
            "window": {
                "start": self.window_start.isoformat(),
                "end": self.window_end.isoformat(),
                "sales": self.window_sales,
            },
            "median_sale_eth_30d": self.median_eth,
            "floor_proxy_eth_30d": self.floor_eth,
            "listings_count": self.listings_count,
        }


def collection_stats(
    session: Session, chain_id: int, contract: str, as_of: dt.datetime | None = None
) -> CollectionStats | None:
    """Counts, and the 30-day median and 10th-percentile sale (the floor proxy: a collection's
    floor is what its cheapest tokens actually sold for, not what they were listed at). The
    window ends at ``as_of`` or now; None when nothing at all is known about the contract."""
    row = session.execute(
        text(_COLLECTION_STATS),
        {
            "chain_id": chain_id,
            "contract": contract,
            "end_at": as_of,
            "window_s": STATS_WINDOW.total_seconds(),
        },
    ).one()
    if row.name is None and not row.tokens and not row.sales and not row.listings:
        return None
    end: dt.datetime = row.end_at
    wei = 10**18
    return CollectionStats(
        name=row.name or None,
        token_count=int(row.tokens or 0),
        sales_count=int(row.sales or 0),
        window_start=end - STATS_WINDOW,
        window_end=end,
        window_sales=int(row.n),
        median_eth=None if row.median is None else float(row.median) / wei,
        floor_eth=None if row.floor is None else float(row.floor) / wei,
        listings_count=int(row.listings or 0),
    )


# The token's live on-chain ask: its latest public offer (to anyone) or withdrawal since it
# last moved (a transfer or a sale ends an offer in the punks' market), and its live bid: the
# latest bid or withdrawal, unless the bidder has bought the token since.
_PARAM_KEY = "hashtextextended(CAST(:contract AS text) || CAST(:token_id AS numeric)::text, 0)"
# Transfers are read through the per-token hash index (``token_key_sql``): a plain
# (chain, contract, token) condition walks the chain's key backwards instead.
_ONCHAIN_ORDERS = f"""
WITH moved AS (
  SELECT x.block_number, x.log_index FROM transfers x
  WHERE {token_key_sql("x")} = {_PARAM_KEY}
    AND x.chain_id = :chain_id AND x.contract = :contract AND x.token_id = :token_id
  ORDER BY x.block_number DESC, x.log_index DESC LIMIT 1
), offer AS (
  SELECT l.kind, l.price_wei, l.account FROM listings l
  WHERE l.chain_id = :chain_id AND l.contract = :contract AND l.token_id = :token_id
    AND l.kind IN ('offered', 'withdrawn')
    AND NOT EXISTS (SELECT 1 FROM moved m
                    WHERE (m.block_number, m.log_index) > (l.block_number, l.log_index))
  ORDER BY l.block_number DESC, l.log_index DESC LIMIT 1
), bid AS (
  SELECT l.kind, l.price_wei, l.account FROM listings l
  WHERE l.chain_id = :chain_id AND l.contract = :contract AND l.token_id = :token_id
    AND l.kind IN ('bid', 'bid_withdrawn')
    AND NOT EXISTS (SELECT 1 FROM sales s
                    WHERE s.chain_id = l.chain_id AND s.contract = l.contract
                      AND s.token_id = l.token_id AND s.buyer = l.account
                      AND (s.block_number, s.log_index) > (l.block_number, l.log_index))
  ORDER BY l.block_number DESC, l.log_index DESC LIMIT 1
)
SELECT (SELECT price_wei FROM offer
        WHERE kind = 'offered' AND account = '0x0000000000000000000000000000000000000000'),
       (SELECT price_wei FROM bid WHERE kind = 'bid'),
       (SELECT account FROM bid WHERE kind = 'bid')
"""

_OFFCHAIN_ASK = """
SELECT price_eth_wei, marketplace FROM offchain_listings
WHERE chain_id = :chain_id AND contract = :contract AND token_id = :token_id
  AND status = 'active' AND price_eth_wei IS NOT NULL
  AND (expires_at IS NULL OR expires_at > now())
ORDER BY price_eth_wei LIMIT 1
"""


@dataclass(frozen=True)
class LiveOrders:
    """The token's best live ask and bid, in wei of ether, and where each stands."""

    ask_wei: int | None
    ask_venue: str | None
    bid_wei: int | None
    bid_venue: str | None
    bidder: str | None = None


def live_orders(session: Session, chain_id: int, contract: str, token_id: int) -> LiveOrders:
    """The cheapest live ask (on chain or off) and the live on-chain bid of one token."""
    params = {"chain_id": chain_id, "contract": contract, "token_id": Decimal(token_id)}
    onchain_ask, bid, bidder = session.execute(text(_ONCHAIN_ORDERS), params).one()
    ask_wei = None if onchain_ask is None else int(onchain_ask)
    ask_venue = None if onchain_ask is None else "on-chain offer"
    offchain = session.execute(text(_OFFCHAIN_ASK), params).first()
    if offchain is not None and (ask_wei is None or int(offchain[0]) < ask_wei):
        ask_wei, ask_venue = int(offchain[0]), str(offchain[1])
    return LiveOrders(
        ask_wei=ask_wei,
        ask_venue=ask_venue,
        bid_wei=None if bid is None else int(bid),
        bid_venue=None if bid is None else "on-chain bid",
        bidder=None if bid is None else bidder,
    )


@dataclass(frozen=True)
class Ask:
    """One token's cheapest live ask, in wei of ether, and where it stands."""

    token_id: int
    price_wei: int
    venue: str


# Every token's live public on-chain offer (its latest offer or withdrawal, made after its
# latest transfer) and its cheapest active off-chain listing; ``:ids`` NULL means every token.
_LIVE_ASKS = f"""
WITH latest AS (
  SELECT DISTINCT ON (l.token_id) l.token_id, l.kind, l.price_wei, l.account,
         l.block_number, l.log_index
  FROM listings l
  WHERE l.chain_id = :chain_id AND l.contract = :contract
    AND l.kind IN ('offered', 'withdrawn')
    AND (CAST(:ids AS numeric[]) IS NULL OR l.token_id = ANY(CAST(:ids AS numeric[])))
  ORDER BY l.token_id, l.block_number DESC, l.log_index DESC
)
SELECT o.token_id, o.price_wei, 'on-chain offer' AS venue FROM latest o
WHERE o.kind = 'offered' AND o.account = '0x0000000000000000000000000000000000000000'
  AND o.price_wei > 0
  AND NOT EXISTS (SELECT 1 FROM transfers t
                  WHERE {token_key_sql("t")}
                        = hashtextextended(CAST(:contract AS text) || o.token_id::text, 0)
                    AND t.chain_id = :chain_id AND t.contract = :contract
                    AND t.token_id = o.token_id
                    AND (t.block_number, t.log_index) > (o.block_number, o.log_index))
UNION ALL
SELECT token_id, price_eth_wei, marketplace FROM offchain_listings
WHERE chain_id = :chain_id AND contract = :contract
  AND status = 'active' AND price_eth_wei > 0
  AND (expires_at IS NULL OR expires_at > now())
  AND (CAST(:ids AS numeric[]) IS NULL OR token_id = ANY(CAST(:ids AS numeric[])))
"""


def _live_asks(
    session: Session, chain_id: int, contract: str, ids: list[int] | None
) -> dict[int, Ask]:
    params = {
        "chain_id": chain_id,
        "contract": contract,
        "ids": None if ids is None else [Decimal(i) for i in ids],
    }
    best: dict[int, Ask] = {}
    for token_id, price, venue in session.execute(text(_LIVE_ASKS), params):
        tid, wei = int(token_id), int(price)
        if tid not in best or wei < best[tid].price_wei:
            best[tid] = Ask(tid, wei, str(venue))
    return best


def asks_of(session: Session, chain_id: int, contract: str, token_ids: list[int]) -> dict[int, Ask]:
    """The cheapest live ask (on chain or off) of each of ``token_ids`` that has one."""
    if not token_ids:
        return {}
    return _live_asks(session, chain_id, contract, sorted(set(token_ids)))


def floor_ask(
    session: Session, chain_id: int, contract: str, *, exclude_token: int | None = None
) -> Ask | None:
    """The collection's floor ask: the cheapest live ask of any of its tokens (but
    ``exclude_token``), on chain or off; None when nothing is listed."""
    asks = _live_asks(session, chain_id, contract, None)
    found = [a for t, a in asks.items() if t != exclude_token]
    return min(found, key=lambda a: (a.price_wei, a.token_id), default=None)


@dataclass(frozen=True)
class Bid:
    """A live bid on one token, in wei of ether: where it stands and who bids."""

    price_wei: int
    venue: str
    bidder: str | None


@dataclass(frozen=True)
class TokenBook:
    """What the market shows for one token now: its ask, its bids, the collection's floor."""

    ask: Ask | None
    bids: list[Bid]
    floor: Ask | None


def token_book(session: Session, chain_id: int, contract: str, token_id: int) -> TokenBook:
    """The token's live ask and bids (``live_orders``), and its collection's floor ask."""
    live = live_orders(session, chain_id, contract, token_id)
    ask = None
    if live.ask_wei is not None and live.ask_venue is not None:
        ask = Ask(token_id, live.ask_wei, live.ask_venue)
    bids = []
    if live.bid_wei is not None:
        bids.append(Bid(live.bid_wei, live.bid_venue or "on-chain bid", live.bidder))
    return TokenBook(ask, bids, floor_ask(session, chain_id, contract))


def collection_attributes(session: Session, chain_id: int, contract: str) -> dict[int, Any]:
    """Each token of the collection: its stored ``attributes`` as they are (None: unresolved)."""
    rows = session.execute(
        select(Token.token_id, Token.attributes).where(
            Token.chain_id == chain_id, Token.contract == contract
        )
    )
    return {int(tid): attrs for tid, attrs in rows}
