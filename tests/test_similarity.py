"""The blog's analysis on constructed groups whose answer is known."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from nftvision.heatmap import plot_heatmaps
from nftvision.similarity import analyse, render_table


def _clusters(sizes: dict[str, int], spread: float, dim: int = 32, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    centres = np.eye(dim) * 10.0
    return {
        g: centres[i] + spread * rng.normal(size=(n, dim)) for i, (g, n) in enumerate(sizes.items())
    }


def test_well_separated_clusters() -> None:
    report = analyse(_clusters({"a": 60, "b": 40, "c": 5}, spread=1.0), label="gauss")
    assert report.nn1_balanced_accuracy == 1.0
    assert report.d_prime > 5
    # |centre|² = 100, noise adds 32 (unit variance in 32 dims): within cosine ≈ 100 / 132
    expected = 100 / 132
    assert report.separation == pytest.approx(expected, abs=0.03)
    assert all(v == pytest.approx(expected, abs=0.04) for v in report.within.values())
    assert all(abs(v) < 0.1 for v in report.across.values())
    assert report.chance == pytest.approx(1 / 3)


def test_identical_distributions_are_not_separable() -> None:
    rng = np.random.default_rng(1)
    groups = {g: rng.normal(size=(300, 16)) for g in ("x", "y", "z")}
    report = analyse(groups)
    assert abs(report.separation) < 0.01
    assert abs(report.d_prime) < 0.05
    assert abs(report.nn1_balanced_accuracy - 1 / 3) < 0.08


def test_exact_means_on_a_tiny_case() -> None:
    # a: two unit vectors 90° apart; b: one vector at 45° between them, one opposite it
    s = math.sqrt(0.5)
    groups = {"a": np.array([[1.0, 0.0], [0.0, 1.0]]), "b": np.array([[s, s], [-s, -s]])}
    r = analyse(groups)
    assert r.within["a"] == pytest.approx(0.0, abs=1e-6)  # self-pairs excluded
    assert r.within["b"] == pytest.approx(-1.0, abs=1e-6)
    assert r.across["a", "b"] == pytest.approx(0.0, abs=1e-6)
    assert r.separation == pytest.approx(-0.5, abs=1e-6)
    np.testing.assert_allclose(r.matrix, [[0.0, 0.0], [0.0, -1.0]], atol=1e-6)


def test_centring_removes_a_shared_offset() -> None:
    """All-positive features (like pooled CNN ones) share a big common component: raw cosines sit
    near 1 everywhere; centring shows the structure."""
    groups = _clusters({"a": 50, "b": 50}, spread=1.0, dim=16)
    shifted = {g: v + 60.0 for g, v in groups.items()}
    raw = analyse(shifted)
    centred = analyse(shifted, center=True)
    assert min(raw.across.values()) > 0.95 and not raw.centered
    assert centred.centered and centred.across["a", "b"] < 0
    assert centred.separation > 5 * raw.separation
    assert centred.nn1_balanced_accuracy == 1.0


def test_scale_and_norm_do_not_matter() -> None:
    groups = _clusters({"a": 20, "b": 30}, spread=3.0)
    scaled = {g: v * np.arange(1, len(v) + 1)[:, None] for g, v in groups.items()}
    a, b = analyse(groups), analyse(scaled)
    assert a.d_prime == pytest.approx(b.d_prime, rel=1e-4)
    assert a.nn1_balanced_accuracy == b.nn1_balanced_accuracy


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        analyse({"a": np.ones((3, 4))})
    with pytest.raises(ValueError):
        analyse({"a": np.ones((3, 4)), "b": np.ones((3, 5))})
    with pytest.raises(ValueError):
        analyse({"a": np.ones((3, 4)), "b": np.full((2, 4), np.nan)})


def test_report_renders_and_serialises(tmp_path: Path) -> None:
    reports = [
        analyse(_clusters({"alien": 3, "male": 30}, spread=s), label=f"s{s}", center=c)
        for s, c in ((1.0, False), (8.0, True))
    ]
    text = render_table(reports)
    assert "mean-centred" in text and "raw" in text and "alien (n=3)" in text
    data = json.loads(json.dumps([r.to_dict() for r in reports]))
    assert data[0]["across"]["alien|male"] == pytest.approx(
        reports[0].across["alien", "male"], abs=1e-6
    )
    assert data[1]["centered"] is True
    out = plot_heatmaps(reports, tmp_path / "fig" / "heat.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
