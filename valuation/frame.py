"""Sales in block order, with what each sale may see: the sales of EARLIER blocks only.

Sales that share a block (floor sweeps, bundles) are not "before" each other, whatever order
the file lists them in; a predictor of sale ``k`` may read ``[0, visible[k])`` and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from valuation.history import to_days
from valuation.rarity import Traits
from valuation.sales import SaleRecord

__all__ = ["SalesFrame", "token_groups"]


def token_groups(
    tokens: Sequence[int], attributes: Mapping[int, Traits], trait: str | None
) -> np.ndarray:
    """Each token's value of ``trait`` as a label, "" where it has none (or no trait is set)."""
    if trait is None:
        return np.full(len(tokens), "", dtype=str)
    return np.array(
        [str((attributes.get(int(t)) or {}).get(trait) or "") for t in tokens], dtype=str
    )


@dataclass(frozen=True)
class SalesFrame:
    records: list[SaleRecord]
    times: np.ndarray  # float days since the epoch
    keys: np.ndarray  # block number, or the time where the file has no blocks
    tokens: np.ndarray
    log_prices: np.ndarray
    visible: np.ndarray  # sales [0, visible[k]) are of blocks before sale k's
    types: np.ndarray  # the token's value of the group trait ("" where unknown or none)
    known: np.ndarray  # the token is in the collection's attributes

    @classmethod
    def build(
        cls,
        sales: Sequence[SaleRecord],
        attributes: Mapping[int, Traits],
        *,
        min_price: float = 1e-3,
        group_by: str | None = None,
    ) -> SalesFrame:
        kept = [s for s in sales if s.price_eth > min_price]
        by_block = all(s.block is not None for s in kept)
        times = np.array([to_days(s.time) for s in kept], dtype=float)
        keys = np.array([s.block for s in kept], dtype=float) if by_block else times.copy()
        order = np.lexsort((times, keys))  # block first; time only breaks nothing
        recs = [kept[i] for i in order]
        times, keys = times[order], keys[order]
        # a refit at time r reads the prefix whose running latest time is before r: never a
        # later sale, even where a file's block and time orders disagree
        times = np.maximum.accumulate(times) if len(times) else times
        types = token_groups([s.token_id for s in recs], attributes, group_by)
        return cls(
            records=recs,
            times=times,
            keys=keys,
            tokens=np.array([s.token_id for s in recs], dtype=np.int64),
            log_prices=np.log(np.array([s.price_eth for s in recs], dtype=float)),
            visible=np.searchsorted(keys, keys, side="left").astype(np.int64),
            types=types,
            known=np.array([s.token_id in attributes for s in recs], dtype=bool),
        )

    def grouped_by(self, attributes: Mapping[int, Traits], trait: str | None) -> SalesFrame:
        """The same sales grouped by another trait (``valuation.traits.primary_trait``)."""
        return replace(self, types=token_groups(self.tokens.tolist(), attributes, trait))

    def __len__(self) -> int:
        return len(self.records)

    def count_before(self, t: float) -> int:
        """How many sales (a prefix) happened strictly before time ``t``."""
        return int(np.searchsorted(self.times, t, side="left"))
