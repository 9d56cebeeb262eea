"""The valuation model: a log-price model and a liquidity model, fit on sales before a cutoff.

Price. ``log(price) = market level(t) + f(token, t)``:

- the market level is the median of the last ``level_sales`` premium-adjusted log prices before
  ``t`` (or, with ``level_sales=None``, those of a window of days holding at least
  ``level_min_sales`` sales), where a token's premium comes from its traits; the level and the
  premia are estimated in turn (a small hedonic index);
- ``f`` is a ridge regression of ``log(price) - level`` on trait indicators, the rarity score,
  the comparables' recent sales relative to the level at their time (k nearest tokens by image
  embedding or trait Jaccard), and the token's own last sale relative to the level then;
- the 80 % interval adds empirical residual quantiles measured on a time holdout (the last part
  of the training sales, predicted by a model fit on the part before it).

Liquidity. ``P(more than two trades within the horizon)``: a Poisson regression of each token's
trade count in the horizon on features known at ``t`` (past trades, recent trades, recency,
rarity, type, value premium, market activity), trained on snapshots of every token at anchor
times whose horizon ends before the cutoff (recent snapshots weigh more), and its Poisson tail
P(N > 2) Platt-calibrated by logistic regression on the observed "liquid" labels.

Every feature of a valuation at ``t`` reads only sales strictly before ``t``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np

from valuation.history import History, from_days, to_days
from valuation.linear import LinearModel, fit_logistic, fit_poisson, fit_ridge, sigmoid
from valuation.rarity import Traits
from valuation.sales import SaleRecord
from valuation.tokens import TokenSpace
from valuation.traits import primary_trait
from valuation.wash import clean_sales

__all__ = ["FittedModel", "ModelParams", "Valuation", "fit", "interval_confidence"]

MODEL_NAME = "hedonic-knn"  # any collection with attributes gets its own fit


@dataclass(frozen=True)
class ModelParams:
    horizon_days: float = 180.0
    liquid_trades: int = 2  # liquid = MORE than this many trades within the horizon
    level_window_days: float = 30.0
    level_min_sales: int = 20
    # the level as the median of the last this many adjusted sales, however many days they
    # span (None: the window of days above): a window of days lags a fast market. The
    # walk-forward backtest chose it: pooled MdAPE 18.3 % against 18.8 % for the 30-day
    # window, ahead at 5 of 9 cutoffs and tied at 1, and well ahead from 2020-03 on
    level_sales: int | None = 20
    floor_quantile: float = 0.10
    k_comparables: int = 10
    comp_half_life_days: float = 180.0
    own_half_life_days: float = 365.0
    train_half_life_days: float = 365.0
    ridge_alphas: tuple[float, ...] = (1.0, 10.0, 100.0, 1000.0)
    logistic_alpha: float = 1.0
    holdout_fraction: float = 0.2
    interval: float = 0.8
    anchor_step_days: float = 30.0
    hedonic_rounds: int = 2
    huber_delta: float | None = 0.2
    # a snapshot's weight halves per horizon of age: "liquid" is rare (a few tokens a snapshot),
    # and at 45 days the fit saw little but the last two or three snapshots (backtest at
    # 2020-01-01: ROC-AUC 0.57 at 45 days, 0.70 at 180, 0.71 at 365; no earlier split has
    # enough liquid tokens to choose on, so this one was chosen on that split)
    liquidity_half_life_days: float = 180.0
    # sales below this are gifts or wash transfers in a sale's clothing (1 wei, 0.000001 ETH)
    min_price_eth: float = 1e-3
    # leave the sales valuation.wash flags out of the fit and the comparables
    exclude_wash: bool = True


@dataclass(frozen=True)
class Valuation:
    token_id: int
    at: datetime
    price_eth: float
    low_eth: float
    high_eth: float
    p_liquid: float
    confidence: float
    model_version: str
    explanation: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["at"] = self.at.isoformat()
        return d


def interval_confidence(log_low: float, log_high: float, sales_30d: int, min_sales: int) -> float:
    """0..1: a wide interval (its log bounds about the estimate) and a thin market (fewer
    than ``min_sales`` sales in 30 days) both lower the confidence."""
    thin = min(1.0, sales_30d / max(1, min_sales))
    return float(np.exp(-(log_high - log_low) / 2.0) * (0.5 + 0.5 * thin))


def _weighted_median(values: np.ndarray) -> float:
    return float(np.median(values)) if len(values) else float("nan")


class _PriceFeatures:
    """Builds the price model's feature rows from a history and the fitted premia."""

    names_dynamic = (
        "rarity_score",
        "log_rank",
        "comp_rel",
        "comp_has",
        "comp_sim",
        "own_rel",
        "own_has",
        "own_rel_decayed",
        "own_decay",
        "market_7d_rel",
        "market_7d_has",
        "floor_rel",
    )

    def __init__(self, space: TokenSpace, params: ModelParams) -> None:
        self.space = space
        self.params = params

    def static(self, i: int) -> np.ndarray:
        s = self.space
        return np.r_[s.trait_features[i], s.scores[i], np.log(s.ranks[i])]

    def row(
        self, market: _Market, i: int, t: float, sim: np.ndarray | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        p = self.params
        space = self.space
        h = market.history
        token = int(space.ids[i])
        comps = market.comparables(i, t, sim)
        if comps:
            w = np.array([c["weight"] for c in comps])
            rel = np.array([c["rel"] for c in comps])
            comp_rel = float(w @ rel / w.sum())
            comp_sim = float(np.mean([c["similarity"] for c in comps]))
            comp_has = 1.0
        else:
            comp_rel, comp_sim, comp_has = 0.0, 0.0, 0.0
        last = h.last_sale_before(token, t)
        if last is not None and not np.isfinite(market.rel[last]):
            last = None  # the collection's first sales have no market level to compare with
        if last is not None:
            own_rel = float(market.rel[last])
            own_decay = float(0.5 ** ((t - h.times[last]) / p.own_half_life_days))
            own_has = 1.0
        else:
            own_rel, own_decay, own_has = 0.0, 0.0, 0.0
        x = np.r_[
            self.static(i),
            comp_rel,
            comp_has,
            comp_sim,
            own_rel,
            own_has,
            own_rel * own_decay,
            own_decay,
            *market.raw_features(t),
        ]
        return x, {"comparables": comps, "last": last, "own_decay": own_decay}


class _Market:
    """Market level and relative prices over a history, given per-token premia."""

    def __init__(
        self, history: History, space: TokenSpace, premium: np.ndarray, params: ModelParams
    ) -> None:
        self.history = history
        self.space = space
        self.params = params
        self.premium = premium
        pos = np.array([space.index.get(int(t), -1) for t in history.tokens], dtype=np.int64)
        self.positions = pos
        prem = np.where(pos >= 0, premium[np.maximum(pos, 0)], 0.0)
        self.adjusted = history.log_prices - prem
        self.levels = np.array([self.level(t) for t in history.times])
        self.rel = history.log_prices - self.levels

    def _window(self, t: float) -> tuple[int, int]:
        if self.params.level_sales is not None:
            hi = self.history.count_before(t)
            return max(0, hi - self.params.level_sales), hi
        lo, hi = self.history.window(t, self.params.level_window_days)
        if hi - lo < self.params.level_min_sales:
            lo = max(0, hi - self.params.level_min_sales)
        return lo, hi

    def level(self, t: float) -> float:
        lo, hi = self._window(t)
        if hi == 0:
            return float("nan")
        return _weighted_median(self.adjusted[lo:hi])

    def raw_features(self, t: float) -> tuple[float, float, float]:
        """The unadjusted 7-day median and floor proxy, in log units relative to the level:
        most sales happen near the floor, which the premium-adjusted level can miss."""
        h = self.history
        level = self.level(t)
        lo7, hi = h.window(t, 7.0)
        lo, _ = self._window(t)
        m7 = float(np.median(h.log_prices[lo7:hi])) - level if hi > lo7 else 0.0
        floor = (
            float(np.quantile(h.log_prices[lo:hi], self.params.floor_quantile)) - level
            if hi > lo
            else 0.0
        )
        return m7, float(hi > lo7), floor

    def snapshot(self, t: float) -> dict[str, Any]:
        h = self.history
        lo7, hi = h.window(t, 7.0)
        lo30, _ = h.window(t, 30.0)
        raw = np.exp(h.log_prices)
        lo, _ = self._window(t)
        floor = float(np.quantile(raw[lo:hi], self.params.floor_quantile)) if hi > lo else None
        return {
            "median_7d": float(np.median(raw[lo7:hi])) if hi > lo7 else None,
            "median_30d": float(np.median(raw[lo30:hi])) if hi > lo30 else None,
            "floor_proxy": floor,
            "sales_30d": hi - lo30,
            "level_eth": float(np.exp(self.level(t))) if hi > 0 else None,
        }

    def comparables(self, i: int, t: float, sim: np.ndarray | None = None) -> list[dict[str, Any]]:
        """The k most similar other tokens with a sale before ``t``: their last such sale."""
        p = self.params
        h = self.history
        if sim is None:
            sim = self.space.similarity(i)
        sold = self._sold_positions()
        if len(sold) == 0:
            return []
        cand_sim = sim[sold]
        order = np.argsort(-cand_sim, kind="stable")
        out: list[dict[str, Any]] = []
        for j in order:
            pos = int(sold[j])
            if pos == i:
                continue
            tok = int(self.space.ids[pos])
            last = h.last_sale_before(tok, t)
            if last is None or not np.isfinite(self.rel[last]):
                continue
            age = t - float(h.times[last])
            weight = max(float(cand_sim[j]), 1e-3) * 0.5 ** (age / p.comp_half_life_days)
            out.append(
                {
                    "token_id": tok,
                    "similarity": float(cand_sim[j]),
                    "sale": last,
                    "rel": float(self.rel[last]),
                    "weight": weight,
                }
            )
            if len(out) >= p.k_comparables:
                break
        return out

    def _sold_positions(self) -> np.ndarray:
        cached = getattr(self, "_sold", None)
        if cached is None:
            pos = np.unique(self.positions[self.positions >= 0])
            self._sold = pos
            return pos
        return cached


def _decay_weights(times: np.ndarray, ref: float, half_life: float) -> np.ndarray:
    return np.asarray(0.5 ** ((ref - times) / half_life), dtype=float)


@dataclass(frozen=True)
class _PriceFit:
    premium: np.ndarray
    ridge: LinearModel
    alpha: float
    q_low: dict[str, float]
    q_high: dict[str, float]
    holdout_n: int


def _evidence_group(x_meta: dict[str, Any], t: float, history: History) -> str:
    last = x_meta["last"]
    if last is not None and t - float(history.times[last]) <= 365.0:
        return "own_recent"
    return "no_recent_own"


def _price_training(
    history: History, space: TokenSpace, params: ModelParams, premium: np.ndarray, end: float
) -> tuple[_Market, np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
    market = _Market(history, space, premium, params)
    feats = _PriceFeatures(space, params)
    rows, ys, ts, metas = [], [], [], []
    n = history.count_before(end)
    for k in range(n):
        pos = int(market.positions[k])
        t = float(history.times[k])
        if pos < 0 or not np.isfinite(market.levels[k]) or k < params.level_min_sales:
            continue
        x, meta = feats.row(market, pos, t)
        rows.append(x)
        ys.append(market.rel[k])
        ts.append(t)
        metas.append(meta)
    return market, np.array(rows), np.array(ys), np.array(ts), metas


def _fit_premium(space: TokenSpace, market: _Market, end: float, params: ModelParams) -> np.ndarray:
    """Trait premia: ridge of relative log price on the static token features."""
    h = market.history
    n = h.count_before(end)
    keep = [
        k
        for k in range(params.level_min_sales, n)
        if market.positions[k] >= 0 and np.isfinite(market.levels[k])
    ]
    if len(keep) < 10:
        return np.zeros(len(space))
    feats = _PriceFeatures(space, params)
    static_all = np.array([feats.static(i) for i in range(len(space))])
    x = static_all[market.positions[keep]]
    y = market.rel[keep]
    w = _decay_weights(h.times[keep], end, params.train_half_life_days)
    model = fit_ridge(x, y, alpha=10.0, weights=w)
    prem = model.decision(static_all)
    return prem - float(np.average(prem[market.positions[keep]], weights=w))


def _robust_ridge(
    x: np.ndarray, y: np.ndarray, alpha: float, w: np.ndarray, delta: float | None
) -> LinearModel:
    """Ridge with a Huber loss (by reweighting): a few wild sales should not move the fit,
    and the backtest judges medians."""
    model = fit_ridge(x, y, alpha=alpha, weights=w)
    if delta is None:
        return model
    for _ in range(8):
        r = np.abs(y - model.decision(x))
        model = fit_ridge(
            x, y, alpha=alpha, weights=w * np.minimum(1.0, delta / np.maximum(r, 1e-9))
        )
    return model


def _fit_price(
    history: History, space: TokenSpace, params: ModelParams, end: float
) -> tuple[_PriceFit, _Market]:
    premium = np.zeros(len(space))
    for _ in range(params.hedonic_rounds):
        market = _Market(history, space, premium, params)
        premium = _fit_premium(space, market, end, params)
    market, x, y, ts, metas = _price_training(history, space, params, premium, end)
    if len(y) < 10:
        raise ValueError(f"too few priced sales before the cutoff to fit a model ({len(y)})")
    # pick the penalty and measure residuals on the latest part of the training period
    split = ts[int(len(ts) * (1 - params.holdout_fraction))]
    early, late = ts < split, ts >= split
    best: tuple[float, float, np.ndarray] | None = None
    for alpha in params.ridge_alphas:
        w = _decay_weights(ts[early], split, params.train_half_life_days)
        m = _robust_ridge(x[early], y[early], alpha, w, params.huber_delta)
        resid = y[late] - m.decision(x[late])
        err = float(np.median(np.abs(resid)))
        if best is None or err < best[0]:
            best = (err, alpha, resid)
    assert best is not None
    _, alpha, resid = best
    groups = np.array([_evidence_group(metas[k], ts[k], history) for k in np.nonzero(late)[0]])
    tail = (1 - params.interval) / 2
    q_low = {"all": float(np.quantile(resid, tail))}
    q_high = {"all": float(np.quantile(resid, 1 - tail))}
    for g in ("own_recent", "no_recent_own"):
        sel = resid[groups == g]
        if len(sel) >= 30:
            q_low[g] = float(np.quantile(sel, tail))
            q_high[g] = float(np.quantile(sel, 1 - tail))
    ridge = _robust_ridge(
        x, y, alpha, _decay_weights(ts, end, params.train_half_life_days), params.huber_delta
    )
    fit_ = _PriceFit(premium, ridge, alpha, q_low, q_high, int(late.sum()))
    return fit_, market


def _liquidity_matrix(
    history: History, space: TokenSpace, premium: np.ndarray, t: float, params: ModelParams
) -> np.ndarray:
    """One feature row per token of the collection, from sales strictly before ``t``."""
    n_tok = len(space)
    n = history.count_before(t)
    pos = np.array([space.index.get(int(x), -1) for x in history.tokens[:n]], dtype=np.int64)
    ok = pos >= 0
    pos, times = pos[ok], history.times[:n][ok]
    past = np.bincount(pos, minlength=n_tok).astype(float)
    recent_mask = times >= t - params.horizon_days
    recent = np.bincount(pos[recent_mask], minlength=n_tok).astype(float)
    last = np.full(n_tok, -np.inf)
    np.maximum.at(last, pos, times)
    never = ~np.isfinite(last)
    since = np.where(never, 0.0, np.log1p(np.maximum(t - last, 0.0)))
    lo90 = history.count_before(t - 90.0)
    market = np.full(n_tok, np.log1p(n - lo90))
    return np.c_[
        np.log1p(past),
        np.log1p(recent),
        since,
        never.astype(float),
        space.scores,
        space.type_features,
        premium,
        market,
    ]


def _trade_counts(history: History, space: TokenSpace, t: float, params: ModelParams) -> np.ndarray:
    """Each token's number of trades in ``[t, t + horizon)``."""
    lo = history.count_before(t)
    hi = history.count_before(t + params.horizon_days)
    pos = np.array([space.index.get(int(x), -1) for x in history.tokens[lo:hi]], dtype=np.int64)
    return np.bincount(pos[pos >= 0], minlength=len(space)).astype(float)


@dataclass(frozen=True)
class _LiquidityFit:
    """A Poisson model of the trade count in the horizon, and a Platt calibration of its log
    rate to P(count > liquid_trades). "Liquid" is rare (a handful of tokens per snapshot), so
    the rate is learnt from every trade and only the two calibration numbers from the rare
    label."""

    rate: LinearModel | None
    slope: float
    intercept: float
    base_rate: float
    liquid_trades: int
    anchors: int
    rows: int
    positives: int

    def probability(self, x: np.ndarray) -> np.ndarray:
        if self.rate is None:
            return np.full(len(x), self.base_rate)
        tail = _poisson_tail_logit(np.exp(self.rate.decision(x)), self.liquid_trades)
        return sigmoid(self.intercept + self.slope * tail)


def _poisson_tail_logit(rate: np.ndarray, k: int) -> np.ndarray:
    """logit P(N > k) for N ~ Poisson(rate), computed stably for small rates."""
    rate = np.maximum(np.asarray(rate, dtype=float), 1e-12)
    terms = np.ones_like(rate)
    cdf = np.ones_like(rate)
    for j in range(1, k + 1):
        terms = terms * rate / j
        cdf = cdf + terms
    cdf = cdf * np.exp(-rate)
    tail = np.maximum(1.0 - cdf, 0.0)
    # for small rates 1 - cdf cancels; the leading term rate^(k+1)/(k+1)! is accurate there
    small = rate < 1e-2
    lead = terms * rate / (k + 1) * np.exp(-rate)
    tail = np.where(small, lead, tail)
    tail = np.clip(tail, 1e-15, 1 - 1e-15)
    return np.asarray(np.log(tail) - np.log1p(-tail))


def _fit_liquidity(
    history: History, space: TokenSpace, premium: np.ndarray, end: float, params: ModelParams
) -> _LiquidityFit:
    empty = _LiquidityFit(None, 0.0, 0.0, 0.5, params.liquid_trades, 0, 0, 0)
    if len(history) == 0:
        return empty
    start = float(history.times[0]) + 90.0
    anchors = np.arange(end - params.horizon_days, start, -params.anchor_step_days)[::-1]
    xs, counts, ws = [], [], []
    for a in anchors:
        xs.append(_liquidity_matrix(history, space, premium, float(a), params))
        counts.append(_trade_counts(history, space, float(a), params))
        # how tokens trade drifts (the 2017 flipping did not last): recent snapshots count more
        age = end - params.horizon_days - float(a)
        ws.append(np.full(len(space), 0.5 ** (age / params.liquidity_half_life_days)))
    if not xs:
        return empty
    x, c, w = np.vstack(xs), np.concatenate(counts), np.concatenate(ws)
    y = (c > params.liquid_trades).astype(float)
    pos = int(y.sum())
    base = (pos + 0.5) / (len(y) + 1.0)
    if c.sum() == 0:
        return _LiquidityFit(None, 0.0, 0.0, base, params.liquid_trades, len(anchors), len(y), pos)
    rate = fit_poisson(x, c, alpha=params.logistic_alpha, weights=w)
    tail = _poisson_tail_logit(np.exp(rate.decision(x)), params.liquid_trades)
    slope, intercept = 1.0, 0.0
    if 0 < pos < len(y):
        # Platt scaling of the Poisson tail: trades cluster (flippers), so the pure Poisson
        # tail is too thin; a non-positive slope (a few positives) would invert the ranking
        platt = fit_logistic(tail[:, None], y, alpha=1e-3)
        coef, icpt = platt.raw_coefficients()
        if coef[0] > 0.1:
            slope, intercept = float(coef[0]), icpt
    return _LiquidityFit(
        rate, slope, intercept, base, params.liquid_trades, len(anchors), len(y), pos
    )


@dataclass
class FittedModel:
    """A fitted valuation model; ``value`` reads sales strictly before the valuation time."""

    params: ModelParams
    as_of: datetime
    model_version: str
    space: TokenSpace
    price: _PriceFit
    liquidity: _LiquidityFit
    market: _Market
    training_sales: int
    # sales left out as wash trades or outliers, per reason (valuation.wash), plus "sales"
    excluded: Mapping[str, int] = field(default_factory=dict)

    def with_sales(self, sales: Sequence[SaleRecord]) -> FittedModel:
        """The same fitted parameters over a new sales history (the market level and the
        comparables follow the new sales; nothing is refit)."""
        history, excluded = _history(sales, self.params)
        market = _Market(history, self.space, self.price.premium, self.params)
        return replace(self, market=market, excluded=excluded)

    @property
    def history(self) -> History:
        return self.market.history

    def value(self, token_id: int, at: datetime) -> Valuation:
        """Value a token at ``at`` from the sales strictly before ``at``.

        The fitted parameters come from the sales before ``as_of``; valuing at ``at < as_of``
        therefore uses parameters learnt from later sales (fit with ``as_of=at`` for a strict
        replay of the past).
        """
        t = to_days(at)
        i = self.space.position(token_id)
        est = self._estimate(i, t)
        return self._valuation(int(token_id), at, t, i, est)

    def quote(self, token_id: int, at: datetime) -> tuple[float, float, float]:
        """Point estimate and 80 % interval in ETH, without building an explanation."""
        est = self._estimate(self.space.position(token_id), to_days(at))
        lo, hi = self._quantiles(est["group"])
        log_price = float(est["log_price"])
        return (
            float(np.exp(log_price)),
            float(np.exp(log_price + lo)),
            float(np.exp(log_price + hi)),
        )

    def p_liquid_all(self, at: datetime) -> dict[int, float]:
        """P(liquid) for every token of the collection at once."""
        p = self._p_liquid_matrix(to_days(at))
        return {int(tok): float(v) for tok, v in zip(self.space.ids, p, strict=True)}

    # -- internals -------------------------------------------------------------------------

    def _p_liquid_matrix(self, t: float) -> np.ndarray:
        x = _liquidity_matrix(self.history, self.space, self.price.premium, t, self.params)
        return self.liquidity.probability(x)

    def _estimate(self, i: int, t: float) -> dict[str, Any]:
        level = self.market.level(t)
        if not np.isfinite(level):
            raise ValueError("no sales before the valuation time: the market level is unknown")
        x, meta = _PriceFeatures(self.space, self.params).row(self.market, i, t)
        rel = float(self.price.ridge.decision(x)[0])
        group = _evidence_group(meta, t, self.history)
        return {
            "log_price": level + rel,
            "level": level,
            "rel": rel,
            "x": x,
            "meta": meta,
            "group": group,
        }

    def _quantiles(self, group: str) -> tuple[float, float]:
        key = group if group in self.price.q_low else "all"
        return self.price.q_low[key], self.price.q_high[key]

    def _valuation(
        self, token: int, at: datetime, t: float, i: int, est: dict[str, Any]
    ) -> Valuation:
        p = self.price
        group = est["group"] if est["group"] in p.q_low else "all"
        lo, hi = self._quantiles(group)
        log_price = float(est["log_price"])
        snap = self.market.snapshot(t)
        confidence = interval_confidence(lo, hi, snap["sales_30d"], self.params.level_min_sales)
        x = np.atleast_2d(est["x"])
        row = _liquidity_matrix(self.history, self.space, p.premium, t, self.params)[i : i + 1]
        p_liquid = float(self.liquidity.probability(row)[0])
        h = self.history
        comps = [
            {
                "token_id": c["token_id"],
                "similarity": round(c["similarity"], 4),
                "last_sale_eth": float(np.exp(h.log_prices[c["sale"]])),
                "last_sale_time": h.records[c["sale"]].time.isoformat(),
            }
            for c in est["meta"]["comparables"]
        ]
        own = [
            {
                "time": h.records[k].time.isoformat(),
                "price_eth": h.records[k].price_eth,
                "seller": h.records[k].seller,
                "buyer": h.records[k].buyer,
                "tx_hash": h.records[k].tx_hash,
                "relative_to_market": round(float(self.market.rel[k]), 4),
            }
            for k in h.token_sales_before(token, t)
        ]
        names = [
            *self.space.feature_names,
            "rarity_score",
            "log_rank",
            *_PriceFeatures.names_dynamic[2:],
        ]
        # each feature's effect against the average training sale, in log price units
        coef, _ = p.ridge.raw_coefficients()
        delta = coef * (x[0] - p.ridge.mean)
        contrib = {n: float(d) for n, d in zip(names, delta, strict=True) if abs(d) > 1e-9}
        top = sorted(contrib.items(), key=lambda kv: -abs(kv[1]))[:8]
        explanation = {
            "model": {
                "version": self.model_version,
                "as_of": self.as_of.isoformat(),
                "interval_group": group,
            },
            "market": snap,
            "trait_premium": round(float(p.premium[i]), 4),
            "relative_to_market": round(float(est["rel"]), 4),
            # the largest effects against the average training sale, in log price units
            "drivers": [{"feature": n, "log_effect": round(v, 4)} for n, v in top],
            "comparables": comps,
            "rarity": {
                "score": round(float(self.space.scores[i]), 6),
                "rank": int(self.space.ranks[i]),
                "of": len(self.space),
                "top_traits": self.space.rarity.top_traits(token),
            },
            "own_trades": own,
        }
        return Valuation(
            token_id=token,
            at=at,
            price_eth=float(np.exp(log_price)),
            low_eth=float(np.exp(log_price + lo)),
            high_eth=float(np.exp(log_price + hi)),
            p_liquid=float(p_liquid),
            confidence=confidence,
            model_version=self.model_version,
            explanation=explanation,
        )


def _history(sales: Sequence[SaleRecord], params: ModelParams) -> tuple[History, dict[str, int]]:
    """The sales the model reads: priced, and without the wash-flagged ones (their counts)."""
    if not params.exclude_wash:
        return History(sales, min_price=params.min_price_eth), {}
    priced = [s for s in sales if s.price_eth > params.min_price_eth]
    clean, counts = clean_sales(priced)
    return History(clean, min_price=params.min_price_eth), dict(counts)


def _version(params: ModelParams, as_of: datetime, history: History, end: float) -> str:
    n = history.count_before(end)
    last_tx = history.records[n - 1].tx_hash if n else ""
    blob = json.dumps(
        {
            "model": MODEL_NAME,
            # a setting left at None stays out, so that adding one keeps earlier versions
            "params": {k: v for k, v in asdict(params).items() if v is not None},
            "as_of": as_of.isoformat(),
            "sales": n,
            "last_tx": last_tx,
        },
        sort_keys=True,
    )
    return f"{MODEL_NAME}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def fit(
    sales: Sequence[SaleRecord],
    attributes: Mapping[int, Traits],
    *,
    as_of: datetime,
    embeddings: Mapping[int, Sequence[float] | np.ndarray] | None = None,
    params: ModelParams | None = None,
) -> FittedModel:
    """Fit both models on the sales strictly before ``as_of``.

    ``attributes`` maps every token of the collection to its traits (trait type → value);
    ``embeddings`` optionally maps token id → image vector for the comparables.
    """
    params = params or ModelParams()
    end = to_days(as_of)
    known = [s for s in sales if to_days(s.time) < end]
    history, excluded = _history(known, params)
    n = history.count_before(end)
    group_by = primary_trait(
        attributes, zip(history.tokens[:n].tolist(), history.log_prices[:n], strict=True)
    )
    space = TokenSpace(attributes, embeddings, group_by=group_by)
    price, market = _fit_price(history, space, params, end)
    liquidity = _fit_liquidity(history, space, price.premium, end, params)
    return FittedModel(
        params=params,
        as_of=as_of,
        model_version=_version(params, as_of, history, end),
        space=space,
        price=price,
        liquidity=liquidity,
        market=market,
        training_sales=history.count_before(end),
        excluded=excluded,
    )


_ = from_days  # re-exported helper for callers that build times from days
