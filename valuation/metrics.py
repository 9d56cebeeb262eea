"""Scoring rules for the backtest, written out so that each is checkable by hand."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["ape_summary", "average_precision", "brier_score", "roc_auc"]


def _midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given the mean of the ranks they span."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    ranks = np.empty(len(x), dtype=float)
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def _binary(labels: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=float).ravel()
    s = np.asarray(scores, dtype=float).ravel()
    if y.shape != s.shape:
        raise ValueError("labels and scores differ in length")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("labels must be 0 or 1")
    return y, s


def roc_auc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve by the Mann–Whitney rank sum (ties count one half).

    NaN when only one class is present.
    """
    y, s = _binary(labels, scores)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _midranks(s)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def average_precision(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the precision–recall curve as average precision.

    ``sum over thresholds of (recall_k - recall_{k-1}) * precision_k``, with tied scores taken
    as one threshold (so the order of tied items does not matter). NaN without positives.
    """
    y, s = _binary(labels, scores)
    n_pos = y.sum()
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    tp = np.cumsum(y_sorted)
    # the last index of every run of equal scores is where a threshold sits
    last = np.r_[np.nonzero(np.diff(s_sorted))[0], len(s_sorted) - 1]
    tp_at = tp[last]
    precision = tp_at / (last + 1)
    recall = tp_at / n_pos
    recall_prev = np.r_[0.0, recall[:-1]]
    return float(np.sum((recall - recall_prev) * precision))


def brier_score(labels: ArrayLike, probabilities: ArrayLike) -> float:
    """Mean squared difference between the outcome (0/1) and its predicted probability."""
    y, p = _binary(labels, probabilities)
    if len(y) == 0:
        return float("nan")
    return float(np.mean((p - y) ** 2))


def ape_summary(actual: Sequence[float] | np.ndarray, predicted: ArrayLike) -> dict[str, float]:
    """Absolute percentage errors |pred − actual| / actual: median, 90th percentile, and the
    shares within ±10 % and ±25 %. Pairs whose prediction is missing (NaN) are skipped; ``n``
    says how many were scored."""
    a = np.asarray(actual, dtype=float).ravel()
    p = np.asarray(predicted, dtype=float).ravel()
    if a.shape != p.shape:
        raise ValueError("actual and predicted differ in length")
    if np.any(a <= 0):
        raise ValueError("actual prices must be positive")
    ok = np.isfinite(p)
    ape = np.abs(p[ok] - a[ok]) / a[ok]
    if len(ape) == 0:
        nan = float("nan")
        return {"n": 0, "mdape": nan, "p90_ape": nan, "within_10": nan, "within_25": nan}
    return {
        "n": len(ape),
        "mdape": float(np.median(ape)),
        "p90_ape": float(np.quantile(ape, 0.9)),
        "within_10": float(np.mean(ape <= 0.10)),
        "within_25": float(np.mean(ape <= 0.25)),
    }
