"""The online stack's inputs valued for tokens at one time, and their combination.

One function for both callers: the walk-forward backtest values its sample of tokens at each
cutoff with it, and the served stack (``valuation.served``) values the token a desk asks for,
so the price the desk gets is the backtest's "model" at the same time and weights.

The hedonic-knn input is not computed here (it is a fitted model of its own, ``model.fit``):
callers add its column under ``KNN_N``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from valuation.level import HedonicLevel, LevelParams
from valuation.stack import fill_missing

__all__ = [
    "DAY_MEDIAN",
    "KNN_N",
    "LEVEL",
    "STACK_INPUTS",
    "TYPE_LEVEL",
    "TYPE_MEDIAN",
    "combine",
    "token_inputs",
]

LEVEL = "sales-count level, premia weekly"
KNN_N = "hedonic-knn, sales-count level"
TYPE_LEVEL = "same type's sales-count level"
TYPE_MEDIAN = "median, same type's last 20"
DAY_MEDIAN = "median, previous 1 day"
# the stack's inputs: the levels, the hedonic-knn model and two naive medians (the same type's
# last 20 reads the type's own market, the previous day's a one-seller sell-off's price)
STACK_INPUTS = (LEVEL, KNN_N, TYPE_LEVEL, TYPE_MEDIAN, DAY_MEDIAN)
TYPE_SALES = 20  # the same type's median reads its last this many sales
DAY_DAYS = 1.0


def token_inputs(
    hedonic: HedonicLevel,
    t: float,
    level_params: LevelParams,
    type_params: LevelParams,
    token_types: np.ndarray,
    rows: np.ndarray,
    *,
    premium: np.ndarray | None = None,
    type_premium: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Log price of each token ``rows`` (rows of ``hedonic.features``) at time ``t`` by every
    input but the hedonic-knn model, from the sales strictly before ``t``. ``premium`` and
    ``type_premium``: the levels' premia fit earlier (None: fit on the sales before ``t``)."""
    f = hedonic.frame
    m = f.count_before(t)
    types = token_types[rows]
    type_median = np.full(len(rows), np.nan)
    for g in np.unique(types):
        own = np.nonzero(f.types[:m] == g)[0][-TYPE_SALES:]
        if len(own):
            type_median[types == g] = float(np.median(f.log_prices[own]))
    day = f.log_prices[f.count_before(t - DAY_DAYS) : m]
    return {
        LEVEL: hedonic.value_tokens(t, level_params, premium=premium)[rows],
        TYPE_LEVEL: hedonic.value_tokens(
            t, type_params, f.types, token_types, premium=type_premium
        )[rows],
        TYPE_MEDIAN: type_median,
        DAY_MEDIAN: np.full(len(rows), float(np.median(day)) if len(day) else np.nan),
    }


def combine(
    columns: Mapping[str, np.ndarray], inputs: Sequence[str], weights: np.ndarray
) -> np.ndarray:
    """The stack's log price: the columns of ``inputs`` that ``columns`` holds times their
    weights (``weights`` in the order of ``inputs``), a missing value standing in as the
    first column's (``stack.fill_missing``)."""
    names = [x for x in inputs if x in columns]
    matrix = fill_missing(np.column_stack([columns[x] for x in names]))
    return np.asarray(matrix @ weights[[list(inputs).index(x) for x in names]], dtype=float)
