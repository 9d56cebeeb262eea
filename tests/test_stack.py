"""The online stack, the type level, the distinct-estimate share and the image components, on
made-up data where the right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from valuation.frame import SalesFrame
from valuation.level import HedonicLevel, LevelParams, rolling_level
from valuation.stack import StackParams, fill_missing, online_stack, stack_grid, stack_weights
from valuation.walkforward import distinct_share, principal_components

EXACT = StackParams(memory=500, ridge=1e-9, huber=10.0, min_sales=10)


def test_the_weights_of_an_exact_combination_are_recovered() -> None:
    rng = np.random.default_rng(1)
    a, b, c = rng.normal(size=(3, 300))
    actual = 0.2 * a + 0.5 * b + 0.3 * c
    w = stack_weights(np.c_[a, b, c], actual, EXACT)
    assert w == pytest.approx([0.2, 0.5, 0.3], abs=1e-6)
    # the pull towards equal weights wins where there is nothing to learn from
    few = stack_weights(np.c_[a, b, c][:5], actual[:5], EXACT)
    assert few == pytest.approx([1 / 3, 1 / 3, 1 / 3])


def test_a_missing_predictor_takes_column_zeros_value() -> None:
    preds = np.array([[1.0, np.nan, 3.0], [2.0, 5.0, np.nan]])
    assert fill_missing(preds).tolist() == [[1.0, 1.0, 3.0], [2.0, 5.0, 2.0]]


def _sell_off(n: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A noisy model and a predictor that is exact from sale 200 on (a one-price sell-off)."""
    rng = np.random.default_rng(2)
    actual = rng.normal(0.0, 0.3, n)
    model = actual + rng.normal(0.0, 0.2, n)
    naive = np.where(np.arange(n) >= 200, actual, actual + rng.normal(0.0, 0.6, n))
    visible = np.arange(n)  # every sale its own block
    return np.c_[model, naive], actual, visible


def test_the_stack_follows_a_predictor_that_becomes_exact() -> None:
    preds, actual, visible = _sell_off()
    usable = np.ones(len(actual), bool)
    out, weights = online_stack(preds, actual, visible, usable, StackParams(memory=100, ridge=0.1))
    assert weights[150, 1] < 0.3  # the noisy naive answer counts little before
    late = np.abs(out[300:] - actual[300:])  # its exact sales fill the stack's memory
    assert np.median(late) < 0.01
    assert np.median(np.abs(preds[300:, 0] - actual[300:])) > 0.1
    assert weights.sum(axis=1) == pytest.approx(np.ones(len(actual)))


def test_the_stack_reads_only_earlier_blocks_and_usable_sales() -> None:
    preds, actual, visible = _sell_off()
    visible = visible.copy()
    visible[301] = 300  # sales 300 and 301 share a block
    usable = np.ones(len(actual), bool)
    out, _ = online_stack(preds, actual, visible, usable, StackParams())
    changed = actual.copy()
    changed[300:] += 5.0  # the same block and later ones
    again, _ = online_stack(preds, changed, visible, usable, StackParams())
    assert np.array_equal(out[:302], again[:302])
    assert not np.allclose(out[302:], again[302:])
    # a sale not predicted out of sample never fits a weight
    usable[:150] = False
    _, w = online_stack(preds, actual, visible, usable, StackParams(min_sales=30))
    assert w[170] == pytest.approx([0.5, 0.5])  # 20 usable sales: too few, equal weights


def test_the_grid_stack_is_the_mean_of_its_stacks() -> None:
    preds, actual, visible = _sell_off()
    usable = np.ones(len(actual), bool)
    grid = [StackParams(memory=50, ridge=1.0), StackParams(memory=200, ridge=30.0)]
    mean, _ = stack_grid(preds, actual, visible, usable, grid)
    each = [online_stack(preds, actual, visible, usable, p)[0] for p in grid]
    assert mean == pytest.approx(np.mean(each, axis=0))


def test_distinct_share_counts_prices_to_three_digits() -> None:
    assert distinct_share(np.array([1.0, 1.001, 1.0004, 2.0, 0.12345, 0.1234])) == 0.5
    assert distinct_share(np.array([5.0, 50.0, 500.0])) == 1.0
    assert np.isnan(distinct_share(np.array([np.nan])))


def test_principal_components_find_a_planted_plane() -> None:
    rng = np.random.default_rng(3)
    basis = np.linalg.qr(rng.normal(size=(300, 2)))[0]  # a plane in 300 dims
    coords = rng.normal(size=(2000, 2)) * [5.0, 2.0]
    x = coords @ basis.T + rng.normal(0.0, 0.01, (2000, 300)) + 7.0
    pcs = principal_components(x, 2)
    assert pcs.shape == (2000, 2)
    assert pcs.var(axis=0) == pytest.approx([1.0, 1.0], rel=1e-6)
    # the two components span the planted coordinates
    fit = np.linalg.lstsq(np.c_[pcs, np.ones(2000)], coords, rcond=None)[1]
    assert fit.sum() < 1e-3 * (coords**2).sum()


def test_the_type_level_is_the_median_of_the_own_types_earlier_sales() -> None:
    from datetime import UTC, datetime, timedelta

    from valuation import SaleRecord

    rng = np.random.default_rng(4)
    attributes = {t: {"type": "a" if t < 50 else "b"} for t in range(100)}
    start = datetime(2020, 1, 1, tzinfo=UTC)
    sales = [
        SaleRecord(
            time=start + timedelta(hours=k),
            token_id=(tok := int(rng.integers(100))),
            price_eth=float(np.exp((0.0 if tok < 50 else 2.0) + rng.normal(0, 0.1))),
            seller="0x" + "1" * 40,
            buyer="0x" + "2" * 40,
            tx_hash=f"0x{k:064x}",
            block=1 + k // 2,  # two sales a block
        )
        for k in range(400)
    ]
    frame = SalesFrame.build(sales, attributes, group_by="type")
    hedonic = HedonicLevel(frame, np.zeros((100, 1)), frame.tokens.astype(np.int64))
    params = LevelParams(n_sales=10)
    got = hedonic.type_levels(np.zeros(100), params, 0, len(frame), frame.types)
    for k in range(len(frame)):
        own = np.nonzero(
            (frame.types == frame.types[k]) & (np.arange(len(frame)) < frame.visible[k])
        )[0]
        want = np.median(frame.log_prices[own[-10:]]) if len(own) >= params.min_sales else np.nan
        assert got[k] == pytest.approx(want, nan_ok=True)
    # and the whole-market level sits between the two types' levels
    whole = rolling_level(frame.log_prices, frame.visible, 10, 5)
    assert (
        np.nanmean(got[frame.types == "a"])
        < np.nanmean(whole)
        < np.nanmean(got[frame.types == "b"])
    )
    # every token valued at once: its own type's level where the premia are zero
    values = hedonic.value_tokens(
        float(frame.times[-1]) + 1.0, params, frame.types, np.array(["a"] * 50 + ["b"] * 50)
    )
    assert values[:50] == pytest.approx(np.median(frame.log_prices[frame.types == "a"][-10:]))
    assert values[50:] == pytest.approx(np.median(frame.log_prices[frame.types == "b"][-10:]))
