"""What a desk may lend against a valuation: a conservative collateral value and the guards that
say when the data cannot support a loan.

The collateral value is the 80 % interval's low end, cut by a haircut that grows as the token's
liquidity falls: a token that may take months to sell must be sold at a discount to recover a
defaulted loan. The guards read the valuation's own evidence (its explanation): how old its newest
comparable sale is, how far the estimate sits from the collection's market level, how many sales
the market saw in 30 days. A flagged valuation is shown, never hidden, but is not ``lendable``.

Flags:

- ``no_estimate``: the model gave no price (no sales, or no evidence for this token).
- ``thin``: fewer comparables, or fewer sales in the last 30 days, than the policy asks.
- ``stale``: the newest sale behind the estimate is older than ``stale_after_days``.
- ``off_market``: the estimate is more than ``max_level_deviation`` (in log price) from the
  market level: a grail, or a model reading one odd sale; a person should look.
- ``crossed_book``: the token's live bid is above its live ask (``valuation.bounds`` left the
  estimate alone): one of the two orders is stale, and the book cannot be read until it is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

__all__ = ["Collateral", "LendingPolicy", "collateral"]


@dataclass(frozen=True)
class LendingPolicy:
    base_haircut: float = 0.10  # always taken off the interval's low end
    illiquidity_haircut: float = 0.30  # more, times 1 - P(liquid)
    stale_after_days: float = 90.0
    min_comparables: int = 3
    min_sales_30d: int = 5
    max_level_deviation: float = math.log(3.0)


@dataclass(frozen=True)
class Collateral:
    value_eth: float | None
    haircut: float
    newest_evidence_age_days: float | None
    level_deviation: float | None  # log(estimate / market level)
    comparables: int
    sales_30d: int | None
    flags: tuple[str, ...]

    @property
    def lendable(self) -> bool:
        return not self.flags

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["flags"] = list(self.flags)
        d["lendable"] = self.lendable
        return d


def _times(items: Iterable[Mapping[str, Any]], key: str) -> list[datetime]:
    out = []
    for item in items:
        raw = item.get(key)
        if isinstance(raw, str):
            try:
                out.append(datetime.fromisoformat(raw))
            except ValueError:
                continue  # an unreadable time is no evidence of freshness
    return out


def _finite(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else None


def _crossed(orders: Any) -> bool:
    if not isinstance(orders, Mapping):
        return False
    ask, bid = _finite(orders.get("ask_eth")), _finite(orders.get("bid_eth"))
    return ask is not None and bid is not None and bid > ask


def collateral(
    *,
    price_eth: float | None,
    low_eth: float | None,
    p_liquid: float,
    valued_at: datetime,
    explanation: Mapping[str, Any],
    policy: LendingPolicy | None = None,
) -> Collateral:
    """The collateral value and guards of one stored valuation."""
    policy = policy or LendingPolicy()
    price, low = _finite(price_eth), _finite(low_eth)
    liquidity = min(1.0, max(0.0, p_liquid))
    haircut = policy.base_haircut + policy.illiquidity_haircut * (1.0 - liquidity)

    comparables = list(explanation.get("comparables") or [])
    neighbours = [n for n in explanation.get("visual_neighbours") or [] if n.get("last_sale_eth")]
    own = list(explanation.get("own_trades") or [])
    seen = (
        _times(comparables, "last_sale_time")
        + _times(neighbours, "last_sale_time")
        + _times(own, "time")
    )
    newest = max(seen, default=None)
    age = None
    if newest is not None and (newest.tzinfo is None) == (valued_at.tzinfo is None):
        age = max(0.0, (valued_at - newest).total_seconds() / 86_400)

    market = explanation.get("market") or {}
    level = _finite(market.get("level_eth"))
    deviation = math.log(price / level) if price and level and price > 0 and level > 0 else None
    sales_30d = market.get("sales_30d")
    sales_30d = int(sales_30d) if isinstance(sales_30d, int | float) else None
    evidence = max(len(comparables), len(neighbours))

    flags = []
    if price is None or low is None or low <= 0:
        flags.append("no_estimate")
    if evidence < policy.min_comparables or (
        sales_30d is not None and sales_30d < policy.min_sales_30d
    ):
        flags.append("thin")
    if age is None or age > policy.stale_after_days:
        flags.append("stale")
    if deviation is not None and abs(deviation) > policy.max_level_deviation:
        flags.append("off_market")
    if _crossed(explanation.get("orders")):
        flags.append("crossed_book")
    value = None if low is None or low <= 0 else low * (1.0 - haircut)
    return Collateral(
        value_eth=value,
        haircut=round(haircut, 4),
        newest_evidence_age_days=None if age is None else round(age, 2),
        level_deviation=None if deviation is None else round(deviation, 4),
        comparables=evidence,
        sales_30d=sales_30d,
        flags=tuple(flags),
    )
