"""Routes over what the market shows: a collection's daily price index, a token's live book."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import OrderedDict
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from sqlalchemy.orm import Session, sessionmaker

from nftwatch.api import schemas
from nftwatch.api.errors import problems
from nftwatch.api.params import (
    CollectionRef,
    TokenRef,
    collection_ref,
    parse_instant,
    token_ref,
)
from store import market, ops, tokens
from valuation.index import daily_index
from valuation.level import LevelParams
from valuation.sales import priced_single_sales
from valuation.traits import collection_traits

WEI = Decimal(10**18)
MAX_INDEX_DAYS = 3650
INDEX_TTL_S = 60.0  # a default-`as_of` index is recomputed at least this often
INDEX_CACHE_SIZE = 64


class _IndexCache:
    """Index bodies per (collection, its sales' stamp, as_of, days): a desk looking up token
    after token of one collection reads its sales and fits its premia once; a new or rolled
    back sale changes the stamp, traits resolved since show within ``INDEX_TTL_S``."""

    def __init__(self) -> None:
        self._items: OrderedDict[tuple[Any, ...], tuple[float, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> dict[str, Any] | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is None or time.monotonic() - hit[0] > INDEX_TTL_S:
                return None
            self._items.move_to_end(key)
            return hit[1]

    def put(self, key: tuple[Any, ...], body: dict[str, Any]) -> None:
        with self._lock:
            self._items[key] = (time.monotonic(), body)
            self._items.move_to_end(key)
            while len(self._items) > INDEX_CACHE_SIZE:
                self._items.popitem(last=False)


def _ask(a: market.Ask | None) -> dict[str, Any] | None:
    if a is None:
        return None
    return {
        "token_id": str(a.token_id),
        "price_wei": str(a.price_wei),
        "price_eth": float(Decimal(a.price_wei) / WEI),
        "venue": a.venue,
    }


def router(factory: sessionmaker[Session]) -> APIRouter:
    """The routes, on sessions from ``factory``; mounted under ``/v1`` with its key check."""
    r = APIRouter()
    cache = _IndexCache()

    @r.get(
        "/collections/{chain_id}/{contract}/index",
        summary="The collection's daily price index: its trait-adjusted sales-count level at "
        "each day's close, with the sales behind it",
        response_model=schemas.IndexOut,
        responses=problems(404),
    )
    def get_index(
        ref: Annotated[CollectionRef, Depends(collection_ref)],
        days: Annotated[
            int,
            Query(ge=1, le=MAX_INDEX_DAYS, description="Days of points, ending with as_of's day."),
        ] = 365,
        as_of: Annotated[
            dt.datetime | None,
            Query(
                description="End of the index (1970-01-01..9999-01-01, naive = UTC); default "
                "now, or just after the latest sale where the chain's clock runs ahead."
            ),
        ] = None,
    ) -> dict[str, Any]:
        end = parse_instant("as_of", as_of)
        with factory() as session, session.begin():  # one snapshot for the sales and traits
            stamp = market.sales_stamp(session, ref.chain_id, ref.contract)
            key = (ref.chain_id, ref.contract, stamp, end, days)
            if (cached := cache.get(key)) is not None:
                return cached
            sales = priced_single_sales(
                market.collection_sales(session, ref.chain_id, ref.contract)
            )
            attributes = market.collection_attributes(session, ref.chain_id, ref.contract)
            if end is None:
                end = ops.database_now(session)
                latest = max((s.time for s in sales), default=end)
                end = max(end, latest + dt.timedelta(microseconds=1))
        if not sales and not attributes:
            raise HTTPException(404, f"nothing is known about {ref.chain_id}/{ref.contract}")
        params = LevelParams()
        traits = collection_traits({t: a for t, a in attributes.items() if a is not None})
        index = daily_index(sales, traits, as_of=end, days=days, params=params)
        body = {
            "chain_id": ref.chain_id,
            "contract": ref.contract,
            "as_of": end.isoformat(),
            "days": days,
            "n_sales": params.n_sales,
            "trait_adjusted": index.trait_adjusted,
            "sales_read": index.sales_read,
            "wash_excluded": index.excluded,
            "points": [
                {
                    "day": p.day.isoformat(),
                    "level_eth": p.level_eth,
                    "sales": p.sales,
                    "window_sales": p.window_sales,
                }
                for p in index.points
            ],
        }
        cache.put(key, body)
        return body

    @r.get(
        "/tokens/{chain_id}/{contract}/{token_id}/orders",
        summary="The token's live ask and bids, and its collection's floor ask",
        response_model=schemas.OrdersOut,
        responses=problems(404),
    )
    def get_orders(ref: Annotated[TokenRef, Depends(token_ref)]) -> dict[str, Any]:
        with factory() as session, session.begin():
            if not tokens.token_exists(session, ref.chain_id, ref.contract, ref.token_id):
                raise HTTPException(404, f"token {ref.path} is not known")
            book = market.token_book(session, ref.chain_id, ref.contract, ref.token_id)
        return {
            "chain_id": ref.chain_id,
            "contract": ref.contract,
            "token_id": str(ref.token_id),
            "ask": _ask(book.ask),
            "bids": [
                {
                    "price_wei": str(b.price_wei),
                    "price_eth": float(Decimal(b.price_wei) / WEI),
                    "venue": b.venue,
                    "bidder": b.bidder,
                }
                for b in sorted(book.bids, key=lambda b: -b.price_wei)
            ],
            "floor_ask": _ask(book.floor),
        }

    return r
