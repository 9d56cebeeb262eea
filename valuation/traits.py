"""Token traits from OpenSea-style metadata, keeping traits a token has several of.

``[{"trait_type": "accessory", "value": "earring"}, {"trait_type": "accessory", ...}]``: a plain
mapping keeps only the last accessory, and a punk's price lives in its accessories. A trait type
that any token of the collection carries more than once becomes one indicator per value
(``"accessory:earring": "earring"``), as ``punks.load_cpunks_attributes`` gives them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["collection_traits", "primary_trait"]


def _pairs(attrs: Any) -> list[tuple[str, str]]:
    if not isinstance(attrs, list):
        return []
    return [
        (str(a["trait_type"]), str(a["value"]))
        for a in attrs
        if isinstance(a, dict) and "trait_type" in a and a.get("value") is not None
    ]


def collection_traits(metadata: Mapping[int, Any]) -> dict[int, dict[str, str]]:
    """Token id → traits, from each token's ``attributes`` list."""
    pairs = {int(t): _pairs(a) for t, a in metadata.items()}
    multi: set[str] = set()
    for own in pairs.values():
        names = [n for n, _ in own]
        multi.update(n for n in names if names.count(n) > 1)
    return {t: {(f"{n}:{v}" if n in multi else n): v for n, v in own} for t, own in pairs.items()}


def primary_trait(
    attributes: Mapping[int, Mapping[str, Any]],
    sales: Iterable[tuple[int, float]],
    *,
    min_coverage: float = 0.9,
    max_values: int = 24,
    min_sales: int = 30,
    min_explained: float = 0.03,
) -> str | None:
    """The trait a collection's market is split by (a punk's ``type``, a Moonbird's ``Body``):
    the one whose groups explain most of the log prices of ``sales`` ((token id, log price),
    training sales only), by adjusted R², among the traits nearly every token has once, with
    2 to ``max_values`` values. None without such a trait, below ``min_sales`` sales, or when
    the best explains under ``min_explained`` of the variance (the best of several traits
    explains a little of pure noise by chance; a punk's type explains 11-33 %).

    Chosen from prices because metadata alone cannot say which trait sets a price (the fewest
    values would pick a Moonbird's beak)."""
    n_tokens = len(attributes)
    if n_tokens == 0:
        return None
    values: dict[str, set[str]] = {}
    counts: dict[str, int] = {}
    for own in attributes.values():
        for name, value in own.items():
            if value is None or ":" in name:  # indicators of a multi-valued trait type
                continue
            values.setdefault(name, set()).add(str(value))
            counts[name] = counts.get(name, 0) + 1
    candidates = [
        name
        for name, seen in values.items()
        if 2 <= len(seen) <= max_values and counts[name] >= min_coverage * n_tokens
    ]
    priced = [(attributes.get(int(t)) or {}, float(p)) for t, p in sales]
    priced = [(own, p) for own, p in priced if own]
    if not candidates or len(priced) < min_sales:
        return None
    prices = [p for _, p in priced]
    mean = sum(prices) / len(prices)
    total = sum((p - mean) ** 2 for p in prices)
    if total <= 0:
        return None

    def adjusted_r2(name: str) -> float:
        groups: dict[str, list[float]] = {}
        for own, p in priced:
            groups.setdefault(str(own.get(name)), []).append(p)
        within = sum(sum((p - sum(g) / len(g)) ** 2 for p in g) for g in groups.values())
        n, k = len(prices), len(groups)
        if n - k <= 0:
            return -math.inf
        return 1.0 - (within / (n - k)) / (total / (n - 1))

    best = max(sorted(candidates), key=adjusted_r2)
    return best if adjusted_r2(best) >= min_explained else None
