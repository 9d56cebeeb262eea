"""Valuation of a token in a thin market: too few sales to fit the collection's model.

The estimate is the similarity-weighted median of the visually nearest tokens' last sales,
shrunk towards the collection's median sale moved by each of the token's traits (the median
sale of the tokens sharing it, its effect weighted by the sales behind it: collection → trait →
token), so that tokens without comparables do not all get the collection's one number; the
interval is the spread of those prices, widened when evidence is scarce; the confidence says how
scarce.
P(liquid) is the collection's observed share of tokens with more than two trades, moved towards
the token's own history."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from valuation.model import Valuation
from valuation.rarity import Traits
from valuation.sales import SaleRecord

MODEL_NAME = "thin-market-knn-v1"
MIN_MODEL_SALES = 10  # below this the fitted model refuses; above, prefer it
# a trait's effect on the collection's level counts half once this many sales back it
TRAIT_PRIOR_SALES = 3


@dataclass(frozen=True)
class Neighbour:
    token_id: int
    similarity: float  # cosine, in [-1, 1]
    last_sale_eth: float | None


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, cum[-1] / 2.0)])


def _trait_evidence(
    token_id: int, known: Sequence[SaleRecord], traits: Mapping[int, Traits]
) -> list[tuple[float, int]]:
    """For each trait of the token, the median log price of the sales of other tokens that
    share it, and how many sales that is; traits every sold token shares tell nothing."""
    own = traits.get(token_id) or {}
    out = []
    sold = {s.token_id for s in known}
    for name, value in own.items():
        if value is None:
            continue
        logs = [
            math.log(s.price_eth)
            for s in known
            if s.token_id != token_id and (traits.get(s.token_id) or {}).get(name) == value
        ]
        carriers = {t for t in sold if (traits.get(t) or {}).get(name) == value}
        if logs and len(carriers) < len(sold):
            out.append((float(np.median(logs)), len(logs)))
    return out


def value_thin_market(
    token_id: int,
    at: datetime,
    sales: Sequence[SaleRecord],
    neighbours: Sequence[Neighbour],
    traits: Mapping[int, Traits] | None = None,
) -> Valuation:
    """Value ``token_id`` at ``at`` from sales strictly before ``at``, visual neighbours and,
    given ``traits`` (token id → traits), the sales of tokens that share each of its traits."""
    known = [s for s in sales if s.time < at and s.price_eth > 0]
    prices = np.array([s.price_eth for s in known], dtype=np.float64)
    evidence = [
        (n.last_sale_eth, max(n.similarity, 0.0))
        for n in neighbours
        if n.last_sale_eth and n.last_sale_eth > 0
    ]
    own = [s for s in known if s.token_id == token_id]
    trades = Counter(s.token_id for s in known)

    if len(prices) == 0 and not evidence:
        estimate = low = high = math.nan
        confidence = 0.0
    else:
        logs: list[float] = [math.log(p) for p, _ in evidence]
        weights: list[float] = [w + 1e-3 for _, w in evidence]
        if len(prices):  # the collection's level moved by the token's traits: one more,
            # weaker, piece of evidence (collection → trait, each trait's effect shrunk)
            level = float(np.median(np.log(prices)))
            shared = _trait_evidence(token_id, known, traits) if traits else []
            logs.append(level + sum((m - level) * n / (n + TRAIT_PRIOR_SALES) for m, n in shared))
            weights.append(0.5)
        if own:
            logs.append(math.log(own[-1].price_eth))
            weights.append(1.0)
        lv = np.array(logs)
        w = np.array(weights)
        centre = _weighted_median(lv, w)
        spread = float(np.sqrt(np.average((lv - centre) ** 2, weights=w))) if len(lv) > 1 else 0.0
        n_evidence = len(lv)
        # 80 % band from the spread, widened by a small-sample factor
        half = 1.2816 * max(spread, 0.15) * (1.0 + 2.0 / n_evidence)
        estimate, low, high = math.exp(centre), math.exp(centre - half), math.exp(centre + half)
        confidence = float(min(0.5, n_evidence / 20.0) * math.exp(-spread))

    sold_tokens = len(trades)
    liquid_share = (sum(1 for c in trades.values() if c > 2) + 0.5) / (sold_tokens + 1.0)
    own_rate = min(1.0, len(own) / 3.0)
    p_liquid = float(0.7 * liquid_share + 0.3 * own_rate)

    return Valuation(
        token_id=token_id,
        at=at,
        price_eth=estimate,
        low_eth=low,
        high_eth=high,
        p_liquid=p_liquid,
        confidence=confidence,
        model_version=MODEL_NAME,
        explanation={
            "method": "thin market: visual neighbours' sales around the collection median",
            "collection_sales": len(known),
            "market": {"median_eth": float(np.median(prices)) if len(prices) else None},
            "own_trades": [{"time": s.time.isoformat(), "price_eth": s.price_eth} for s in own],
        },
    )
