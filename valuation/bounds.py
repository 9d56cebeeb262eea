"""What the market shows now: the token's own ask bounds its price from above, an open bid on it
from below; the asks on its comparables and the collection's floor ask bound it too.

A listed token sells at or under its ask, so the estimate and the interval's top are capped at
the ask; a standing bid is a price the token can be sold at now, so the estimate and the
interval's bottom are raised to it. A bid above the ask (a crossed book: one of them is stale)
moves nothing, and the explanation says so. Whatever moved is named in ``explanation["orders"]``.

Before the token's own orders, ``apply_market`` reads the rest of the book:

- each comparable (the fit's ``comparables``, else the ``visual_neighbours``) that is listed
  carries its ask; its evidence is the lower of its last sale and its ask (an owner asking less
  than the last sale says the sale is no longer the price). The estimate and the interval move
  by the similarity-weighted mean of log(evidence / last sale): down only, and not at all when
  no comparable is listed under its last sale;
- the collection's floor ask (the cheapest listed token but this one) caps the estimate and the
  interval's top of a token whose estimate sits at the collection's level (no more than
  ``FLOOR_BAND`` above it): such a token is worth no more than the same kind of token listed
  now. A token the model prices well above the level (its traits) is not capped by the floor.

What each of them moved is named in ``explanation["market_asks"]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from valuation.model import Valuation

__all__ = ["FLOOR_BAND", "ListedAsk", "MarketAsks", "OpenOrders", "apply_market", "apply_orders"]

# an estimate at most this much above the collection's level (in log price) "sits at the level"
FLOOR_BAND = math.log(1.10)


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


@dataclass(frozen=True)
class ListedAsk:
    """A token's cheapest live ask, in ETH, and where it stands."""

    token_id: int
    ask_eth: float
    venue: str


@dataclass(frozen=True)
class MarketAsks:
    """The rest of the book: the collection's floor ask (the valued token's own left out) and
    the live asks of the tokens its evidence cites, by token id."""

    floor: ListedAsk | None = None
    asks: Mapping[int, ListedAsk] = field(default_factory=dict)


def _evidence_key(explanation: Mapping[str, Any]) -> str | None:
    for key in ("comparables", "visual_neighbours"):
        if explanation.get(key):
            return key
    return None


def _token_id(raw: Any) -> int | None:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


def _listed_evidence(
    items: list[dict[str, Any]], asks: Mapping[int, ListedAsk]
) -> tuple[list[dict[str, Any]], float, int]:
    """The evidence with each listed token's ask, the weighted mean log(evidence / last sale)
    over the entries with a last sale, and how many entries are listed."""
    out, logs, weights, listed = [], [], [], 0
    for item in items:
        entry = dict(item)
        tid = _token_id(entry.get("token_id"))
        ask = asks.get(tid) if tid is not None else None
        if ask is not None and _usable(ask.ask_eth) is not None:
            listed += 1
            entry["ask_eth"], entry["ask_venue"] = ask.ask_eth, ask.venue
        last = _usable(entry.get("last_sale_eth"))
        if last is not None:
            evidence = min(last, entry.get("ask_eth") or last)
            logs.append(math.log(evidence / last))
            weights.append(max(float(entry.get("similarity") or 0.0), 0.0) + 1e-3)
        out.append(entry)
    shift = sum(w * x for w, x in zip(weights, logs, strict=True)) / sum(weights) if logs else 0.0
    return out, shift, listed


def _level(explanation: Mapping[str, Any]) -> float | None:
    market = explanation.get("market") or {}
    for key in ("level_eth", "median_eth"):  # the fitted model's level, the thin one's median
        level = _usable(market.get(key))
        if level is not None:
            return level
    return None


def apply_market(v: Valuation, market: MarketAsks) -> Valuation:
    """``v`` moved by its comparables' asks and bounded by the collection's floor ask."""
    key = _evidence_key(v.explanation)
    floor = market.floor if market.floor and _usable(market.floor.ask_eth) else None
    if floor is None and (key is None or not market.asks):
        return v
    price, low, high = v.price_eth, v.low_eth, v.high_eth
    level = _level(v.explanation)
    note: dict[str, Any] = {
        "model_price_eth": price,
        "floor_ask_eth": floor.ask_eth if floor else None,
        "floor_token_id": str(floor.token_id) if floor else None,
        "floor_venue": floor.venue if floor else None,
        "level_eth": level,
        "comparables_listed": 0,
        "comparables_shift": 0.0,
        "moved": [],
    }
    moved: list[str] = note["moved"]
    explanation = dict(v.explanation)
    if key is not None:
        items, shift, listed = _listed_evidence(list(explanation[key]), market.asks)
        explanation[key] = items
        note["comparables_listed"], note["comparables_shift"] = listed, round(shift, 4)
        if shift < 0 and math.isfinite(price):
            factor = math.exp(shift)
            price, low, high = price * factor, low * factor, high * factor
            moved.append(
                f"lowered {100 * (1 - factor):.0f} % by comparables listed under their last sales"
            )
    known = math.isfinite(price) and price > 0 and level is not None
    at_level = known and level is not None and math.log(price / level) <= FLOOR_BAND
    note["at_collection_level"] = at_level if known else None
    if floor is not None and at_level:
        if price > floor.ask_eth:
            price = floor.ask_eth
            moved.append(f"capped at the collection's floor ask (token {floor.token_id})")
        high = min(high, floor.ask_eth)
        low, high = min(low, price), max(high, price)
    explanation["market_asks"] = note
    return replace(v, price_eth=price, low_eth=low, high_eth=high, explanation=explanation)
