"""The model the desk is served: the walk-forward backtest's "model", an online stack
(``valuation.stack``) of the sales-count level, the hedonic-knn model, the same type's level and
two naive medians (``valuation.stack_inputs``).

Fit, on the sales strictly before ``as_of``:

- the hedonic-knn model (``model.fit``) and the levels' trait premia;
- every input's OUT-OF-SAMPLE log price for the last ``window_sales`` sales: the levels and the
  medians from the sales of earlier blocks (``SalesFrame.visible``), the hedonic-knn input from
  a second fit before the window's first sale, read with ``with_sales`` (the only way to get its
  out-of-sample errors; it costs about one more fit);
- the weights: ``stack.weights_before`` on those errors, over the backtest's grid;
- the 80 % interval: quantiles of the stack's own out-of-sample residuals over the window's last
  ``residual_sales`` sales (each sale stacked with the weights of the sales before it), not the
  training residuals.

Settings are the backtest's defaults (``LevelParams()``, ``WalkForwardConfig``'s stack grid and
interval), fixed before any data is read: nothing is chosen on the sales being valued.

Between refits ``with_sales`` keeps every fitted parameter (the weights, the premia, the knn's
ridge and residual quantiles) and lets the levels, the medians and the comparables follow the new
sales, so that a sale moves the next valuation at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime

import numpy as np

from valuation.baselines import median_of_days, median_of_type
from valuation.frame import SalesFrame, token_groups
from valuation.history import to_days
from valuation.level import HedonicLevel, LevelParams
from valuation.model import FittedModel, ModelParams, Valuation, fit, interval_confidence
from valuation.rarity import Traits
from valuation.sales import SaleRecord
from valuation.stack import StackParams, fill_missing, stack_grid, weights_before
from valuation.stack_inputs import (
    DAY_DAYS,
    DAY_MEDIAN,
    KNN_N,
    LEVEL,
    STACK_INPUTS,
    TYPE_LEVEL,
    TYPE_MEDIAN,
    TYPE_SALES,
    combine,
    token_inputs,
)
from valuation.tokens import TokenSpace
from valuation.traits import primary_trait
from valuation.walkforward import WalkForwardConfig

__all__ = ["INPUT_KEYS", "MODEL_NAME", "ServedParams", "ServedStack", "fit_served"]

MODEL_NAME = "stack"
# the inputs as an explanation names them (the backtest's names stay beside them)
INPUT_KEYS = {
    LEVEL: "level",
    KNN_N: "hedonic_knn",
    TYPE_LEVEL: "type_level",
    TYPE_MEDIAN: "type_median_20",
    DAY_MEDIAN: "median_1d",
}
_BACKTEST = WalkForwardConfig()


@dataclass(frozen=True)
class ServedParams:
    # the backtest's default level, for the level and the same type's level alike
    level: LevelParams = field(default_factory=LevelParams)
    grid: tuple[StackParams, ...] = tuple(_BACKTEST.stack_grid())
    interval: float = _BACKTEST.interval
    residual_sales: int = _BACKTEST.residual_sales
    min_residuals: int = _BACKTEST.min_residuals
    # out-of-sample sales at fit time: the residuals' own sales plus the largest memory before
    # them, so that each residual comes from weights fit on a full memory
    window_sales: int = _BACKTEST.residual_sales + max(_BACKTEST.stack_memory)
    knn: ModelParams = field(default_factory=ModelParams)


@dataclass(frozen=True)
class ServedStack:
    """A fitted stack; ``value`` reads sales strictly before the valuation time."""

    params: ServedParams
    knn: FittedModel  # the hedonic-knn input, over the same sales
    attributes: Mapping[int, Traits]
    group_by: str | None  # the market's group trait ("same type"), from the training sales
    hedonic: HedonicLevel  # the levels over the sales read (every priced sale)
    token_types: np.ndarray  # each token's group, per row of the knn's token space
    premium: np.ndarray  # the levels' premia, fit at ``as_of``
    inputs: tuple[str, ...]
    weights: np.ndarray  # in the order of ``inputs``, summing to one
    log_low: float  # the interval's quantiles of the stack's out-of-sample log residuals
    log_high: float
    interval_source: str
    residuals: np.ndarray  # those residuals, oldest first
    window_sales: int  # sales whose out-of-sample errors fit the weights
    model_version: str
    fit_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def as_of(self) -> datetime:
        return self.knn.as_of

    @property
    def space(self) -> TokenSpace:
        return self.knn.space

    @property
    def training_sales(self) -> int:
        return self.knn.training_sales

    @property
    def excluded(self) -> Mapping[str, int]:
        return self.knn.excluded

    def with_sales(self, sales: Sequence[SaleRecord]) -> ServedStack:
        """The same fitted parameters over a new sales history."""
        frame = _frame(sales, self.attributes, self.params, self.group_by)
        hedonic = HedonicLevel(frame, self.hedonic.features, _positions(self.space, frame))
        return replace(self, knn=self.knn.with_sales(sales), hedonic=hedonic)

    def log_inputs(self, token_id: int, at: datetime) -> tuple[dict[str, float], Valuation]:
        """Each input's log price for the token at ``at`` (NaN: nothing to say), and the
        hedonic-knn model's own valuation."""
        base = self.knn.value(token_id, at)
        rows = np.array([self.space.position(token_id)])
        columns = token_inputs(
            self.hedonic,
            to_days(at),
            self.params.level,
            self.params.level,
            self.token_types,
            rows,
            premium=self.premium,
            type_premium=self.premium,
        )
        columns[KNN_N] = np.array([math.log(base.price_eth)])
        return {x: float(columns[x][0]) for x in self.inputs}, base

    def value(self, token_id: int, at: datetime) -> Valuation:
        """Value a token at ``at`` from the sales strictly before ``at``: the stack's price, its
        interval, and the hedonic-knn valuation's explanation with each input and weight."""
        values, base = self.log_inputs(token_id, at)
        columns = {x: np.array([v]) for x, v in values.items()}
        log_price = float(combine(columns, self.inputs, self.weights)[0])
        if not math.isfinite(log_price):
            raise ValueError("too few sales before the valuation time: the level is unknown")
        used = fill_missing(np.array([[values[x] for x in self.inputs]]))[0]
        market = base.explanation["market"]
        price = float(np.exp(log_price))
        level = market.get("level_eth")
        explanation = {
            **base.explanation,
            # the stack's price against the market level; the hedonic-knn input's own beside it
            # (its ``drivers`` and ``trait_premium`` explain that input, not the stack)
            "relative_to_market": round(price / level, 4) if level else None,
            "hedonic_knn_relative_to_market": base.explanation["relative_to_market"],
            "model": {
                "name": MODEL_NAME,
                "version": self.model_version,
                "as_of": self.as_of.isoformat(),
                "interval": {
                    "source": self.interval_source,
                    "residuals": len(self.residuals),
                    "log_low": round(self.log_low, 4),
                    "log_high": round(self.log_high, 4),
                },
                "weights_fit_on_sales": self.window_sales,
                "hedonic_knn_version": self.knn.model_version,
                "hedonic_knn_interval_group": base.explanation["model"]["interval_group"],
            },
            # each input's price for this token and its weight: the estimate is their weighted
            # geometric mean; an input with nothing to say stands in at the level's price
            "stack": [
                {
                    "input": INPUT_KEYS[x],
                    "name": x,
                    "value_eth": float(np.exp(used[j])),
                    "weight": round(float(self.weights[j]), 6),
                    "missing": not math.isfinite(values[x]),
                }
                for j, x in enumerate(self.inputs)
            ],
        }
        return replace(
            base,
            price_eth=price,
            low_eth=float(np.exp(log_price + self.log_low)),
            high_eth=float(np.exp(log_price + self.log_high)),
            confidence=interval_confidence(
                self.log_low, self.log_high, market["sales_30d"], self.knn.params.level_min_sales
            ),
            model_version=self.model_version,
            explanation=explanation,
        )


def _frame(
    sales: Sequence[SaleRecord],
    attributes: Mapping[int, Traits],
    params: ServedParams,
    group_by: str | None,
) -> SalesFrame:
    # every priced sale, wash-flagged ones too: the backtest's levels and medians read them all
    return SalesFrame.build(
        sales, attributes, min_price=params.knn.min_price_eth, group_by=group_by
    )


def _positions(space: TokenSpace, frame: SalesFrame) -> np.ndarray:
    return np.array([space.index.get(int(t), -1) for t in frame.tokens], dtype=np.int64)


def _knn_column(model: FittedModel, frame: SalesFrame, lo: int, hi: int) -> np.ndarray:
    """The hedonic-knn model's log price of each sale ``[lo, hi)`` of a known token, read at
    the sale's time (the sales before it)."""
    out = np.full(hi - lo, np.nan)
    for k in range(lo, hi):
        if frame.known[k]:
            rec = frame.records[k]
            with contextlib.suppress(ValueError):  # no market level yet at that time
                out[k - lo] = math.log(model.quote(rec.token_id, rec.time)[0])
    return out


def _version(params: ServedParams, knn: FittedModel, window_sales: int) -> str:
    blob = json.dumps(
        {
            "model": MODEL_NAME,
            "knn": knn.model_version,  # names the data cut and as_of
            "params": {k: v for k, v in asdict(params).items() if k != "knn"},
            "window_sales": window_sales,
        },
        sort_keys=True,
    )
    return f"{MODEL_NAME}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def fit_served(
    sales: Sequence[SaleRecord],
    attributes: Mapping[int, Traits],
    *,
    as_of: datetime,
    embeddings: Mapping[int, Sequence[float] | np.ndarray] | None = None,
    params: ServedParams | None = None,
) -> ServedStack:
    """Fit the stack on the sales strictly before ``as_of`` (module docstring)."""
    params = params or ServedParams()
    seconds: dict[str, float] = {}
    began = time.perf_counter()
    knn = fit(sales, attributes, as_of=as_of, embeddings=embeddings, params=params.knn)
    seconds["knn"] = time.perf_counter() - began
    end = to_days(as_of)
    frame = _frame(sales, attributes, params, None)
    n = frame.count_before(end)
    group_by = primary_trait(
        attributes, zip(frame.tokens[:n].tolist(), frame.log_prices[:n], strict=True)
    )
    frame = frame.grouped_by(attributes, group_by)
    space = knn.space
    features = np.c_[space.trait_features, space.scores, np.log(space.ranks)]
    hedonic = HedonicLevel(frame, features, _positions(space, frame))
    premium = hedonic.premia(end, params.level, every_token=True)

    # the window of out-of-sample sales: its first half at least is left to the second fit
    first = max(n - params.window_sales, n // 2)
    if first >= n:
        raise ValueError(f"too few priced sales before the cutoff to fit a stack ({n})")
    start = frame.records[first].time
    lo = frame.count_before(to_days(start))
    columns = {
        LEVEL: hedonic.predict(lo, n, params.level),
        TYPE_LEVEL: hedonic.predict(lo, n, params.level, groups=frame.types),
        TYPE_MEDIAN: median_of_type(frame, lo, n, TYPE_SALES),
        DAY_MEDIAN: median_of_days(frame, lo, n, DAY_DAYS),
    }
    seconds["levels"] = time.perf_counter() - began - seconds["knn"]
    try:
        before = fit(sales, attributes, as_of=start, embeddings=embeddings, params=params.knn)
        columns[KNN_N] = _knn_column(before.with_sales(sales), frame, lo, n)
    except ValueError:  # too few sales before the window: the stack goes on without it
        pass
    seconds["window_knn"] = time.perf_counter() - began - seconds["knn"] - seconds["levels"]
    inputs = tuple(x for x in STACK_INPUTS if x in columns)
    matrix = np.column_stack([columns[x] for x in inputs])
    actual = frame.log_prices[lo:n]
    usable = frame.known[lo:n]
    weights = weights_before(matrix, actual, usable, n - lo, params.grid)
    # the stack's own out-of-sample residuals: each sale with the weights of earlier blocks
    visible = np.maximum(frame.visible[lo:n] - lo, 0)
    stacked, _ = stack_grid(matrix, actual, visible, usable, params.grid)
    ok = usable & np.isfinite(stacked)
    residuals = (actual - stacked)[ok][-params.residual_sales :]
    tail = (1.0 - params.interval) / 2.0
    if len(residuals) >= params.min_residuals:
        log_low, log_high = (float(q) for q in np.quantile(residuals, [tail, 1.0 - tail]))
        source = "stack out-of-sample residuals"
    else:  # too few sales to measure the stack on: the knn model's holdout residuals
        log_low, log_high = knn.price.q_low["all"], knn.price.q_high["all"]
        source = "hedonic-knn holdout residuals (too few sales for the stack's own)"
    seconds["total"] = time.perf_counter() - began
    return ServedStack(
        params=params,
        knn=knn,
        attributes=attributes,
        group_by=group_by,
        hedonic=hedonic,
        token_types=token_groups(space.ids.tolist(), attributes, group_by),
        premium=premium,
        inputs=inputs,
        weights=weights,
        log_low=log_low,
        log_high=log_high,
        interval_source=source,
        residuals=residuals,
        window_sales=n - lo,
        model_version=_version(params, knn, n - lo),
        fit_seconds={k: round(v, 3) for k, v in seconds.items()},
    )
