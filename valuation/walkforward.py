"""Walk-forward backtest: step the cutoff through the data, fit before it, predict the window
after it, and score the model beside the naive baselines on the same sales.

- Cutoffs every ``step_days`` once ``min_history_days`` of sales exist; each window runs
  ``window_days`` (at most the step, so that no sale is scored twice) or to the data's end.
- A sale is predicted from the sales of EARLIER BLOCKS only (``SalesFrame.visible``): the level
  and the baselines read every such sale, inside the window too; fitted parameters come from the
  sales before the cutoff (the sales-count level refits its premia weekly as the window goes).
- Hyper-parameters are chosen nested: at a cutoff, the candidate with the lowest pooled MdAPE on
  the EARLIER windows (a warm-up window before the first cutoff is scored for this and never
  reported). "model" is the same nested choice between the hedonic-knn model (its level a
  30-day window, or the last N sales), the sales-count level, and the mean of the two
  sales-count ones in log price.
- 80 % intervals come from the last ``residual_sales`` out-of-sample log residuals of the same
  predictor (sales of earlier blocks, predicted before they happened), not from training
  residuals.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

import numpy as np

from valuation.baselines import (
    median_of_days,
    median_of_last,
    median_of_type,
    repeat_sales,
)
from valuation.frame import SalesFrame
from valuation.history import from_days, to_days
from valuation.level import HedonicLevel, LevelParams
from valuation.metrics import ape_summary, average_precision, roc_auc
from valuation.model import ModelParams, fit
from valuation.rarity import Traits
from valuation.sales import SaleRecord
from valuation.tokens import TokenSpace
from valuation.wash import REASONS, flag_counts, flag_sales

__all__ = ["WalkForwardConfig", "WalkForwardReport", "run_walk_forward"]

MODEL = "model"
KNN = "hedonic-knn, 30-day level"
KNN_N = "hedonic-knn, sales-count level"
BLEND = "mean of the two sales-count ones"
LEVEL = "sales-count level, premia weekly"
BASELINES = (
    "median, previous 1 day",
    "median, previous 7 days",
    "median, last 20 sales",
    "median, same type's last 20",
    "repeat sales (last sale x index)",
)


@dataclass(frozen=True)
class WalkForwardConfig:
    step_days: float = 90.0
    window_days: float = 90.0
    min_history_days: float = 365.0
    horizon_days: float = 180.0  # liquidity: more than two trades within this after a cutoff
    interval: float = 0.8
    residual_sales: int = 250
    min_residuals: int = 30
    level_sales: tuple[int, ...] = (10, 20, 40)
    level_alphas: tuple[float, ...] = (10.0, 100.0)
    refit_days: float = 7.0  # the level's premia are refit this often as sales arrive
    with_knn: bool = True  # the existing hedonic-knn model (a fit per cutoff, seconds each)
    cutoffs: tuple[date, ...] | None = None  # explicit cutoffs instead of the stepped ones

    def level_grid(self) -> list[LevelParams]:
        return [
            LevelParams(n_sales=n, ridge_alpha=a, refit_days=self.refit_days)
            for n in self.level_sales
            for a in self.level_alphas
        ]


@dataclass
class WalkForwardReport:
    config: WalkForwardConfig
    windows: list[dict[str, Any]]
    pooled: dict[str, Any]
    notes: list[str]
    seconds: float
    # per sale of the frame, for checks (not serialised): window (-1 none, 0 warm-up, i + 1
    # the i-th reported cutoff), log predictions and interval bounds per predictor
    frame: SalesFrame = field(repr=False)
    window_of: np.ndarray = field(repr=False)
    predictions: dict[str, np.ndarray] = field(repr=False)
    lows: dict[str, np.ndarray] = field(repr=False)
    highs: dict[str, np.ndarray] = field(repr=False)
    candidates: dict[str, np.ndarray] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, dict):
                return {str(k): clean(x) for k, x in v.items()}
            if isinstance(v, list | tuple):
                return [clean(x) for x in v]
            if isinstance(v, date):
                return v.isoformat()
            return v

        out = {
            "config": clean(asdict(self.config)),
            "windows": clean(self.windows),
            "pooled": clean(self.pooled),
            "notes": self.notes,
            "seconds": self.seconds,
        }
        return dict(out)

    def render(self) -> str:
        names = list(self.pooled["price"])
        short = {n: _short(n) for n in names}
        lines = [
            f"walk-forward backtest: cutoffs every {self.config.step_days:g} days, windows of "
            f"{self.config.window_days:g} days; each sale predicted from earlier blocks only",
            "",
            "MdAPE per cutoff (n = sales scored; chosen on the earlier windows: the model's "
            "predictor and the level's N and ridge penalty)",
            f"{'cutoff':<12}{'n':>6}" + "".join(f"{short[n]:>10}" for n in names) + "  chosen",
        ]
        for w in self.windows:
            lines.append(
                f"{w['cutoff']:<12}{w['test_sales']:>6}"
                + "".join(f"{_pct(w['price'][n]['mdape']):>10}" for n in names)
                + f"  {_short(w['chosen']['model'])}, {w['chosen']['level']}"
            )
        lines += [
            "",
            f"pooled over {self.pooled['test_sales']} sales in {len(self.windows)} windows",
            f"{'predictor':<34}{'n':>6}{'MdAPE':>8}{'p90 APE':>9}{'±10%':>8}{'±25%':>8}"
            f"{'80% int':>9}{'model MdAPE same sales':>24}",
        ]
        for n in names:
            m = self.pooled["price"][n]
            lines.append(
                f"{n:<34}{int(m['n']):>6}{_pct(m['mdape']):>8}{_pct(m['p90_ape']):>9}"
                f"{_pct(m['within_10']):>8}{_pct(m['within_25']):>8}"
                f"{_pct(m['coverage']):>9}{_pct(m['model_mdape_same_sales']):>24}"
            )
        legend = ", ".join(f"{short[n].strip()} = {n}" for n in names)
        lines += ["", f"columns: {legend}"]
        liq = self.pooled.get("liquidity")
        if liq:
            lines += [
                "",
                f"liquidity: P(> 2 trades in {self.config.horizon_days:g} days after each "
                f"cutoff), pooled over {liq['rows']} token-cutoffs, {liq['positives']} liquid",
                f"{'score':<34}{'ROC-AUC':>9}{'PR-AUC':>9}",
            ]
            for name in ("model", "pre-cutoff trade count"):
                lines.append(
                    f"{name:<34}{_num(liq[name]['roc_auc']):>9}{_num(liq[name]['pr_auc']):>9}"
                )
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


_SHORT = {
    MODEL: "model",
    KNN: "knn-30d",
    KNN_N: "knn-N",
    BLEND: "blend",
    LEVEL: "level-N",
    BASELINES[0]: "med-1d",
    BASELINES[1]: "med-7d",
    BASELINES[2]: "last-20",
    BASELINES[3]: "type-20",
    BASELINES[4]: "repeat",
}


def _short(name: str) -> str:
    return _SHORT.get(name, name[:9])


def _pct(v: float) -> str:
    return "n/a" if not math.isfinite(v) else f"{100 * v:.1f}%"


def _num(v: float) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:.4f}"


def _cutoffs(frame: SalesFrame, config: WalkForwardConfig) -> list[float]:
    if config.cutoffs is not None:
        return [to_days(datetime(c.year, c.month, c.day, tzinfo=UTC)) for c in config.cutoffs]
    start = math.floor(float(frame.times[0])) + config.min_history_days
    end = float(frame.times[-1])
    out = []
    c = start
    while c <= end:
        out.append(c)
        c += config.step_days
    return out


def _mdape(actual_log: np.ndarray, pred_log: np.ndarray) -> float:
    ok = np.isfinite(pred_log)
    if not ok.any():
        return math.inf
    return float(np.median(np.abs(np.exp(pred_log[ok] - actual_log[ok]) - 1.0)))


def _nested(
    options: Sequence[np.ndarray],
    actual: np.ndarray,
    window_of: np.ndarray,
    n_windows: int,
    default: int,
) -> tuple[np.ndarray, list[int]]:
    """Per window, the option with the lowest pooled MdAPE over the EARLIER windows."""
    chosen = np.full(len(actual), np.nan)
    picks: list[int] = []
    for w in range(n_windows):
        earlier = (window_of >= 0) & (window_of < w)
        if earlier.any():
            errs = [_mdape(actual[earlier], o[earlier]) for o in options]
            pick = int(np.argmin(errs))
        else:
            pick = default
        picks.append(pick)
        here = window_of == w
        chosen[here] = options[pick][here]
    return chosen, picks


def _rolling_interval(
    frame: SalesFrame, pred: np.ndarray, scored: np.ndarray, config: WalkForwardConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds from the last out-of-sample log residuals of sales of earlier blocks."""
    lo = np.full(len(pred), np.nan)
    hi = np.full(len(pred), np.nan)
    idx = np.nonzero(scored & np.isfinite(pred))[0]
    resid = frame.log_prices[idx] - pred[idx]
    tail = (1.0 - config.interval) / 2.0
    for j, k in enumerate(idx):
        m = int(np.searchsorted(idx, frame.visible[k], side="left"))  # residuals known by then
        pool = resid[max(0, m - config.residual_sales) : m]
        if len(pool) >= config.min_residuals:
            q_lo, q_hi = np.quantile(pool, [tail, 1.0 - tail])
            lo[k], hi[k] = pred[k] + q_lo, pred[k] + q_hi
        del j
    return lo, hi


def _price_summary(
    actual_log: np.ndarray, pred: np.ndarray, low: np.ndarray, high: np.ndarray, model: np.ndarray
) -> dict[str, float]:
    a = np.exp(actual_log)
    m = ape_summary(a, np.exp(pred))
    has = np.isfinite(pred)
    m["model_mdape_same_sales"] = ape_summary(a[has], np.exp(model[has]))["mdape"]
    band = np.isfinite(low) & has
    m["coverage"] = (
        float(np.mean((actual_log[band] >= low[band]) & (actual_log[band] <= high[band])))
        if band.any()
        else float("nan")
    )
    m["interval_n"] = int(band.sum())
    return m


def run_walk_forward(
    sales: Sequence[SaleRecord],
    attributes: Mapping[int, Traits],
    *,
    config: WalkForwardConfig | None = None,
    embeddings: Mapping[int, Sequence[float] | np.ndarray] | None = None,
    params: ModelParams | None = None,
) -> WalkForwardReport:
    started = time.perf_counter()
    config = config or WalkForwardConfig()
    if config.window_days > config.step_days:
        raise ValueError("window_days must not exceed step_days (a sale is scored once)")
    params = params or ModelParams(horizon_days=config.horizon_days)
    frame = SalesFrame.build(sales, attributes, min_price=params.min_price_eth)
    if len(frame) == 0:
        raise ValueError("no priced sales")
    cutoffs = _cutoffs(frame, config)
    if not cutoffs:
        raise ValueError(
            f"the sales span less than {config.min_history_days:g} days: no cutoff to score"
        )
    bounds = [cutoffs[0] - config.step_days, *cutoffs]  # a warm-up window first
    space = TokenSpace(attributes, embeddings)
    positions = np.array([space.index.get(int(t), -1) for t in frame.tokens], dtype=np.int64)
    features = np.c_[space.trait_features, space.scores, np.log(space.ranks)]
    hedonic = HedonicLevel(frame, features, positions)
    grid = config.level_grid()
    default_level = LevelParams(refit_days=config.refit_days)

    n = len(frame)
    window_of = np.full(n, -1, dtype=np.int64)
    ranges: list[tuple[int, int]] = []
    for w, c in enumerate(bounds):
        end = (
            min(c + config.window_days, bounds[w + 1])
            if w + 1 < len(bounds)
            else c + config.window_days
        )
        lo, hi = frame.count_before(c), frame.count_before(end)
        ranges.append((lo, hi))
        window_of[lo:hi] = np.where(frame.known[lo:hi], w, -1)
    scored = window_of >= 0

    def empty() -> np.ndarray:
        return np.full(n, np.nan)

    cand = {p.label: empty() for p in grid}
    base = {b: empty() for b in BASELINES}
    knn, knn_n = empty(), empty()
    params_n = replace(params, level_sales=params.level_sales or default_level.n_sales)
    params_30 = replace(params, level_sales=None)
    liquidity_rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    windows_meta: list[dict[str, Any]] = []
    for w, (lo, hi) in enumerate(ranges):
        c = bounds[w]
        for p in grid:
            cand[p.label][lo:hi] = hedonic.predict(lo, hi, p)
        base[BASELINES[0]][lo:hi] = median_of_days(frame, lo, hi, 1.0)
        base[BASELINES[1]][lo:hi] = median_of_days(frame, lo, hi, 7.0)
        base[BASELINES[2]][lo:hi] = median_of_last(frame, lo, hi, 20)
        base[BASELINES[3]][lo:hi] = median_of_type(frame, lo, hi, 20)
        # the index: the sales-count level under premia fit once at the cutoff
        index = hedonic.levels(hedonic.premia(c, default_level), default_level, hi)
        base[BASELINES[4]][lo:hi] = repeat_sales(frame, lo, hi, index)
        meta: dict[str, Any] = {"train_sales": frame.count_before(c)}
        if config.with_knn:
            for target, ps in ((knn_n, params_n), (knn, params_30)):
                model = fit(sales, attributes, as_of=from_days(c), embeddings=embeddings, params=ps)
                walk = model.with_sales(sales)
                for k in range(lo, hi):
                    if window_of[k] >= 0:
                        rec = frame.records[k]
                        target[k] = math.log(walk.quote(rec.token_id, rec.time)[0])
            if w > 0:
                t1 = c + config.horizon_days
                p_all = walk.p_liquid_all(from_days(c))
                p_liq = np.array([p_all[int(t)] for t in space.ids])
                after = _trade_counts(frame, positions, len(space), c, t1)
                before = _trade_counts(frame, positions, len(space), -math.inf, c)
                y = (after > params.liquid_trades).astype(float)
                liquidity_rows.append((y, p_liq, before))
                meta["liquidity"] = _liquidity(y, p_liq, before)
                meta["liquidity"]["labels_complete"] = float(frame.times[-1]) >= t1 - 1.0
        windows_meta.append(meta)

    actual = frame.log_prices
    options = [cand[p.label] for p in grid]
    level, level_picks = _nested(
        options,
        actual,
        window_of,
        len(bounds),
        grid.index(default_level) if default_level in grid else 0,
    )
    preds: dict[str, np.ndarray] = {}
    if config.with_knn:
        blend = (knn_n + level) / 2.0
        families = [KNN, KNN_N, LEVEL, BLEND]
        model_pred, model_picks = _nested(
            [knn, knn_n, level, blend], actual, window_of, len(bounds), 0
        )
        preds[MODEL] = model_pred
        preds[KNN] = knn
        preds[KNN_N] = knn_n
    else:
        families = [LEVEL]
        model_picks = [0] * len(bounds)
        preds[MODEL] = level
    preds[LEVEL] = level
    if config.with_knn:
        preds[BLEND] = blend
    preds.update(base)

    lows, highs = {}, {}
    for name, pr in preds.items():
        lows[name], highs[name] = _rolling_interval(frame, pr, scored, config)

    windows: list[dict[str, Any]] = []
    for w in range(1, len(bounds)):
        sel = window_of == w
        lo, hi = ranges[w]
        windows.append(
            {
                "cutoff": from_days(bounds[w]).date().isoformat(),
                "end": from_days(float(frame.times[hi - 1])).date().isoformat()
                if hi > lo
                else None,
                "train_sales": windows_meta[w]["train_sales"],
                "test_sales": int(sel.sum()),
                "chosen": {"model": families[model_picks[w]], "level": grid[level_picks[w]].label},
                "price": {
                    name: _price_summary(
                        actual[sel], pr[sel], lows[name][sel], highs[name][sel], preds[MODEL][sel]
                    )
                    for name, pr in preds.items()
                },
                **(
                    {"liquidity": windows_meta[w]["liquidity"]}
                    if "liquidity" in windows_meta[w]
                    else {}
                ),
            }
        )
    rep = window_of >= 1
    pooled: dict[str, Any] = {
        "test_sales": int(rep.sum()),
        "price": {
            name: _price_summary(
                actual[rep], pr[rep], lows[name][rep], highs[name][rep], preds[MODEL][rep]
            )
            for name, pr in preds.items()
        },
    }
    if liquidity_rows:
        y = np.concatenate([r[0] for r in liquidity_rows])
        pooled["liquidity"] = {
            **_liquidity(
                y,
                np.concatenate([r[1] for r in liquidity_rows]),
                np.concatenate([r[2] for r in liquidity_rows]),
            ),
            "rows": len(y),
            "positives": int(y.sum()),
        }
    notes = [
        "hyper-parameters chosen on earlier windows only; the level's grid: "
        + ", ".join(p.label for p in grid),
        "the hedonic-knn model's own settings (ModelParams) are fixed defaults; its ridge "
        "penalty is chosen on a holdout of its own training sales",
    ]
    wash = flag_counts(flag_sales(sales))
    if params.exclude_wash:
        reasons = ", ".join(f"{r} {wash[r]}" for r in REASONS if wash[r])
        notes.append(
            f"wash and outlier flags: {wash['sales']} of {len(sales)} sales"
            + (f" ({reasons})" if reasons else "")
            + "; left out of the hedonic-knn fits (each flagged from the sales before its"
            " cutoff), still scored"
        )
    unknown = int(((window_of == -1) & ~frame.known & (frame.times >= bounds[1])).sum())
    if unknown:
        notes.append(f"{unknown} sales of tokens without attributes were not scored")
    return WalkForwardReport(
        config=config,
        windows=windows,
        pooled=pooled,
        notes=notes,
        seconds=round(time.perf_counter() - started, 2),
        frame=frame,
        window_of=window_of,
        predictions=preds,
        lows=lows,
        highs=highs,
        candidates=cand,
    )


def _trade_counts(
    frame: SalesFrame, positions: np.ndarray, n_tokens: int, start: float, end: float
) -> np.ndarray:
    lo = 0 if not math.isfinite(start) else frame.count_before(start)
    hi = frame.count_before(end)
    pos = positions[lo:hi]
    return np.bincount(pos[pos >= 0], minlength=n_tokens).astype(float)


def _liquidity(y: np.ndarray, p: np.ndarray, before: np.ndarray) -> dict[str, Any]:
    return {
        "model": {"roc_auc": roc_auc(y, p), "pr_auc": average_precision(y, p)},
        "pre-cutoff trade count": {
            "roc_auc": roc_auc(y, before),
            "pr_auc": average_precision(y, before),
        },
    }
