"""Heatmaps of within/across mean cosine, one panel per extractor, like the blog's figures."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nftvision.similarity import SimilarityReport


def plot_heatmaps(
    reports: Sequence[SimilarityReport], path: Path | str, *, columns: int = 3, dpi: int = 120
) -> Path:
    """Draw each report's mean-cosine matrix as an annotated heatmap into one PNG at ``path``.

    Each panel has its own colour scale (raw CNN cosines all sit near 1, so a shared scale would
    hide the structure); the title carries the extractor, the centring, d′ and 1-NN accuracy.
    """
    if not reports:
        raise ValueError("nothing to plot")
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    cols = min(columns, len(reports))
    rows = math.ceil(len(reports) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.9 * rows), dpi=dpi, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, report in zip(axes.flat, reports, strict=False):
        m = report.matrix
        finite = m[np.isfinite(m)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if hi - lo < 1e-9:
            lo, hi = lo - 0.5, hi + 0.5
        im = ax.imshow(m, cmap="viridis", vmin=lo, vmax=hi)
        k = len(report.groups)
        ax.set_xticks(range(k), report.groups, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(k), report.groups, fontsize=8)
        for i in range(k):
            for j in range(k):
                v = m[i, j]
                if math.isfinite(v):
                    dark = (v - lo) / (hi - lo) > 0.6
                    ax.text(
                        j,
                        i,
                        f"{v:.2f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="black" if dark else "white",
                    )
        centring = "centred" if report.centered else "raw"
        ax.set_title(
            f"{report.label} ({centring})\nd′ {report.d_prime:.2f}  "
            f"1-NN {report.nn1_balanced_accuracy:.2f}",
            fontsize=9,
        )
        fig.colorbar(im, ax=ax, shrink=0.8)
    for ax in list(axes.flat)[len(reports) :]:
        ax.set_axis_off()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out
