"""Sales that are not market prices: wash trades and outliers, each flagged with its reason.

A flagged sale stays stored and shown; it is left out of what the model learns from and of the
comparables it cites. The rules read only the sales they are given, so a model fit at a cutoff
flags its training sales from what was known then.

- ``self_trade``: the seller is the buyer.
- ``round_trip``: the token goes back to a wallet that sold it to the same counterparty within
  ``round_trip_days`` (A→B then B→A): both legs.
- ``churn``: the token sold ``churn_sales`` or more times within ``churn_days``: every sale of
  the burst.
- ``off_level_quiet``: the price is more than ``outlier_factor`` times off the median of the
  collection's previous ``level_sales`` sales, and the collection had no other sale within
  ``quiet_days`` either side: a print nobody else's trading confirms.
- ``private_fill``: a fill that paid no fee on a market named in ``fee_charging_markets``: a
  private sale between wallets that agreed its price. None is named by default: Blur charges no
  fee, and Seaport carries fee-less fills of aggregators (OpenSea Pro) beside OpenSea's own, so
  a missing fee alone is no sign of a wash there.

Published studies put wash trading at 2 % to 25 % of NFT volume, depending on the market.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from valuation.history import to_days
from valuation.sales import SaleRecord

__all__ = ["REASONS", "WashPolicy", "clean_sales", "flag_counts", "flag_sales"]

REASONS = ("self_trade", "round_trip", "churn", "off_level_quiet", "private_fill")


@dataclass(frozen=True)
class WashPolicy:
    round_trip_days: float = 30.0
    churn_days: float = 7.0
    churn_sales: int = 3
    outlier_factor: float = 5.0
    level_sales: int = 20
    quiet_days: float = 3.0
    fee_charging_markets: frozenset[str] = frozenset()
    outliers: bool = True  # off_level_quiet: needs the collection's sales, not one token's


def flag_sales(
    sales: Sequence[SaleRecord], policy: WashPolicy | None = None
) -> list[tuple[str, ...]]:
    """Each sale's reasons (empty: a market price), in the order of ``sales``."""
    policy = policy or WashPolicy()
    flags: list[set[str]] = [set() for _ in sales]
    order = sorted(range(len(sales)), key=lambda i: sales[i].time)
    times = [to_days(sales[i].time) for i in order]

    by_token: dict[int, list[int]] = defaultdict(list)  # positions in ``order``
    for pos, i in enumerate(order):
        s = sales[i]
        if s.seller.lower() == s.buyer.lower():
            flags[i].add("self_trade")
        if s.fees_eth == 0.0 and (s.marketplace or "") in policy.fee_charging_markets:
            flags[i].add("private_fill")
        by_token[s.token_id].append(pos)

    for positions in by_token.values():
        _round_trips(sales, order, times, positions, policy, flags)
        _churn(order, times, positions, policy, flags)
    if policy.outliers:
        _off_level_quiet(sales, order, times, policy, flags)
    return [tuple(r for r in REASONS if r in f) for f in flags]


def _round_trips(
    sales: Sequence[SaleRecord],
    order: list[int],
    times: list[float],
    positions: list[int],
    policy: WashPolicy,
    flags: list[set[str]],
) -> None:
    for a, pa in enumerate(positions):
        first = sales[order[pa]]
        for pb in positions[a + 1 :]:
            if times[pb] - times[pa] > policy.round_trip_days:
                break
            back = sales[order[pb]]
            if (back.seller.lower(), back.buyer.lower()) == (
                first.buyer.lower(),
                first.seller.lower(),
            ):
                flags[order[pa]].add("round_trip")
                flags[order[pb]].add("round_trip")


def _churn(
    order: list[int],
    times: list[float],
    positions: list[int],
    policy: WashPolicy,
    flags: list[set[str]],
) -> None:
    token_times = [times[p] for p in positions]
    for k in range(len(positions)):
        end = bisect_right(token_times, token_times[k] + policy.churn_days)
        if end - k >= policy.churn_sales:
            for q in positions[k:end]:
                flags[order[q]].add("churn")


def _off_level_quiet(
    sales: Sequence[SaleRecord],
    order: list[int],
    times: list[float],
    policy: WashPolicy,
    flags: list[set[str]],
) -> None:
    logs = np.log([max(sales[i].price_eth, 1e-12) for i in order])
    limit = math.log(policy.outlier_factor)
    for pos, i in enumerate(order):
        if pos < policy.level_sales:
            continue  # no level yet to be off
        level = float(np.median(logs[pos - policy.level_sales : pos]))
        if abs(logs[pos] - level) <= limit:
            continue
        lo = bisect_left(times, times[pos] - policy.quiet_days)
        hi = bisect_right(times, times[pos] + policy.quiet_days)
        if hi - lo <= 1:  # only itself in the window
            flags[i].add("off_level_quiet")


def clean_sales(
    sales: Sequence[SaleRecord], policy: WashPolicy | None = None
) -> tuple[list[SaleRecord], Counter[str]]:
    """The sales without a flag, and how many were left out for each reason."""
    flags = flag_sales(sales, policy)
    return [s for s, f in zip(sales, flags, strict=True) if not f], flag_counts(flags)


def flag_counts(flags: Sequence[tuple[str, ...]]) -> Counter[str]:
    """Flagged sales per reason (a sale with two reasons counts under both), plus "sales"."""
    counts: Counter[str] = Counter()
    for f in flags:
        if f:
            counts["sales"] += 1
            counts.update(f)
    return counts
