"""Sales as sorted arrays, answering "what was known strictly before time t" quickly.

Times are float days since the Unix epoch; every query takes only sales with ``time < t``, which
is what keeps valuations free of look-ahead.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from valuation.sales import SaleRecord

__all__ = ["DAY_SECONDS", "History", "from_days", "to_days"]

DAY_SECONDS = 86400.0


def to_days(t: datetime) -> float:
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.timestamp() / DAY_SECONDS


def from_days(d: float) -> datetime:
    return datetime.fromtimestamp(d * DAY_SECONDS, tz=UTC)


@dataclass(frozen=True)
class MarketSnapshot:
    """The collection's market just before a time, in ETH and in log ETH."""

    median_7d: float
    median_30d: float
    floor_proxy: float
    sales_30d: int
    level_log: float


class History:
    """Priced sales (price > ``min_price`` ETH) sorted by time, with a per-token index."""

    def __init__(self, sales: Sequence[SaleRecord], *, min_price: float = 1e-3) -> None:
        kept = sorted((s for s in sales if s.price_eth > min_price), key=lambda s: s.time)
        self.records: list[SaleRecord] = kept
        self.times = np.array([to_days(s.time) for s in kept], dtype=float)
        self.tokens = np.array([s.token_id for s in kept], dtype=np.int64)
        self.log_prices = np.log(np.array([s.price_eth for s in kept], dtype=float))
        self.by_token: dict[int, list[int]] = {}
        for i, s in enumerate(kept):
            self.by_token.setdefault(s.token_id, []).append(i)
        self._token_times = {
            tok: [float(self.times[i]) for i in idx] for tok, idx in self.by_token.items()
        }

    def __len__(self) -> int:
        return len(self.records)

    def count_before(self, t: float) -> int:
        """How many sales happened strictly before ``t``; they are ``[0, count)``."""
        return int(np.searchsorted(self.times, t, side="left"))

    def window(self, t: float, days: float) -> tuple[int, int]:
        """Index range of sales in ``[t - days, t)``."""
        hi = self.count_before(t)
        lo = int(np.searchsorted(self.times, t - days, side="left"))
        return lo, hi

    def token_sales_before(self, token: int, t: float) -> list[int]:
        """Indices of the token's sales strictly before ``t``, oldest first."""
        idx = self.by_token.get(token)
        if not idx:
            return []
        return idx[: bisect_left(self._token_times[token], t)]

    def last_sale_before(self, token: int, t: float) -> int | None:
        idx = self.by_token.get(token)
        if not idx:
            return None
        k = bisect_left(self._token_times[token], t)
        return idx[k - 1] if k > 0 else None

    def trades_in(self, token: int, start: float, end: float) -> int:
        """How many of the token's sales fall in ``[start, end)``."""
        times = self._token_times.get(token)
        if not times:
            return 0
        return bisect_left(times, end) - bisect_left(times, start)
