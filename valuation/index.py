"""A collection's daily price index: the trait-adjusted sales-count level at each day's close.

Each sale's log price less its token's trait premium (``valuation.level``'s ridge on the trait
indicators and rarity, fit once on every sale before ``as_of``) is the price of an average
token; the day's index is the median of the last ``n_sales`` such prices up to the day's last
sale. A market that moves tenfold in months is followed by sales, not by a window of days; a
rare token's sale moves the index no more than a floor token's. Wash-flagged sales
(``valuation.wash``) are left out, as the model leaves them out. Only days with sales have a
point: a day without one brings no new evidence.

The premia are fit with every sale before ``as_of``, so a past day's point may move as later
sales teach the premia more (the level a sale saw at its time is ``HedonicLevel.levels``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import numpy as np

from valuation.frame import SalesFrame
from valuation.history import to_days
from valuation.level import HedonicLevel, LevelParams, rolling_level
from valuation.rarity import Traits
from valuation.sales import SaleRecord
from valuation.tokens import TokenSpace
from valuation.wash import clean_sales

__all__ = ["DailyIndex", "IndexPoint", "daily_index"]


@dataclass(frozen=True)
class IndexPoint:
    day: date
    level_eth: float  # an average-trait token's price at the day's close
    sales: int  # the day's sales (wash-flagged ones left out)
    window_sales: int  # how many sales the level is the median of


@dataclass(frozen=True)
class DailyIndex:
    points: list[IndexPoint]
    sales_read: int  # priced sales before ``as_of``, before the wash filter
    trait_adjusted: bool  # False: too few sales to fit premia, the level is of raw prices
    excluded: dict[str, int] = field(default_factory=dict)  # wash-flagged sales per reason


def _day(t: float) -> date:
    return datetime.fromtimestamp(math.floor(t) * 86_400.0, tz=UTC).date()


def daily_index(
    sales: Sequence[SaleRecord],
    attributes: Mapping[int, Traits],
    *,
    as_of: datetime,
    days: int | None = None,
    params: LevelParams | None = None,
    min_price_eth: float = 1e-3,
) -> DailyIndex:
    """The index of the sales strictly before ``as_of``, one point per UTC day with sales, the
    last ``days`` days (ending with ``as_of``'s) only when given. ``attributes``: token id →
    traits, as ``valuation.traits.collection_traits`` reads a collection."""
    params = params or LevelParams()
    end = to_days(as_of)
    priced = [s for s in sales if s.price_eth > min_price_eth and to_days(s.time) < end]
    clean, counts = clean_sales(priced)
    frame = SalesFrame.build(clean, attributes, min_price=min_price_eth)
    if len(frame) == 0:
        return DailyIndex([], len(priced), False, dict(counts))

    adjusted = frame.log_prices
    trait_adjusted = False
    if attributes:
        space = TokenSpace(attributes)
        positions = np.array([space.index.get(int(t), -1) for t in frame.tokens], dtype=np.int64)
        features = np.c_[space.trait_features, space.scores, np.log(space.ranks)]
        premium = HedonicLevel(frame, features, positions).premia(end, params)
        if np.any(premium):  # all zeros: too few sales to fit them
            trait_adjusted = True
            adjusted = adjusted - np.where(positions >= 0, premium[np.maximum(positions, 0)], 0.0)

    day_numbers = np.floor(frame.times)
    closes = np.unique(day_numbers)
    if days is not None:
        closes = closes[closes > math.floor(end) - days]
    # the day's close: every sale up to its last one (times are sorted in the frame)
    ends = np.searchsorted(frame.times, closes + 1.0, side="left")
    starts = np.searchsorted(frame.times, closes, side="left")
    levels = rolling_level(adjusted, ends, params.n_sales, params.min_sales)
    points = [
        IndexPoint(
            day=_day(float(d)),
            level_eth=float(np.exp(lv)),
            sales=int(e - s),
            window_sales=int(min(params.n_sales, e)),
        )
        for d, lv, s, e in zip(closes, levels, starts, ends, strict=True)
        if np.isfinite(lv)
    ]
    return DailyIndex(points, len(priced), trait_adjusted, dict(counts))
