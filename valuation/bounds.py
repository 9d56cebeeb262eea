"""What the market shows now: the token's own ask bounds its price from above, an open bid on it
from below.

A listed token sells at or under its ask, so the estimate and the interval's top are capped at
the ask; a standing bid is a price the token can be sold at now, so the estimate and the
interval's bottom are raised to it. A bid above the ask (a crossed book: one of them is stale)
moves nothing, and the explanation says so. Whatever moved is named in ``explanation["orders"]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from valuation.model import Valuation

__all__ = ["OpenOrders", "apply_orders"]


@dataclass(frozen=True)
class OpenOrders:
    """The token's best live ask and bid, in ETH, and where each stands."""

    ask_eth: float | None = None
    ask_venue: str | None = None
    bid_eth: float | None = None
    bid_venue: str | None = None

    @property
    def empty(self) -> bool:
        return self.ask_eth is None and self.bid_eth is None


def _usable(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) and x > 0 else None


def apply_orders(v: Valuation, orders: OpenOrders) -> Valuation:
    """``v`` bounded by the token's ask and bid; unchanged (but explained) when they cross."""
    ask, bid = _usable(orders.ask_eth), _usable(orders.bid_eth)
    if ask is None and bid is None:
        return v
    note: dict[str, object] = {
        "ask_eth": ask,
        "ask_venue": orders.ask_venue if ask is not None else None,
        "bid_eth": bid,
        "bid_venue": orders.bid_venue if bid is not None else None,
        "model_price_eth": v.price_eth,
        "moved": [],
    }
    moved: list[str] = note["moved"]  # type: ignore[assignment]
    price, low, high = v.price_eth, v.low_eth, v.high_eth
    if ask is not None and bid is not None and bid > ask:
        moved.append("none: the bid is above the ask (one of them is stale)")
    elif math.isfinite(price):
        if ask is not None and price > ask:
            price = ask
            moved.append("capped at the ask")
        if bid is not None and price < bid:
            price = bid
            moved.append("raised to the bid")
        if ask is not None:
            high = min(high, ask)
        if bid is not None:
            low = max(low, bid)
        low, high = min(low, price), max(high, price)
    else:  # no model price: the live orders are the only evidence
        price = ask if ask is not None else bid  # type: ignore[assignment]
        low = bid if bid is not None else price * 0.8
        high = ask if ask is not None else price * 1.25
        moved.append("from the orders alone: the model gave no price")
    return replace(
        v,
        price_eth=price,
        low_eth=low,
        high_eth=high,
        explanation={**v.explanation, "orders": note},
    )
