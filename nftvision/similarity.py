"""The blog's analysis: are images more alike within a group than across groups?

Given unit vectors per group (collections, or punk types) this computes

* the mean cosine within each group (self-pairs excluded) and across each pair of groups;
* the **separation**: mean within minus mean across;
* **d′**: that difference in units of spread, ``(μ_w − μ_a) / sqrt((σ²_w + σ²_a) / 2)`` over the
  distributions of pair similarities;
* the **balanced 1-nearest-neighbour accuracy** (leave-one-out) of telling the groups apart: the
  mean over groups of the share of members whose nearest other image is in the same group.

Every summary weighs groups (and pairs of groups) equally, so 6,000 male punks do not drown nine
aliens. Pooled CNN features are all positive, so raw cosines sit near 1 for every pair; with
``center=True`` the mean vector of all samples is subtracted and rows re-normalised first, and
the report says which was used. Pure numpy; memory stays bounded by working in row blocks.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

_BLOCK_ELEMS = 1 << 24  # similarity entries materialised at once (64 MiB of float32)


@dataclass(frozen=True)
class _Moments:
    count: float
    total: float
    total_sq: float

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan

    @property
    def var(self) -> float:
        if not self.count:
            return math.nan
        return max(self.total_sq / self.count - self.mean**2, 0.0)


@dataclass(frozen=True)
class SimilarityReport:
    label: str
    groups: list[str]
    sizes: dict[str, int]
    centered: bool
    matrix: np.ndarray  # (k, k): diagonal = within means, off-diagonal = across means
    within: dict[str, float]
    across: dict[tuple[str, str], float]
    separation: float
    d_prime: float
    pair_separation: dict[tuple[str, str], float]
    pair_d_prime: dict[tuple[str, str], float]
    nn1_recall: dict[str, float]
    nn1_balanced_accuracy: float
    chance: float

    def to_dict(self) -> dict[str, Any]:
        def pairs(d: Mapping[tuple[str, str], float]) -> dict[str, float | None]:
            return {f"{a}|{b}": _clean(v) for (a, b), v in d.items()}

        return {
            "label": self.label,
            "groups": list(self.groups),
            "sizes": dict(self.sizes),
            "centered": self.centered,
            "matrix": [[_clean(v) for v in row] for row in self.matrix.tolist()],
            "within": {g: _clean(v) for g, v in self.within.items()},
            "across": pairs(self.across),
            "separation": _clean(self.separation),
            "d_prime": _clean(self.d_prime),
            "pair_separation": pairs(self.pair_separation),
            "pair_d_prime": pairs(self.pair_d_prime),
            "nn1_recall": {g: _clean(v) for g, v in self.nn1_recall.items()},
            "nn1_balanced_accuracy": _clean(self.nn1_balanced_accuracy),
            "chance": self.chance,
        }


def _clean(v: float) -> float | None:
    return None if math.isnan(v) else round(float(v), 6)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def _row_blocks(n_rows: int, n_cols: int) -> Iterator[slice]:
    step = max(1, _BLOCK_ELEMS // max(n_cols, 1))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def _block_moments(a: np.ndarray, b: np.ndarray, same: bool) -> _Moments:
    """Sum and sum of squares of all cosines a·b, without self-pairs when ``same``."""
    total = total_sq = 0.0
    for rows in _row_blocks(len(a), len(b)):
        s = a[rows] @ b.T
        total += float(s.sum(dtype=np.float64))
        total_sq += float(np.square(s, dtype=np.float64).sum())
    count = float(len(a) * len(b))
    if same:
        diag = np.einsum("ij,ij->i", a, a, dtype=np.float64)
        total -= float(diag.sum())
        total_sq -= float(np.square(diag).sum())
        count -= len(a)
    return _Moments(count, total, total_sq)


def _mixture(parts: Sequence[_Moments]) -> tuple[float, float]:
    """Mean and variance of an equal-weight mixture of pair distributions."""
    parts = [p for p in parts if p.count]
    if not parts:
        return math.nan, math.nan
    mean = float(np.mean([p.mean for p in parts]))
    second = float(np.mean([p.var + p.mean**2 for p in parts]))
    return mean, max(second - mean**2, 0.0)


def _d_prime(within: Sequence[_Moments], across: Sequence[_Moments]) -> float:
    mw, vw = _mixture(within)
    ma, va = _mixture(across)
    spread = math.sqrt((vw + va) / 2.0)
    if math.isnan(spread) or spread == 0.0:
        return math.nan
    return (mw - ma) / spread


def nearest_neighbour_labels(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Leave-one-out: the label of each row's most similar *other* row."""
    out = np.empty(len(x), dtype=labels.dtype)
    for rows in _row_blocks(len(x), len(x)):
        s = x[rows] @ x.T
        idx = np.arange(rows.start, rows.stop)
        s[idx - rows.start, idx] = -np.inf
        out[rows] = labels[np.argmax(s, axis=1)]
    return out


def analyse(
    groups: Mapping[str, np.ndarray], *, center: bool = False, label: str = ""
) -> SimilarityReport:
    """Within/across similarity, separation, d′ and 1-NN accuracy for ``groups`` of vectors."""
    names = list(groups)
    if len(names) < 2:
        raise ValueError("need at least two groups")
    mats = [np.asarray(groups[g], dtype=np.float32) for g in names]
    if any(m.ndim != 2 or len(m) == 0 for m in mats):
        raise ValueError("every group needs a non-empty (n, dim) array")
    if len({m.shape[1] for m in mats}) != 1:
        raise ValueError("all groups must have the same dimension")
    if not all(np.isfinite(m).all() for m in mats):
        raise ValueError("vectors must be finite")

    mats = [_unit(m) for m in mats]
    if center:
        mu = np.concatenate(mats).mean(axis=0, dtype=np.float64).astype(np.float32)
        mats = [_unit(m - mu) for m in mats]

    k = len(names)
    blocks: dict[tuple[int, int], _Moments] = {}
    for i in range(k):
        for j in range(i, k):
            blocks[i, j] = _block_moments(mats[i], mats[j], same=i == j)
    matrix = np.full((k, k), np.nan)
    for (i, j), m in blocks.items():
        matrix[i, j] = matrix[j, i] = m.mean

    within_parts = [blocks[i, i] for i in range(k)]
    pair_ids = list(combinations(range(k), 2))
    across_parts = [blocks[i, j] for i, j in pair_ids]
    w_mean, _ = _mixture(within_parts)
    a_mean, _ = _mixture(across_parts)

    pair_sep: dict[tuple[str, str], float] = {}
    pair_dp: dict[tuple[str, str], float] = {}
    for i, j in pair_ids:
        mw, _ = _mixture([blocks[i, i], blocks[j, j]])
        pair_sep[names[i], names[j]] = mw - blocks[i, j].mean
        pair_dp[names[i], names[j]] = _d_prime([blocks[i, i], blocks[j, j]], [blocks[i, j]])

    labels = np.repeat(np.arange(k), [len(m) for m in mats])
    predicted = nearest_neighbour_labels(np.concatenate(mats), labels)
    recall = {
        names[g]: float(np.mean(predicted[labels == g] == g))
        if (labels == g).sum() > 1
        else math.nan
        for g in range(k)
    }
    valid = [v for v in recall.values() if not math.isnan(v)]

    return SimilarityReport(
        label=label,
        groups=names,
        sizes={g: len(m) for g, m in zip(names, mats, strict=True)},
        centered=center,
        matrix=matrix,
        within={names[i]: blocks[i, i].mean for i in range(k)},
        across={(names[i], names[j]): blocks[i, j].mean for i, j in pair_ids},
        separation=w_mean - a_mean,
        d_prime=_d_prime(within_parts, across_parts),
        pair_separation=pair_sep,
        pair_d_prime=pair_dp,
        nn1_recall=recall,
        nn1_balanced_accuracy=float(np.mean(valid)) if valid else math.nan,
        chance=1.0 / k,
    )


def _fmt(v: float, width: int = 7, digits: int = 3) -> str:
    return f"{'—':>{width}}" if math.isnan(v) else f"{v:>{width}.{digits}f}"


def render_report(report: SimilarityReport) -> str:
    """One report as text: the mean-cosine matrix, then the summary figures."""
    width = max(7, *(len(g) for g in report.groups))
    names = [f"{g} (n={report.sizes[g]})" for g in report.groups]
    label_w = max(len(n) for n in names)
    centring = "mean-centred" if report.centered else "raw"
    lines = [f"{report.label or 'vectors'}  ({centring} cosine; diagonal = within, else across)"]
    lines.append(" " * label_w + "".join(f" {g:>{width}}" for g in report.groups))
    for i, name in enumerate(names):
        lines.append(f"{name:<{label_w}}" + "".join(" " + _fmt(v, width) for v in report.matrix[i]))
    lines.append(
        f"separation {report.separation:+.3f}   d′ {_fmt(report.d_prime, 0, 2).strip()}   "
        f"1-NN balanced accuracy {report.nn1_balanced_accuracy:.3f} (chance {report.chance:.3f})"
    )
    return "\n".join(lines)


def render_summary(reports: Sequence[SimilarityReport]) -> str:
    """One line per report: mean within, mean across, separation, d′, 1-NN accuracy."""
    width = max(12, *(len(r.label) for r in reports))
    head = (
        f"{'extractor':<{width}}  {'cosine':<8} {'within':>7} {'across':>7} {'separ.':>7} "
        f"{'d′':>6} {'1-NN':>6} {'chance':>6}"
    )
    rows = [head, "-" * len(head)]
    for r in reports:
        w = float(np.nanmean(list(r.within.values())))
        a = float(np.nanmean(list(r.across.values())))
        rows.append(
            f"{r.label:<{width}}  {'centred' if r.centered else 'raw':<8} {_fmt(w)} {_fmt(a)} "
            f"{r.separation:>+7.3f} {_fmt(r.d_prime, 6, 2)} {_fmt(r.nn1_balanced_accuracy, 6)} "
            f"{r.chance:>6.3f}"
        )
    return "\n".join(rows)


def render_table(reports: Sequence[SimilarityReport]) -> str:
    """Every report's matrix, then the summary table."""
    return "\n\n".join([*(render_report(r) for r in reports), render_summary(reports)])
