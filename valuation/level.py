"""A market level that follows a fast market: counted in sales, not in days.

``level(k)`` is the median of the last ``n_sales`` trait-adjusted log prices of the blocks before
sale ``k``; a token's price is ``level + premium(token)``. The trait premia (ridge on the trait
indicators and rarity) are refit every ``refit_days`` on the sales before the refit, the level
and the premia estimated in turn (a small hedonic index). A window of days lags a market that
moves tenfold in months; the last N sales do not, however thin or thick the market is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from valuation.frame import SalesFrame
from valuation.linear import fit_ridge

__all__ = ["HedonicLevel", "LevelParams", "rolling_level"]

_FEW_ENDS = 8  # up to this many ends, rolling_level takes their windows' medians one by one


@dataclass(frozen=True)
class LevelParams:
    n_sales: int = 20
    ridge_alpha: float = 10.0
    refit_days: float = 7.0
    half_life_days: float = 365.0
    hedonic_rounds: int = 2
    min_sales: int = 5  # fewer earlier sales than this: no level

    @property
    def label(self) -> str:
        return f"N={self.n_sales} alpha={self.ridge_alpha:g}"


def rolling_level(adjusted: np.ndarray, visible: np.ndarray, n: int, min_sales: int) -> np.ndarray:
    """``median(adjusted[max(0, v - n):v])`` for each ``v`` in ``visible``; NaN below
    ``min_sales``."""
    ends = np.asarray(visible, dtype=np.int64)
    out = np.full(len(ends), np.nan)
    if len(adjusted) == 0:
        return out
    if len(ends) <= _FEW_ENDS:  # a valuation's one end: its median alone, not every window's
        for j, e in enumerate(ends):
            if e >= max(min_sales, 1):
                out[j] = float(np.median(adjusted[max(0, e - n) : e]))
        return out
    full = np.full(len(adjusted) + 1, np.nan)  # full[e]: median of the n values before e
    if len(adjusted) >= n:
        full[n:] = np.median(sliding_window_view(adjusted, n), axis=1)
    for e in range(min(n, len(adjusted) + 1)):
        if e:
            full[e] = float(np.median(adjusted[:e]))
    ok = ends >= max(min_sales, 1)
    out[ok] = full[ends[ok]]
    return out


class HedonicLevel:
    """The sales-count level and the trait premia over a frame of sales."""

    def __init__(self, frame: SalesFrame, features: np.ndarray, positions: np.ndarray) -> None:
        self.frame = frame
        self.features = features  # one row per token of the collection
        self.positions = positions  # each sale's row in ``features``, -1 when unknown
        # premia are only ever read for tokens that sold: compute them for those alone
        self._sold = np.unique(positions[positions >= 0])

    def _premium_of_sales(self, premium: np.ndarray) -> np.ndarray:
        pos = self.positions
        return np.where(pos >= 0, premium[np.maximum(pos, 0)], 0.0)

    def levels(
        self, premium: np.ndarray, params: LevelParams, upto: int | None = None
    ) -> np.ndarray:
        """The level each sale ``[0, upto)`` saw, under the given premia."""
        f = self.frame
        m = len(f) if upto is None else upto
        adjusted = f.log_prices - self._premium_of_sales(premium)
        return rolling_level(adjusted, f.visible[:m], params.n_sales, params.min_sales)

    def premia(
        self,
        t: float,
        params: LevelParams,
        start: np.ndarray | None = None,
        *,
        every_token: bool = False,
    ) -> np.ndarray:
        """Trait premia fit on the sales strictly before time ``t``; from ``start`` (last
        week's premia) one round of the level/premia alternation is enough. Premia are
        computed for the tokens that sold (``every_token``: for every row of ``features``)."""
        f = self.frame
        m = f.count_before(t)
        premium = np.zeros(len(self.features)) if start is None else start
        rounds = params.hedonic_rounds if start is None else 1
        for _ in range(rounds):
            lev = self.levels(premium, params, m)
            keep = np.nonzero(np.isfinite(lev) & (self.positions[:m] >= 0))[0]
            if len(keep) < 30:
                return np.zeros(len(self.features))
            rel = f.log_prices[keep] - lev[keep]
            w = 0.5 ** ((t - f.times[keep]) / params.half_life_days)
            model = fit_ridge(self.features[self.positions[keep]], rel, params.ridge_alpha, w)
            premium = np.zeros(len(self.features))
            rows = np.arange(len(self.features)) if every_token else self._sold
            premium[rows] = model.decision(self.features[rows])
            premium -= float(np.average(premium[self.positions[keep]], weights=w))
        return premium

    def type_levels(
        self, premium: np.ndarray, params: LevelParams, lo: int, hi: int, groups: np.ndarray
    ) -> np.ndarray:
        """For each sale ``[lo, hi)``: the median of the last ``n_sales`` adjusted log prices of
        earlier blocks in the sale's own group (the punk's type), NaN below ``min_sales``."""
        f = self.frame
        adjusted = f.log_prices - self._premium_of_sales(premium)
        out = np.full(hi - lo, np.nan)
        for g in np.unique(groups[lo:hi]):
            members = np.nonzero(groups == g)[0]
            here = np.nonzero(groups[lo:hi] == g)[0] + lo
            seen = np.searchsorted(members, f.visible[here], side="left")  # group sales seen
            lev = rolling_level(adjusted[members], seen, params.n_sales, params.min_sales)
            out[here - lo] = lev
        return out

    def value_tokens(
        self,
        t: float,
        params: LevelParams,
        groups: np.ndarray | None = None,
        token_groups: np.ndarray | None = None,
        premium: np.ndarray | None = None,
    ) -> np.ndarray:
        """Every token's log price at time ``t`` from the sales strictly before it: the level
        (that of the token's group, with ``groups`` per sale and ``token_groups`` per token)
        plus the token's premium; NaN where the level is unknown. ``premium``: premia fit
        earlier (``premia(..., every_token=True)``), kept while the level follows new sales;
        None fits them on the sales before ``t``."""
        f = self.frame
        m = f.count_before(t)
        if premium is None:
            premium = self.premia(t, params, every_token=True)
        adjusted = f.log_prices[:m] - self._premium_of_sales(premium)[:m]
        if groups is None or token_groups is None:
            return (
                rolling_level(adjusted, np.array([m]), params.n_sales, params.min_sales)[0]
                + premium
            )
        out = np.full(len(self.features), np.nan)
        for g in np.unique(token_groups):
            own = adjusted[groups[:m] == g]
            lev = rolling_level(own, np.array([len(own)]), params.n_sales, params.min_sales)[0]
            out[token_groups == g] = lev + premium[token_groups == g]
        return out

    def predict(
        self, lo: int, hi: int, params: LevelParams, groups: np.ndarray | None = None
    ) -> np.ndarray:
        """Log price predictions for sales ``[lo, hi)``: premia refit every ``refit_days`` from
        the first of them on, the level from every sale of an earlier block (inside the range
        too). With ``groups`` (one label per sale, e.g. the punk's type), the level is that of
        the sale's own group: a type whose market moves apart from the rest keeps its own."""
        f = self.frame
        out = np.full(hi - lo, np.nan)
        k = lo
        premium: np.ndarray | None = None
        while k < hi:
            start = float(f.times[k])
            stop = min(hi, max(k + 1, f.count_before(start + params.refit_days)))
            premium = self.premia(start, params, premium)
            if groups is None:
                lev = self.levels(premium, params, stop)[k:stop]
            else:
                lev = self.type_levels(premium, params, k, stop, groups)
            out[k - lo : stop - lo] = lev + self._premium_of_sales(premium)[k:stop]
            k = stop
        return out
