"""An online stack: a sale's price as a weighted combination (in log price) of several
predictors, the weights refit as sales arrive on the predictors' OUT-OF-SAMPLE errors on the
sales of earlier blocks.

Each predictor column is one model's log price prediction for every sale, made before the sale
(walk-forward). For sale ``k`` the weights minimise a Huber loss of the last ``memory`` sales
that sale ``k`` may see and that were predicted out of sample (``usable``), plus a ridge pull
towards equal weights; weights sum to one, so a stack of unbiased predictors stays unbiased. A
market whose one seller repeats one price (a sell-off) makes the predictor that reads that
price exact on the recent sales, and the stack follows it as those sales fill its memory.

``stack_grid`` averages the stacks of a small grid of settings instead of choosing one: the
choice on a few earlier windows was noisier than any one setting (the combination is linear,
so the mean stack is the inputs times the mean weights).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "StackParams",
    "fill_missing",
    "online_stack",
    "stack_grid",
    "stack_weights",
    "weights_before",
]


@dataclass(frozen=True)
class StackParams:
    memory: int = 200  # the last this many out-of-sample sales fit the weights
    ridge: float = 5.0  # pull towards equal weights, in units of (squared log error x sales)
    huber: float = 0.1  # log-price errors beyond this count linearly: the score is a median
    min_sales: int = 30  # fewer usable earlier sales: equal weights
    iterations: int = 8

    @property
    def label(self) -> str:
        return f"memory={self.memory} ridge={self.ridge:g}"


def fill_missing(preds: np.ndarray) -> np.ndarray:
    """Columns with nothing to say (NaN: no sale in the previous day) take column 0's value,
    so that a missing predictor adds nothing to the combination."""
    ref = preds[:, :1]
    return np.where(np.isfinite(preds), preds, ref)


def stack_weights(
    preds: np.ndarray, actual: np.ndarray, params: StackParams, recency: np.ndarray | None = None
) -> np.ndarray:
    """Weights (summing to one) of the columns of ``preds`` for the targets ``actual``: Huber
    regression of ``actual - preds[:, 0]`` on ``preds[:, i] - preds[:, 0]`` (i >= 1), every
    weight pulled towards ``1 / m`` by ``params.ridge``."""
    n, m = preds.shape
    equal = np.full(m, 1.0 / m)
    if n < params.min_sales or m == 1:
        return equal
    x = preds[:, 1:] - preds[:, :1]
    y = actual - preds[:, 0]
    base = np.ones(n) if recency is None else recency
    prior = equal[1:]
    w = base.copy()
    beta = prior.copy()
    for _ in range(params.iterations):
        gram = x.T @ (x * w[:, None]) + params.ridge * np.eye(m - 1)
        beta = np.linalg.solve(gram, x.T @ (w * y) + params.ridge * prior)
        r = np.abs(y - x @ beta)
        w = base * np.minimum(1.0, params.huber / np.maximum(r, 1e-9))
    return np.r_[1.0 - beta.sum(), beta]


def online_stack(
    preds: np.ndarray,
    actual: np.ndarray,
    visible: np.ndarray,
    usable: np.ndarray,
    params: StackParams,
) -> tuple[np.ndarray, np.ndarray]:
    """The stacked log price of every sale whose column 0 is known, and the weights used.

    ``preds`` (n sales x m predictors, NaN where a predictor has no answer), ``actual`` the
    sales' log prices, ``visible[k]``: sale ``k`` may read sales ``[0, visible[k])``,
    ``usable``: sales whose row of ``preds`` was predicted out of sample (their errors may fit
    the weights of later sales).
    """
    n, m = preds.shape
    filled = fill_missing(preds)
    out = np.full(n, np.nan)
    weights = np.full((n, m), np.nan)
    ok = usable & np.isfinite(filled).all(axis=1)
    pool = np.nonzero(ok)[0]
    cache: dict[int, np.ndarray] = {}
    for k in np.nonzero(np.isfinite(filled[:, 0]))[0]:
        end = int(np.searchsorted(pool, visible[k], side="left"))  # usable sales seen by k
        beta = cache.get(end)
        if beta is None:
            idx = pool[max(0, end - params.memory) : end]
            beta = stack_weights(filled[idx], actual[idx], params)
            cache[end] = beta
        weights[k] = beta
        out[k] = float(filled[k] @ beta)
    return out, weights


def stack_grid(
    preds: np.ndarray,
    actual: np.ndarray,
    visible: np.ndarray,
    usable: np.ndarray,
    grid: Sequence[StackParams],
) -> tuple[np.ndarray, np.ndarray]:
    """The mean of the online stacks of every setting in ``grid``, and its weights."""
    weights = np.mean([online_stack(preds, actual, visible, usable, p)[1] for p in grid], axis=0)
    return np.einsum("ij,ij->i", fill_missing(preds), weights), weights


def weights_before(
    preds: np.ndarray,
    actual: np.ndarray,
    usable: np.ndarray,
    end: int,
    grid: Sequence[StackParams],
) -> np.ndarray:
    """The grid's mean weights fit on the usable sales ``[0, end)``: those that value a token
    that is not selling, at a time after sale ``end - 1``."""
    filled = fill_missing(preds)
    pool = np.nonzero(usable[:end] & np.isfinite(filled[:end]).all(axis=1))[0]
    rows = [pool[-p.memory :] if len(pool) else pool for p in grid]
    return np.mean(
        [stack_weights(filled[r], actual[r], p) for r, p in zip(rows, grid, strict=True)], axis=0
    )
