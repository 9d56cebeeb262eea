"""Retrieval quality on labelled tokens: mean average precision at k of trait-sharing neighbours.

For each query the k most similar *other* tokens (mean-centred cosine, as in
:func:`nftvision.similarity.analyse` with ``center=True``) are ranked; a neighbour is relevant
when it shares the query's group. AP@k averages precision at each relevant rank, divided by
``min(k, relevant tokens that exist)``; the mean is over groups (each group's mean over its
queries), so a majority group cannot carry the score.
"""

from __future__ import annotations

import numpy as np


def centred_unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    x = x - x.mean(axis=0, keepdims=True)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def map_at_k(vectors: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Group-balanced mean AP@k of ``vectors`` whose groups are ``labels``."""
    x = centred_unit(vectors)
    labels = np.asarray(labels)
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    k = min(k, len(x) - 1)
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(sims, top, axis=1).argsort(axis=1)[:, ::-1]
    ranked = np.take_along_axis(top, order, axis=1)
    hits = labels[ranked] == labels[:, None]
    precision = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    possible = np.minimum(k, counts[inverse] - 1)
    ap = np.where(possible > 0, (precision * hits).sum(axis=1) / np.maximum(possible, 1), np.nan)
    per_group = [np.nanmean(ap[labels == g]) for g in np.unique(labels) if (labels == g).sum() > 1]
    return float(np.mean(per_group))
