"""Trait rarity by OpenRarity's information-content method.

Every trait type of a collection is a categorical distribution over its values. A token's
information content is the sum over ALL trait types of ``-log2(count(value) / N)``, where a token
that lacks a trait type carries that type's ``null`` value (so the absence of a common trait is
itself informative). Like OpenRarity, a meta trait ``meta_trait:trait_count`` (how many non-null
traits the token has) is added before scoring. The score is the information content divided by
the collection entropy ``-sum p log2 p`` over every (trait type, value) pair including the nulls,
which makes scores comparable across collections.

Ranks follow OpenRarity's ranker: tokens with more unique (1-of-1) traits first, then by score,
descending; equal keys share a rank (1, 2, 2, 4 …).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "NULL_VALUE",
    "TRAIT_COUNT",
    "RarityTable",
    "compute_rarity",
    "traits_from_flags",
]

TRAIT_COUNT = "meta_trait:trait_count"
NULL_VALUE = "null"

Traits = Mapping[str, str | None]


def _normalise(traits: Traits) -> dict[str, str]:
    """Lower-case and trim names and values; drop empty and "none" values (they are nulls)."""
    out: dict[str, str] = {}
    for name, value in traits.items():
        if value is None:
            continue
        v = str(value).strip().lower()
        if v and v != "none":
            out[name.strip().lower()] = v
    return out


def traits_from_flags(
    flags: Mapping[str, int | bool], exclusive_groups: Mapping[str, Iterable[str]] | None = None
) -> dict[str, str]:
    """Turn 0/1 trait flags into trait type → value.

    Flags listed in an exclusive group become one trait type named after the group (e.g. a punk's
    ``type`` ∈ {alien, ape, zombie, female, male}); every other set flag is its own trait type
    whose value is its name (a punk's accessories, which a token may have several of).
    """
    grouped: dict[str, str] = {}
    for group, members in (exclusive_groups or {}).items():
        for member in members:
            grouped[member] = group
    out: dict[str, str] = {}
    for name, on in flags.items():
        if not on:
            continue
        if name in grouped:
            out[grouped[name]] = name
        else:
            out[name] = name
    return out


@dataclass(frozen=True)
class RarityTable:
    """Scores and ranks of one collection, with the counts that explain them."""

    total: int
    entropy: float
    counts: dict[str, dict[str, int]]
    traits: dict[int, dict[str, str]]
    scores: dict[int, float]
    ranks: dict[int, int]

    def information(self, token_id: int) -> dict[str, float]:
        """Bits of information per trait type for one token (null values included)."""
        own = self.traits[token_id]
        return {
            name: -math.log2(values[own.get(name, NULL_VALUE)] / self.total)
            for name, values in self.counts.items()
        }

    def top_traits(self, token_id: int, n: int = 3) -> list[dict[str, object]]:
        """The token's ``n`` most informative non-null traits, rarest first."""
        own = self.traits[token_id]
        rows = [
            {
                "trait": name,
                "value": own[name],
                "count": self.counts[name][own[name]],
                "bits": round(bits, 4),
            }
            for name, bits in self.information(token_id).items()
            if name in own
        ]
        rows.sort(key=lambda r: (-float(r["bits"]), str(r["trait"])))  # type: ignore[arg-type]
        return rows[:n]


def compute_rarity(attributes: Mapping[int, Traits]) -> RarityTable:
    """Score and rank every token of a collection; ``attributes`` maps token id → traits."""
    if not attributes:
        raise ValueError("a rarity table needs at least one token")
    traits = {int(t): _normalise(a) for t, a in attributes.items()}
    for own in traits.values():
        own[TRAIT_COUNT] = str(len(own))
    total = len(traits)
    counts: dict[str, Counter[str]] = {}
    for own in traits.values():
        for name, value in own.items():
            counts.setdefault(name, Counter())[value] += 1
    for values in counts.values():
        present = sum(values.values())
        if present < total:
            values[NULL_VALUE] += total - present
    probabilities = [c / total for values in counts.values() for c in values.values()]
    entropy = -sum(p * math.log2(p) for p in probabilities)
    # a one-token collection has zero entropy: OpenRarity divides by 1 then
    norm = entropy if entropy > 0 else 1.0
    scores: dict[int, float] = {}
    unique: dict[int, int] = {}
    for token, own in traits.items():
        ic = 0.0
        for name, values in counts.items():
            ic -= math.log2(values[own.get(name, NULL_VALUE)] / total)
        scores[token] = ic / norm
        unique[token] = sum(1 for name, value in own.items() if counts[name][value] == 1)
    order = sorted(traits, key=lambda t: (unique[t], scores[t]), reverse=True)
    ranks: dict[int, int] = {}
    for i, token in enumerate(order):
        if i > 0:
            prev = order[i - 1]
            if unique[prev] == unique[token] and math.isclose(scores[prev], scores[token]):
                ranks[token] = ranks[prev]
                continue
        ranks[token] = i + 1
    return RarityTable(
        total=total,
        entropy=entropy,
        counts={name: dict(values) for name, values in counts.items()},
        traits=traits,
        scores=scores,
        ranks=ranks,
    )
