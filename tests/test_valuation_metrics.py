"""Backtest metrics and the small linear models on cases worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from valuation.linear import fit_logistic, fit_poisson, fit_ridge, sigmoid
from valuation.metrics import ape_summary, average_precision, brier_score, roc_auc


def test_roc_auc_counts_correctly_ordered_pairs() -> None:
    # pairs (pos, neg): (0.35, 0.1) ok, (0.35, 0.4) wrong, (0.8, ·) ok twice → 3/4
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert roc_auc([1, 0], [0.5, 0.5]) == pytest.approx(0.5)
    assert roc_auc([0, 1, 1], [3, 2, 1]) == pytest.approx(0.0)
    assert math.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_average_precision_is_recall_weighted_precision() -> None:
    # ranked: 0.8 (+), 0.4 (-), 0.35 (+): 0.5 * 1/1 + 0.5 * 2/3
    assert average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(5 / 6)
    # a tie is one threshold, whatever the order of the tied items
    assert average_precision([1, 0], [0.5, 0.5]) == pytest.approx(0.5)
    assert average_precision([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    assert math.isnan(average_precision([0, 0], [0.1, 0.2]))


def test_brier_score() -> None:
    assert brier_score([1, 0], [0.8, 0.3]) == pytest.approx((0.04 + 0.09) / 2)
    with pytest.raises(ValueError):
        brier_score([2, 0], [0.1, 0.1])


def test_ape_summary() -> None:
    m = ape_summary([1, 2, 4, 10], [1.05, 2.6, 4, 5])  # APEs 0.05, 0.3, 0, 0.5
    assert m["n"] == 4
    assert m["mdape"] == pytest.approx(0.175)
    assert m["p90_ape"] == pytest.approx(0.44)  # linear interpolation between 0.3 and 0.5
    assert m["within_10"] == pytest.approx(0.5)
    assert m["within_25"] == pytest.approx(0.5)
    skipped = ape_summary([1, 2], [np.nan, 2.2])
    assert skipped["n"] == 1 and skipped["mdape"] == pytest.approx(0.1)


def test_ridge_without_penalty_recovers_a_linear_law() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)) * [1.0, 10.0, 0.1]
    y = 2.0 + x @ np.array([0.5, -0.2, 3.0])
    coef, intercept = fit_ridge(x, y, alpha=1e-9).raw_coefficients()
    assert coef == pytest.approx([0.5, -0.2, 3.0], abs=1e-6)
    assert intercept == pytest.approx(2.0, abs=1e-6)
    shrunk, _ = fit_ridge(x, y, alpha=1e4).raw_coefficients()
    assert np.all(np.abs(shrunk) < np.abs(coef))


def test_logistic_regression_reaches_its_optimum() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 2))
    y = (rng.random(500) < sigmoid(-1.0 + 2.0 * x[:, 0])).astype(float)
    alpha = 0.5
    model = fit_logistic(x, y, alpha=alpha)
    # first-order condition in the standardised space: Z'(p - y) + alpha * beta = 0
    z = (x - model.mean) / model.scale
    p = sigmoid(model.decision(x))
    assert np.abs(z.T @ (p - y) + alpha * model.coef).max() < 1e-6
    assert abs(np.sum(p - y)) < 1e-6
    coef, _ = model.raw_coefficients()
    assert coef[0] > 1.0 and abs(coef[1]) < 0.5


def test_poisson_regression_recovers_a_rate_law() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4000, 2))
    counts = rng.poisson(np.exp(-0.5 + 0.8 * x[:, 0]))
    model = fit_poisson(x, counts, alpha=1e-6)
    coef, intercept = model.raw_coefficients()
    assert coef[0] == pytest.approx(0.8, abs=0.08)
    assert abs(coef[1]) < 0.08
    assert intercept == pytest.approx(-0.5, abs=0.08)
    # the fitted rates add up to the observed count (the intercept's score equation)
    assert np.exp(model.decision(x)).sum() == pytest.approx(counts.sum(), rel=1e-6)
