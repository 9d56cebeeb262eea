"""The naive answers a valuation must beat, each reading only the sales of earlier blocks.

Every function returns log price predictions for the frame's sales ``[lo, hi)`` (NaN where the
predictor has nothing to say: no sale in the previous day, a token never sold before).
"""

from __future__ import annotations

import numpy as np

from valuation.frame import SalesFrame

__all__ = ["median_of_days", "median_of_last", "median_of_type", "repeat_sales"]


def median_of_days(frame: SalesFrame, lo: int, hi: int, days: float) -> np.ndarray:
    """Median log price of the sales in the ``days`` before each sale (earlier blocks only)."""
    out = np.full(hi - lo, np.nan)
    for k in range(lo, hi):
        end = int(frame.visible[k])
        start = int(np.searchsorted(frame.times[:end], frame.times[k] - days, side="left"))
        if end > start:
            out[k - lo] = float(np.median(frame.log_prices[start:end]))
    return out


def median_of_last(frame: SalesFrame, lo: int, hi: int, n: int) -> np.ndarray:
    """Median log price of the last ``n`` sales of earlier blocks."""
    out = np.full(hi - lo, np.nan)
    for k in range(lo, hi):
        end = int(frame.visible[k])
        if end:
            out[k - lo] = float(np.median(frame.log_prices[max(0, end - n) : end]))
    return out


def median_of_type(frame: SalesFrame, lo: int, hi: int, n: int) -> np.ndarray:
    """Median log price of the last ``n`` sales of the same type (``frame.types``: the
    collection's group trait); NaN where the sale's token has no group."""
    out = np.full(hi - lo, np.nan)
    by_type: dict[str, np.ndarray] = {
        t: np.nonzero(frame.types == t)[0] for t in np.unique(frame.types[lo:hi]) if t
    }
    for k in range(lo, hi):
        idx = by_type.get(str(frame.types[k]))
        if idx is None:
            continue
        m = int(np.searchsorted(idx, frame.visible[k], side="left"))
        if m:
            out[k - lo] = float(np.median(frame.log_prices[idx[max(0, m - n) : m]]))
    return out


def repeat_sales(frame: SalesFrame, lo: int, hi: int, index: np.ndarray) -> np.ndarray:
    """The token's last sale (of an earlier block) moved by the market index since then:
    ``log p_last + index[k] - index[last]``, where ``index[j]`` is the level sale ``j`` saw."""
    out = np.full(hi - lo, np.nan)
    last: dict[int, int] = {}
    cursor = 0
    for k in range(lo, hi):
        # admit every sale of an earlier block as the token's latest sale
        while cursor < frame.visible[k]:
            last[int(frame.tokens[cursor])] = cursor
            cursor += 1
        j = last.get(int(frame.tokens[k]))
        if j is not None and np.isfinite(index[j]) and np.isfinite(index[k]):
            out[k - lo] = float(frame.log_prices[j] + index[k] - index[j])
    return out
