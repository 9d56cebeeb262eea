"""Walk-forward backtest: fit before a cutoff, then value every later sale and every token.

Each sale after the cutoff is valued with the sales strictly before its own time (the market
level and the comparables move with the market; the fitted parameters stay those of the
cutoff). Liquidity is scored once, at the cutoff, for every token of the collection, against
whether the token traded more than twice in the horizon after it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np

from valuation.history import History, to_days
from valuation.metrics import ape_summary, average_precision, brier_score, roc_auc
from valuation.model import ModelParams, fit
from valuation.rarity import Traits
from valuation.sales import SaleRecord

__all__ = ["BacktestReport", "run_backtest"]


@dataclass
class BacktestReport:
    cutoff: str
    horizon_days: float
    model_version: str
    train_sales: int
    test_sales: int
    price: dict[str, dict[str, float]]
    interval_coverage: float
    liquidity: dict[str, dict[str, float]]
    liquidity_tokens: int
    liquidity_positives: int
    labels_complete: bool
    label_window_end: str
    seconds: float
    notes: list[str] = field(default_factory=list)
    train_wash_excluded: int = 0  # training sales left out as wash trades (valuation.wash)

    def to_dict(self) -> dict[str, Any]:
        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, list):
                return [clean(x) for x in v]
            return v

        return dict(clean(dict(self.__dict__)))

    def render(self) -> str:
        def pct(v: float) -> str:
            return "   n/a" if not math.isfinite(v) else f"{100 * v:5.1f}%"

        def num(v: float) -> str:
            return "   n/a" if not math.isfinite(v) else f"{v:7.4f}"

        lines = [
            f"backtest cutoff {self.cutoff}  model {self.model_version}",
            f"trained on {self.train_sales} sales; {self.test_sales} sales after the cutoff",
            "",
            "price (each sale valued from the sales strictly before it)",
            f"{'predictor':<34}{'n':>6}{'MdAPE':>8}{'p90 APE':>9}{'±10%':>8}{'±25%':>8}",
        ]
        for name, m in self.price.items():
            lines.append(
                f"{name:<34}{int(m['n']):>6}{pct(m['mdape']):>8}{pct(m['p90_ape']):>9}"
                f"{pct(m['within_10']):>8}{pct(m['within_25']):>8}"
            )
        lines.append(
            f"model 80% interval holds the price in {pct(self.interval_coverage)} of sales"
        )
        lines += [
            "",
            f"liquidity: P(> 2 trades in {self.horizon_days:g} days after the cutoff), "
            f"{self.liquidity_tokens} tokens, {self.liquidity_positives} liquid"
            + ("" if self.labels_complete else " (labels cut short by the data's end)"),
            f"{'score':<34}{'ROC-AUC':>9}{'PR-AUC':>9}{'Brier':>9}",
        ]
        for name, m in self.liquidity.items():
            lines.append(
                f"{name:<34}{num(m['roc_auc']):>9}{num(m['pr_auc']):>9}{num(m['brier']):>9}"
            )
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _at_midnight(d: date | datetime) -> datetime:
    if isinstance(d, datetime):
        return d if d.tzinfo else d.replace(tzinfo=UTC)
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def run_backtest(
    sales: Sequence[SaleRecord],
    attributes: Mapping[int, Traits],
    cutoff: date | datetime,
    *,
    horizon_days: float = 180.0,
    embeddings: Mapping[int, Sequence[float] | np.ndarray] | None = None,
    params: ModelParams | None = None,
) -> BacktestReport:
    started = time.perf_counter()
    params = params or ModelParams(horizon_days=horizon_days)
    if params.horizon_days != horizon_days:
        params = ModelParams(**{**params.__dict__, "horizon_days": horizon_days})
    as_of = _at_midnight(cutoff)
    model = fit(sales, attributes, as_of=as_of, embeddings=embeddings, params=params)
    walk = model.with_sales(sales)  # the model's view: without the wash-flagged sales
    # every priced sale is scored, and the baselines read them all
    h = History(sales, min_price=params.min_price_eth)
    start = h.count_before(to_days(as_of))
    notes: list[str] = []
    if walk.excluded:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(walk.excluded.items()) if k != "sales")
        notes.append(
            f"{walk.excluded['sales']} wash-flagged sales ({reasons}) left out of the model's "
            "fit and comparables, still scored"
        )
    skipped_unknown = 0
    actual, pred, lows, highs, market7, last = [], [], [], [], [], []
    for k in range(start, len(h)):
        rec = h.records[k]
        if rec.token_id not in model.space.index:
            skipped_unknown += 1
            continue
        t = float(h.times[k])
        p, lo, hi = walk.quote(rec.token_id, rec.time)
        actual.append(rec.price_eth)
        pred.append(p)
        lows.append(lo)
        highs.append(hi)
        w_lo, w_hi = h.window(t, 7.0)
        market7.append(float(np.exp(np.median(h.log_prices[w_lo:w_hi]))) if w_hi > w_lo else np.nan)
        prev = h.last_sale_before(rec.token_id, t)
        last.append(float(np.exp(h.log_prices[prev])) if prev is not None else np.nan)
    a, pr = np.array(actual), np.array(pred)
    m7, ls = np.array(market7), np.array(last)
    price = {"model": ape_summary(a, pr)}
    has7, hasl = np.isfinite(m7), np.isfinite(ls)
    price["market median, previous 7 days"] = ape_summary(a, m7)
    price["  model on the same sales"] = ape_summary(a[has7], pr[has7])
    price["token's last sale"] = ape_summary(a, ls)
    price["  model on the same sales "] = ape_summary(a[hasl], pr[hasl])
    inside = (a >= np.array(lows)) & (a <= np.array(highs))
    coverage = float(inside.mean()) if len(a) else float("nan")
    dropped = sum(1 for s in sales if to_days(s.time) >= to_days(as_of)) - len(h) + start
    if dropped:
        notes.append(
            f"{dropped} sales under {params.min_price_eth:g} ETH after the cutoff were not scored"
        )
    if skipped_unknown:
        notes.append(f"{skipped_unknown} sales of tokens without attributes were not scored")

    # liquidity, once at the cutoff, for every token
    t0 = to_days(as_of)
    t1 = t0 + horizon_days
    space = model.space
    all_p = walk.p_liquid_all(as_of)
    p_liq = np.array([all_p[int(t)] for t in space.ids])
    counts_after = np.array([h.trades_in(int(tok), t0, t1) for tok in space.ids])
    counts_before = np.array([h.trades_in(int(tok), -math.inf, t0) for tok in space.ids])
    y = (counts_after > params.liquid_trades).astype(float)
    base_rate = model.liquidity.base_rate
    liquidity = {
        "model": {
            "roc_auc": roc_auc(y, p_liq),
            "pr_auc": average_precision(y, p_liq),
            "brier": brier_score(y, p_liq),
        },
        "pre-cutoff trade count": {
            "roc_auc": roc_auc(y, counts_before),
            "pr_auc": average_precision(y, counts_before),
            "brier": float("nan"),
        },
        "constant pre-cutoff rate": {
            "roc_auc": roc_auc(y, np.full(len(y), base_rate)),
            "pr_auc": average_precision(y, np.full(len(y), base_rate)),
            "brier": brier_score(y, np.full(len(y), base_rate)),
        },
    }
    data_end = float(h.times[-1]) if len(h) else t0
    return BacktestReport(
        cutoff=as_of.date().isoformat(),
        horizon_days=horizon_days,
        model_version=model.model_version,
        train_sales=model.training_sales,
        train_wash_excluded=int(model.excluded.get("sales", 0)),
        test_sales=len(a),
        price=price,
        interval_coverage=coverage,
        liquidity=liquidity,
        liquidity_tokens=len(y),
        liquidity_positives=int(y.sum()),
        labels_complete=data_end >= t1 - 1.0,
        label_window_end=datetime.fromtimestamp(t1 * 86400.0, tz=UTC).date().isoformat(),
        seconds=round(time.perf_counter() - started, 2),
        notes=notes,
    )
