"""The database reads behind the endpoints that ``store.queries`` does not already offer."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from store.models import Collection, Embedding, Listing, Media, Sale, Token, Valuation

# sale prices in these currencies are in wei of ETH; ERC-20 sales are left out of ETH statistics
ETH_CURRENCIES = ("ETH", "WETH")
STATS_WINDOW = dt.timedelta(days=30)


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


def image(session: Session, sha256: str) -> tuple[bytes, str] | None:
    row = session.execute(select(Media.content, Media.mime).where(Media.sha256 == sha256)).first()
    return None if row is None else (bytes(row.content), row.mime)


def database_now(session: Session) -> dt.datetime:
    """The database's clock (transaction start), which valuations are stamped with too."""
    return session.execute(select(func.now())).scalar_one()


def valuation_since(
    session: Session, chain_id: int, contract: str, token_id: int, since: dt.datetime
) -> Valuation | None:
    return session.scalars(
        select(Valuation)
        .where(
            Valuation.chain_id == chain_id,
            Valuation.contract == contract,
            Valuation.token_id == Decimal(token_id),
            Valuation.valued_at > since,
        )
        .order_by(Valuation.valued_at.desc(), Valuation.id.desc())
        .limit(1)
    ).first()


def embedding_of(session: Session, sha256: str, extractor: str | None) -> Embedding | None:
    """The image's vector from ``extractor``, or from any extractor (the preferred one first)."""
    query = select(Embedding).where(Embedding.image_sha256 == sha256)
    if extractor is not None:
        query = query.where(Embedding.extractor == extractor)
    ordered = query.order_by((Embedding.extractor == "effnet-lite0-v1").desc(), Embedding.extractor)
    return session.scalars(ordered.limit(1)).first()


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
    end = as_of or database_now(session)
    start = end - STATS_WINDOW
    name = session.scalar(
        select(Collection.name).where(
            Collection.chain_id == chain_id, Collection.address == contract
        )
    )
    tokens = session.scalar(
        select(func.count()).where(Token.chain_id == chain_id, Token.contract == contract)
    )
    sales = session.scalar(
        select(func.count()).where(Sale.chain_id == chain_id, Sale.contract == contract)
    )
    listings = session.scalar(
        select(func.count()).where(Listing.chain_id == chain_id, Listing.contract == contract)
    )
    window = session.execute(
        text(
            """
            SELECT count(*) AS n,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY price_wei) AS median,
                   percentile_cont(0.1) WITHIN GROUP (ORDER BY price_wei) AS floor
            FROM sales
            WHERE chain_id = :chain_id AND contract = :contract AND price_wei > 0
              AND currency = ANY(:currencies)
              AND block_time > :start AND block_time <= :end
            """
        ),
        {
            "chain_id": chain_id,
            "contract": contract,
            "currencies": list(ETH_CURRENCIES),
            "start": start,
            "end": end,
        },
    ).one()
    if name is None and not tokens and not sales and not listings:
        return None
    wei = 10**18
    return CollectionStats(
        name=name or None,
        token_count=int(tokens or 0),
        sales_count=int(sales or 0),
        window_start=start,
        window_end=end,
        window_sales=int(window.n),
        median_eth=None if window.median is None else float(window.median) / wei,
        floor_eth=None if window.floor is None else float(window.floor) / wei,
        listings_count=int(listings or 0),
    )
