"""The served model is the backtest's stack: on the real CryptoPunks sales its price for a token
is the walk-forward's "model" at the same cutoff and weights, its interval comes from the stack's
own out-of-sample residuals, its explanation names each input and weight, and the worker stores
it."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import select

from store.models import Valuation
from tests.test_valuation_cache import CHAIN, CONTRACT, _traits, ctx  # noqa: F401
from valuation import SaleRecord
from valuation.history import to_days
from valuation.level import LevelParams
from valuation.served import INPUT_KEYS, ServedStack, fit_served
from valuation.stack_inputs import STACK_INPUTS
from valuation.walkforward import CutoffValues, WalkForwardConfig, run_walk_forward
from worker.context import WorkerContext
from worker.valuing import ModelCache, _Timer, _value

CUTOFF = date(2018, 9, 1)
AS_OF = datetime(CUTOFF.year, CUTOFF.month, CUTOFF.day, tzinfo=UTC)
# the backtest at one cutoff, its level left at the default (no nested choice to make)
ONE_CUTOFF = WalkForwardConfig(
    level_sales=(LevelParams().n_sales,),
    level_alphas=(LevelParams().ridge_alpha,),
    cutoffs=(CUTOFF,),
    step_days=30.0,
    window_days=30.0,
    distinct_tokens=40,
)


@pytest.fixture(scope="module")
def served(sales: list[SaleRecord], attributes: dict[int, dict[str, str]]) -> ServedStack:
    return fit_served(sales, attributes, as_of=AS_OF)


@pytest.fixture(scope="module")
def at_cutoff(sales: list[SaleRecord], attributes: dict[int, dict[str, str]]) -> CutoffValues:
    report = run_walk_forward(sales, attributes, config=ONE_CUTOFF)
    (values,) = report.at_cutoffs
    return values


def test_the_service_uses_the_backtests_settings(served: ServedStack) -> None:
    assert served.params.level == LevelParams(refit_days=ONE_CUTOFF.refit_days)
    assert list(served.params.grid) == ONE_CUTOFF.stack_grid()
    assert served.params.interval == ONE_CUTOFF.interval
    assert served.inputs == STACK_INPUTS
    assert served.group_by == "type"
    assert served.model_version.startswith("stack-")
    assert served.knn.model_version.startswith("hedonic-knn-")


def test_the_served_price_is_the_backtests_stack(
    served: ServedStack, at_cutoff: CutoffValues, sales: list[SaleRecord]
) -> None:
    assert to_days(AS_OF) == at_cutoff.cutoff
    assert at_cutoff.inputs == served.inputs
    # the backtest's weights came from its own walk (a knn fit per window); with them, the
    # served model must give the backtest's prices, input by input
    as_backtest = replace(served, weights=at_cutoff.weights).with_sales(sales)
    for j, token in enumerate(at_cutoff.token_ids):
        values, _ = as_backtest.log_inputs(int(token), AS_OF)
        for name in at_cutoff.inputs:
            expected = at_cutoff.columns[name][j]
            if math.isnan(expected):
                assert math.isnan(values[name]), name
            else:
                assert values[name] == pytest.approx(expected, abs=1e-6), name
        v = as_backtest.value(int(token), AS_OF)
        assert math.log(v.price_eth) == pytest.approx(at_cutoff.model[j], abs=1e-6)


def test_the_explanation_names_each_input_and_weight(
    served: ServedStack, sales: list[SaleRecord]
) -> None:
    walk = served.with_sales(sales)
    token = next(s.token_id for s in reversed(sales) if s.time < AS_OF)
    v = walk.value(token, AS_OF)
    e = v.explanation
    stack = e["stack"]
    assert [x["name"] for x in stack] == list(STACK_INPUTS)
    assert [x["input"] for x in stack] == [INPUT_KEYS[x] for x in STACK_INPUTS]
    assert sum(x["weight"] for x in stack) == pytest.approx(1.0, abs=1e-5)
    assert all(x["value_eth"] > 0 for x in stack)
    # the price is the inputs' weighted geometric mean
    log_price = sum(x["weight"] * math.log(x["value_eth"]) for x in stack)
    assert math.log(v.price_eth) == pytest.approx(log_price, abs=1e-5)
    knn = {x["input"]: x["value_eth"] for x in stack}["hedonic_knn"]
    assert knn == pytest.approx(walk.knn.value(token, AS_OF).price_eth)
    assert e["model"]["name"] == "stack" and e["model"]["version"] == v.model_version
    assert e["model"]["hedonic_knn_version"] == served.knn.model_version
    # everything the hedonic-knn explanation had stays
    assert {"market", "comparables", "drivers", "rarity", "own_trades"} <= set(e)
    assert e["comparables"] and e["market"]["level_eth"] > 0
    assert v.low_eth < v.price_eth < v.high_eth
    # against the market, the stack's price is what is compared, the knn input's beside it
    assert e["relative_to_market"] == pytest.approx(
        v.price_eth / e["market"]["level_eth"], rel=1e-3
    )
    knn_relative = walk.knn.value(token, AS_OF).explanation["relative_to_market"]
    assert e["hedonic_knn_relative_to_market"] == knn_relative


def test_the_interval_comes_from_out_of_sample_residuals(
    served: ServedStack, sales: list[SaleRecord], attributes: dict[int, dict[str, str]]
) -> None:
    assert served.interval_source == "stack out-of-sample residuals"
    assert len(served.residuals) == served.params.residual_sales
    q = np.quantile(served.residuals, [0.1, 0.9])
    assert (served.log_low, served.log_high) == pytest.approx(tuple(q))
    v = served.with_sales(sales).value(sales[0].token_id, AS_OF)
    assert math.log(v.high_eth / v.price_eth) == pytest.approx(served.log_high)
    # recent sales far noisier than the training fit: the served interval widens with them
    # (the knn's training holdout sees a smaller share of them)
    rng = np.random.default_rng(3)
    recent = [i for i, s in enumerate(sales) if s.time < AS_OF][-150:]
    noisy = list(sales)
    for i in recent:
        noisy[i] = replace(sales[i], price_eth=sales[i].price_eth * math.exp(rng.normal(0, 0.8)))
    loud = fit_served(noisy, attributes, as_of=AS_OF)
    width = served.log_high - served.log_low
    assert loud.log_high - loud.log_low > 1.5 * width
    knn_widening = (loud.knn.price.q_high["all"] - loud.knn.price.q_low["all"]) / (
        served.knn.price.q_high["all"] - served.knn.price.q_low["all"]
    )
    assert (loud.log_high - loud.log_low) / width > knn_widening


def test_a_new_sale_moves_the_valuation_and_nothing_later_does(
    served: ServedStack, sales: list[SaleRecord]
) -> None:
    before = [s for s in sales if s.time < AS_OF]
    token = before[-1].token_id
    at = AS_OF + timedelta(hours=2)
    base = served.with_sales(before).value(token, at)
    # anything at or after the valuation time is not read
    block = (before[-1].block or 0) + 1
    later = [*before, replace(before[-1], time=at, block=block + 1, price_eth=500.0)]
    assert served.with_sales(later).value(token, at).to_dict() == base.to_dict()
    # a sale just before it moves the price at once, with the fitted weights unchanged
    sale = replace(before[-1], time=at - timedelta(hours=1), block=block, price_eth=500.0)
    moved = served.with_sales([*before, sale])
    assert moved.weights is served.weights and moved.premium is served.premium
    assert moved.value(token, at).price_eth > base.price_eth


def test_the_worker_stores_the_stacks_valuation(ctx: WorkerContext) -> None:  # noqa: F811
    cache = ModelCache(refit_interval_s=3600.0)
    traits = {a["trait_type"]: a["value"] for a in _traits(4)}
    vid = _value(ctx, CHAIN, CONTRACT, 4, None, traits, "test", _Timer(), cache)
    with ctx.factory() as s:
        row = s.scalars(select(Valuation).where(Valuation.id == vid)).one()
    assert row.inputs["method"] == "fitted"
    assert row.model_version.startswith("stack-")
    assert row.model_version == row.inputs["fit_version"]
    stack = row.explanation["stack"]
    assert [x["name"] for x in stack] == list(STACK_INPUTS)
    assert sum(x["weight"] for x in stack) == pytest.approx(1.0, abs=1e-5)
    # no asks or bids in this market: the stored price is the stack's own
    log_price = sum(x["weight"] * math.log(x["value_eth"]) for x in stack)
    assert math.log(float(row.price_eth)) == pytest.approx(log_price, abs=1e-5)
    assert float(row.price_low_eth) < float(row.price_eth) < float(row.price_high_eth)
