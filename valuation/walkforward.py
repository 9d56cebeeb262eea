"""Walk-forward backtest: step the cutoff through the data, fit before it, predict the window
after it, and score the model beside the naive baselines on the same sales.

- Cutoffs every ``step_days`` once ``min_history_days`` of sales exist; each window runs
  ``window_days`` (at most the step, so that no sale is scored twice) or to the data's end.
- A sale is predicted from the sales of EARLIER BLOCKS only (``SalesFrame.visible``): the level
  and the baselines read every such sale, inside the window too; fitted parameters come from the
  sales before the cutoff (the sales-count levels refit their premia weekly as the window goes).
- The level's N and ridge penalty are chosen nested: at a cutoff, the candidate with the lowest
  pooled MdAPE on the EARLIER windows (a warm-up window before the first cutoff is scored for
  this and never reported).
- "model" is an online stack (``valuation.stack``) of the sales-count level, the hedonic-knn
  model, the same type's sales-count level and two naive medians: for each sale, weights fit on
  the inputs' out-of-sample errors of sales of earlier blocks, averaged over a small grid of
  the stack's settings (no choice to make on so few windows).
- 80 % intervals come from the last ``residual_sales`` out-of-sample log residuals of the same
  predictor (sales of earlier blocks, predicted before they happened), not from training
  residuals.
- At each cutoff a sample of tokens is valued as of the cutoff (the stack with the weights it
  has then, by ``stack_inputs``, as the served model values a token): the share of distinct
  estimates says whether tokens get numbers of their own.
- The ablation (``Variant``): the stack with inputs left out, or with image vectors' principal
  components beside the traits in the levels' premia, on the same sales.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
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
from valuation.frame import SalesFrame, token_groups
from valuation.history import from_days, to_days
from valuation.level import HedonicLevel, LevelParams
from valuation.metrics import ape_summary, average_precision, roc_auc
from valuation.model import FittedModel, ModelParams, fit
from valuation.rarity import Traits
from valuation.sales import SaleRecord
from valuation.stack import StackParams, stack_grid, weights_before
from valuation.stack_inputs import (
    DAY_MEDIAN,
    KNN_N,
    LEVEL,
    STACK_INPUTS,
    TYPE_LEVEL,
    TYPE_MEDIAN,
    combine,
    token_inputs,
)
from valuation.tokens import TokenSpace
from valuation.traits import primary_trait
from valuation.wash import REASONS, flag_counts, flag_sales

__all__ = [
    "KNN_N",
    "LEVEL",
    "STACK_INPUTS",
    "TYPE_LEVEL",
    "CutoffValues",
    "Variant",
    "WalkForwardConfig",
    "WalkForwardReport",
    "distinct_share",
    "run_walk_forward",
]

MODEL = "model"
KNN = "hedonic-knn, 30-day level"
BLEND = "mean of the two sales-count ones"
BASELINES = (
    DAY_MEDIAN,
    "median, previous 7 days",
    "median, last 20 sales",
    TYPE_MEDIAN,
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
    # the model is the mean of the online stacks of this grid (no choice, see valuation.stack)
    stack_memory: tuple[int, ...] = (100, 250)
    stack_ridge: tuple[float, ...] = (3.0, 10.0, 30.0)
    # distinct estimates among this many tokens valued at each cutoff (None: every token),
    # rounded to this many significant digits
    distinct_tokens: int | None = 300
    distinct_digits: int = 3
    knn_30d: bool = False  # also the hedonic-knn model with a 30-day level (10 more fits)
    image_components: int = 16  # an ablation's image vectors enter the premia as these many PCs

    def stack_grid(self) -> list[StackParams]:
        return [StackParams(memory=m, ridge=r) for m in self.stack_memory for r in self.stack_ridge]

    def level_grid(self) -> list[LevelParams]:
        return [
            LevelParams(n_sales=n, ridge_alpha=a, refit_days=self.refit_days)
            for n in self.level_sales
            for a in self.level_alphas
        ]


@dataclass(frozen=True)
class Variant:
    """One row of the ablation: the model with some inputs left out or added.

    ``inputs``: the stack's inputs (None: all of the model's). ``image_vectors``: token id →
    image vector; their first ``WalkForwardConfig.image_components`` principal components join
    the trait features of the levels' premia (the two levels are recomputed with them)."""

    name: str
    inputs: tuple[str, ...] | None = None
    image_vectors: Mapping[int, Sequence[float] | np.ndarray] | None = None


@dataclass(frozen=True)
class CutoffValues:
    """The sample of tokens valued at one cutoff (``_distinct_at``): each input's log price
    per token, the stack's weights (in the order of ``inputs``) and its log price."""

    cutoff: float  # days since the epoch
    token_ids: np.ndarray
    inputs: tuple[str, ...]
    weights: np.ndarray
    columns: dict[str, np.ndarray]
    model: np.ndarray


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
    # per reported cutoff: the sampled tokens valued by each input and the stack's weights
    at_cutoffs: list[CutoffValues] = field(default_factory=list, repr=False)

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
            "MdAPE per cutoff (n = sales scored; the level's N and ridge penalty chosen on the "
            "earlier windows; distinct = share of distinct estimates among the tokens valued "
            "at the cutoff)",
            f"{'cutoff':<12}{'n':>6}"
            + "".join(f"{short[n]:>10}" for n in names)
            + f"{'distinct':>10}  level",
        ]
        for w in self.windows:
            lines.append(
                f"{w['cutoff']:<12}{w['test_sales']:>6}"
                + "".join(f"{_pct(w['price'][n]['mdape']):>10}" for n in names)
                + f"{_pct(w['distinct_estimates'][MODEL]):>10}  {w['chosen']['level']}"
            )
        ahead = self.pooled["ahead_of_every_baseline"]
        lines += [
            "",
            f"pooled over {self.pooled['test_sales']} sales in {len(self.windows)} windows; "
            f"the model is ahead of every baseline at {ahead['cutoffs']} of {ahead['of']} "
            "cutoffs",
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
        d = self.pooled["distinct_estimates"]
        if d.get("cutoffs"):
            each = ", ".join(
                f"{_short(k)} {_pct(v)}" for k, v in d.items() if k not in ("tokens", "cutoffs")
            )
            lines += [
                "",
                f"distinct estimates: {d['tokens']} tokens valued at each of {d['cutoffs']} "
                f"cutoffs, prices to {self.config.distinct_digits} significant digits; mean "
                f"share distinct: {each}",
            ]
        ab = self.pooled.get("ablation")
        if ab:
            lines += [
                "",
                "ablation: the model with inputs changed or left out, same sales "
                f"(model MdAPE {_pct(ab['model_mdape'])})",
                f"{'variant':<58}{'MdAPE':>8}{'change':>8}{'p90 APE':>9}{'80% int':>9}{'ahead':>7}",
            ]
            for r in ab["rows"]:
                a = r["ahead_of_every_baseline"]
                lines.append(
                    f"{r['name'][:57]:<58}{_pct(r['mdape']):>8}"
                    f"{100 * r['mdape_change']:>+7.1f}p{_pct(r['p90_ape']):>9}"
                    f"{_pct(r['coverage']):>9}{a['cutoffs']:>4}/{a['of']}"
                )
            for name, why in ab["not_applicable"].items():
                lines.append(f"{name:<58}not applicable: {why}")
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
    TYPE_LEVEL: "type-lvl",
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


def distinct_share(values_eth: np.ndarray, digits: int = 3) -> float:
    """Distinct estimates per token valued: prices rounded to ``digits`` significant digits
    (a desk quotes no finer); 1.0 means every token got its own number."""
    v = np.asarray(values_eth, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if len(v) == 0:
        return float("nan")
    scale = 10.0 ** (digits - 1 - np.floor(np.log10(v)))
    return float(len(np.unique(np.round(v * scale) / scale)) / len(v))


def _knn_walk(
    model: FittedModel, frame: SalesFrame, lo: int, hi: int, window_of: np.ndarray
) -> np.ndarray:
    """A fitted model's log price for each scored sale ``[lo, hi)``, from earlier sales."""
    out = np.full(hi - lo, np.nan)
    for k in range(lo, hi):
        if window_of[k] >= 0:
            rec = frame.records[k]
            out[k - lo] = math.log(model.quote(rec.token_id, rec.time)[0])
    return out


def _fit_walk(
    sales: Sequence[SaleRecord],
    attributes: Mapping[int, Traits],
    cutoff: float,
    embeddings: Mapping[int, Sequence[float] | np.ndarray] | None,
    params: ModelParams,
) -> FittedModel:
    """The hedonic-knn model fit before the cutoff, reading every later sale as it comes."""
    model = fit(sales, attributes, as_of=from_days(cutoff), embeddings=embeddings, params=params)
    return model.with_sales(sales)


def run_walk_forward(
    sales: Sequence[SaleRecord],
    attributes: Mapping[int, Traits],
    *,
    config: WalkForwardConfig | None = None,
    embeddings: Mapping[int, Sequence[float] | np.ndarray] | None = None,
    params: ModelParams | None = None,
    ablation: Sequence[Variant] = (),
    progress: Callable[[str, int, int], None] | None = None,
) -> WalkForwardReport:
    """The walk-forward backtest (module docstring); ``ablation``: rows of the model with
    inputs changed, scored on the same sales; ``progress(stage, done, total)`` as fits end."""
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
    # the trait the market splits by, from the sales before the warm-up window only
    first = frame.count_before(bounds[0])
    group_by = primary_trait(
        attributes, zip(frame.tokens[:first].tolist(), frame.log_prices[:first], strict=True)
    )
    frame = frame.grouped_by(attributes, group_by)
    space = TokenSpace(attributes, embeddings, group_by=group_by)
    positions = np.array([space.index.get(int(t), -1) for t in frame.tokens], dtype=np.int64)
    features = np.c_[space.trait_features, space.scores, np.log(space.ranks)]
    hedonic = HedonicLevel(frame, features, positions)
    token_types = token_groups(space.ids.tolist(), attributes, group_by)
    grid = config.level_grid()
    default_level = LevelParams(refit_days=config.refit_days)
    stack_params = config.stack_grid()

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
    # the sample of tokens valued at each cutoff for the distinct-estimate share
    rng = np.random.default_rng(0)
    n_tok = len(space)
    valued = (
        np.arange(n_tok)
        if config.distinct_tokens is None or config.distinct_tokens >= n_tok
        else np.sort(rng.choice(n_tok, config.distinct_tokens, replace=False))
    )

    def empty() -> np.ndarray:
        return np.full(n, np.nan)

    cand = {p.label: empty() for p in grid}
    base = {b: empty() for b in BASELINES}
    type_level = empty()
    knn, knn_n = empty(), empty()
    params_n = replace(params, level_sales=params.level_sales or default_level.n_sales)
    params_30 = replace(params, level_sales=None)
    fits_total = len(bounds) * (1 + config.knn_30d) if config.with_knn else 0
    fits_done = 0
    liquidity_rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    windows_meta: list[dict[str, Any]] = []
    # every token's knn value at each reported cutoff (a sample), for the distinct share
    knn_tokens: dict[int, np.ndarray] = {}
    for w, (lo, hi) in enumerate(ranges):
        c = bounds[w]
        for p in grid:
            cand[p.label][lo:hi] = hedonic.predict(lo, hi, p)
        type_level[lo:hi] = hedonic.predict(lo, hi, default_level, groups=frame.types)
        base[BASELINES[0]][lo:hi] = median_of_days(frame, lo, hi, 1.0)
        base[BASELINES[1]][lo:hi] = median_of_days(frame, lo, hi, 7.0)
        base[BASELINES[2]][lo:hi] = median_of_last(frame, lo, hi, 20)
        base[BASELINES[3]][lo:hi] = median_of_type(frame, lo, hi, 20)
        # the index: the sales-count level under premia fit once at the cutoff
        index = hedonic.levels(hedonic.premia(c, default_level), default_level, hi)
        base[BASELINES[4]][lo:hi] = repeat_sales(frame, lo, hi, index)
        meta: dict[str, Any] = {"train_sales": frame.count_before(c)}
        if config.with_knn:
            walk_n = _fit_walk(sales, attributes, c, embeddings, params_n)
            knn_n[lo:hi] = _knn_walk(walk_n, frame, lo, hi, window_of)
            if w > 0:
                at = from_days(c)
                knn_tokens[w] = np.array(
                    [math.log(walk_n.quote(int(space.ids[i]), at)[0]) for i in valued]
                )
            if config.knn_30d:
                walk_30 = _fit_walk(sales, attributes, c, embeddings, params_30)
                knn[lo:hi] = _knn_walk(walk_30, frame, lo, hi, window_of)
            fits_done += 1 + config.knn_30d
            if progress:
                progress("fits", fits_done, fits_total)
            if w > 0:
                t1 = c + config.horizon_days
                p_all = walk_n.p_liquid_all(from_days(c))
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
    inputs_all: dict[str, np.ndarray] = {LEVEL: level, TYPE_LEVEL: type_level, **base}
    if config.with_knn:
        inputs_all[KNN_N] = knn_n
    stack_inputs = [name for name in STACK_INPUTS if name in inputs_all]

    def stack(
        names: Sequence[str], columns: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        matrix = np.column_stack([columns[name] for name in names])
        return stack_grid(matrix, actual, frame.visible, scored, stack_params)

    model_pred, model_weights = stack(stack_inputs, inputs_all)
    preds[MODEL] = model_pred
    if config.with_knn:
        if config.knn_30d:
            preds[KNN] = knn
        preds[KNN_N] = knn_n
    preds[LEVEL] = level
    preds[TYPE_LEVEL] = type_level
    if config.with_knn:
        preds[BLEND] = (knn_n + level) / 2.0
    preds.update(base)

    lows, highs = {}, {}
    for name, pr in preds.items():
        lows[name], highs[name] = _rolling_interval(frame, pr, scored, config)

    windows: list[dict[str, Any]] = []
    at_cutoffs: list[CutoffValues] = []
    for w in range(1, len(bounds)):
        sel = window_of == w
        lo, hi = ranges[w]
        c = bounds[w]
        weights = weights_before(
            np.column_stack([inputs_all[x] for x in stack_inputs]),
            actual,
            scored,
            frame.count_before(c),
            stack_params,
        )
        distinct, values = _distinct_at(
            hedonic,
            c,
            grid[level_picks[w]],
            default_level,
            token_types,
            valued,
            knn_tokens.get(w),
            stack_inputs,
            weights,
            config.distinct_digits,
            space.ids,
        )
        at_cutoffs.append(values)
        windows.append(
            {
                "cutoff": from_days(c).date().isoformat(),
                "end": from_days(float(frame.times[hi - 1])).date().isoformat()
                if hi > lo
                else None,
                "train_sales": windows_meta[w]["train_sales"],
                "test_sales": int(sel.sum()),
                "chosen": {"level": grid[level_picks[w]].label},
                # the stack's mean weight of each input over the window's sales
                "stack_weights": {
                    name: float(np.nanmean(model_weights[sel, j])) if sel.any() else float("nan")
                    for j, name in enumerate(stack_inputs)
                },
                "distinct_estimates": distinct,
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
        "ahead_of_every_baseline": _ahead(preds[MODEL], preds, actual, window_of, len(bounds)),
        "distinct_estimates": _mean_distinct(windows),
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
    if ablation:
        image_levels = {
            v.name: _image_levels(
                v.image_vectors,
                space,
                features,
                frame,
                positions,
                ranges,
                [grid[i] for i in level_picks],
                default_level,
                config.image_components,
            )
            for v in ablation
            if v.image_vectors is not None
        }
        pooled["ablation"] = _ablation(
            ablation,
            stack,
            stack_inputs,
            inputs_all,
            image_levels,
            preds,
            frame,
            scored,
            window_of,
            len(bounds),
            config,
        )
    notes = [
        "hyper-parameters chosen on earlier windows only; the level's grid: "
        + ", ".join(p.label for p in grid),
        "model: the mean of online stacks of "
        + ", ".join(stack_inputs)
        + " (weights refit on the out-of-sample errors of sales of earlier blocks; settings "
        + ", ".join(p.label for p in stack_params)
        + ")",
        "the hedonic-knn model's own settings (ModelParams) are fixed defaults; its ridge "
        "penalty is chosen on a holdout of its own training sales",
        (
            f'the market\'s group trait ("same type"): {group_by}, the trait whose groups '
            "explain most of the log prices of the sales before the warm-up window"
            if group_by
            else "no group trait (none that nearly every token has explains the prices): the "
            "same type's level is the collection's, and the same type's median prices nothing"
        ),
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
        at_cutoffs=at_cutoffs,
    )


def principal_components(vectors: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """The rows' coordinates on their first ``k`` principal components, scaled to unit
    variance (the premia's ridge standardises them anyway). A randomised SVD with two power
    iterations: 10,000 rows of 3,072 dims in a fraction of a second, not a full SVD's minutes."""
    x = np.asarray(vectors, dtype=float)
    x = x - x.mean(axis=0)
    k = min(k, *x.shape)
    probe = np.random.default_rng(seed).standard_normal((x.shape[1], min(k + 10, x.shape[1])))
    q = np.linalg.qr(x @ probe)[0]
    for _ in range(2):
        q = np.linalg.qr(x @ (x.T @ q))[0]
    u_small = np.linalg.svd(q.T @ x, full_matrices=False)[0]
    return np.asarray((q @ u_small)[:, :k] * np.sqrt(len(x)), dtype=float)


def _image_levels(
    vectors: Mapping[int, Sequence[float] | np.ndarray],
    space: TokenSpace,
    features: np.ndarray,
    frame: SalesFrame,
    positions: np.ndarray,
    ranges: Sequence[tuple[int, int]],
    level_params: Sequence[LevelParams],
    type_params: LevelParams,
    k: int = 16,
) -> dict[str, np.ndarray]:
    """The two levels again, with the image vectors' principal components beside the traits
    in the premia (each window under the level settings the model chose for it)."""
    dim = len(next(iter(vectors.values())))
    raw = np.zeros((len(space), dim))
    has = np.zeros(len(space), dtype=bool)
    for tok, vec in vectors.items():
        at = space.index.get(int(tok))
        if at is not None:
            raw[at], has[at] = np.asarray(vec, dtype=float), True
    pcs = np.zeros((len(space), k))
    pcs[has] = principal_components(raw[has], k)
    hedonic = HedonicLevel(frame, np.c_[features, pcs], positions)
    level = np.full(len(frame), np.nan)
    type_level = np.full(len(frame), np.nan)
    for (lo, hi), p in zip(ranges, level_params, strict=True):
        level[lo:hi] = hedonic.predict(lo, hi, p)
        type_level[lo:hi] = hedonic.predict(lo, hi, type_params, groups=frame.types)
    return {LEVEL: level, TYPE_LEVEL: type_level}


def _ahead(
    model: np.ndarray,
    preds: Mapping[str, np.ndarray],
    actual: np.ndarray,
    window_of: np.ndarray,
    n_windows: int,
) -> dict[str, int]:
    """At how many reported cutoffs the model's MdAPE is below every baseline's."""
    ahead = 0
    for w in range(1, n_windows):
        sel = window_of == w
        m = _mdape(actual[sel], model[sel])
        if all(m < _mdape(actual[sel], preds[b][sel]) for b in BASELINES):
            ahead += 1
    return {"cutoffs": ahead, "of": n_windows - 1}


def _distinct_at(
    hedonic: HedonicLevel,
    c: float,
    level_params: LevelParams,
    type_params: LevelParams,
    token_types: np.ndarray,
    valued: np.ndarray,
    knn_values: np.ndarray | None,
    inputs: Sequence[str],
    weights: np.ndarray,
    digits: int,
    token_ids: np.ndarray,
) -> tuple[dict[str, Any], CutoffValues]:
    """Every sampled token valued at the cutoff by the stack (its weights at the cutoff) and by
    each input alone: the share of distinct estimates, and the values themselves."""
    columns = token_inputs(hedonic, c, level_params, type_params, token_types, valued)
    if knn_values is not None:
        columns[KNN_N] = knn_values
    names = [x for x in inputs if x in columns]
    model = combine(columns, inputs, weights)
    out: dict[str, Any] = {"tokens": len(valued), MODEL: distinct_share(np.exp(model), digits)}
    for x in names:  # each input as it stands (the previous day may have had no sale)
        out[x] = distinct_share(np.exp(columns[x]), digits)
    values = CutoffValues(
        cutoff=c,
        token_ids=token_ids[valued],
        inputs=tuple(inputs),
        weights=weights,
        columns={x: columns[x] for x in names},
        model=model,
    )
    return out, values


def _mean_distinct(windows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    keys = [k for k in windows[0]["distinct_estimates"] if k != "tokens"] if windows else []
    return {
        "tokens": windows[0]["distinct_estimates"]["tokens"] if windows else 0,
        "cutoffs": len(windows),
        **{k: float(np.mean([w["distinct_estimates"][k] for w in windows])) for k in keys},
    }


NOT_APPLICABLE = {
    "no asks or bids": "the sales file holds sales only, no asks or bids: the backtest's model "
    "reads none, so there is nothing to take out"
}


def _ablation(
    variants: Sequence[Variant],
    stack: Callable[[Sequence[str], Mapping[str, np.ndarray]], tuple[np.ndarray, np.ndarray]],
    stack_inputs: Sequence[str],
    inputs_all: Mapping[str, np.ndarray],
    image_levels: Mapping[str, Mapping[str, np.ndarray]],
    preds: Mapping[str, np.ndarray],
    frame: SalesFrame,
    scored: np.ndarray,
    window_of: np.ndarray,
    n_windows: int,
    config: WalkForwardConfig,
) -> dict[str, Any]:
    """The model with each variant's inputs, on the same sales: pooled and per cutoff."""
    actual = frame.log_prices
    rep = window_of >= 1
    model_mdape = _mdape(actual[rep], preds[MODEL][rep])
    rows = []
    for v in variants:
        columns = {**inputs_all, **image_levels.get(v.name, {})}
        names = [x for x in (v.inputs or stack_inputs) if x in columns]
        if not names:
            raise ValueError(f"ablation {v.name!r}: none of its inputs is in this run")
        pred, _ = stack(names, columns)
        lo, hi = _rolling_interval(frame, pred, scored, config)
        summary = _price_summary(actual[rep], pred[rep], lo[rep], hi[rep], preds[MODEL][rep])
        rows.append(
            {
                "name": v.name,
                "inputs": names,
                "image_features": v.name in image_levels,
                "n": summary["n"],
                "mdape": summary["mdape"],
                "p90_ape": summary["p90_ape"],
                "coverage": summary["coverage"],
                "mdape_change": summary["mdape"] - model_mdape,
                "ahead_of_every_baseline": _ahead(pred, preds, actual, window_of, n_windows),
                "per_cutoff_mdape": [
                    _mdape(actual[window_of == w], pred[window_of == w])
                    for w in range(1, n_windows)
                ],
            }
        )
    return {"model_mdape": model_mdape, "rows": rows, "not_applicable": dict(NOT_APPLICABLE)}


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
