"""``nftwatch backtest --walk-forward --ablation`` through the installed script, on the real
CryptoPunks sales of the first year and a month (one cutoff) and one extractor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

NFTWATCH = str(Path(sys.executable).with_name("nftwatch"))


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NFTWATCH, "backtest", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        stdin=subprocess.DEVNULL,
    )


def test_walk_forward_ablation_json(
    pg_url: str, redis_url: str, shared_data: Path, tmp_path: Path
) -> None:
    source = shared_data / "cryptopunks" / "sales_2017-06-23_to_2020-06-30.csv"
    lines = source.read_text().splitlines()
    rows = [r for r in lines[1:] if r < "2018-08-01"]
    sales = tmp_path / "sales.csv"
    sales.write_text("\n".join([lines[0], *rows]) + "\n")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("NFTWATCH_", "CELERY_"))},
        "DATABASE_URL": pg_url,
        "CELERY_BROKER_URL": redis_url,
        "NFTWATCH_DATA_DIR": str(tmp_path / "data"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    args = ("--walk-forward", "--sales", str(sales), "--ablation")
    result = _run(env, *args, "--ablation-extractor", "raw-rgb-v1", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "embedding punks, raw-rgb-v1: 10,000/10,000" in result.stderr  # the progress
    report = json.loads(result.stdout)
    (window,) = report["windows"]
    assert window["cutoff"] == "2018-06-23"
    assert 0 < window["distinct_estimates"]["model"] <= 1
    pooled = report["pooled"]
    assert pooled["ahead_of_every_baseline"]["of"] == 1
    assert pooled["distinct_estimates"]["cutoffs"] == 1
    ablation = pooled["ablation"]
    rows_by_name = {r["name"]: r for r in ablation["rows"]}
    image = rows_by_name["+ image features: raw-rgb-v1"]
    assert image["image_features"] and image["n"] == pooled["test_sales"]
    traits = rows_by_name["traits only (the two trait-adjusted levels)"]
    assert not traits["image_features"] and len(traits["inputs"]) == 2
    assert "no asks or bids" in ablation["not_applicable"]
    # the vectors were cached, keyed by extractor, weights and preprocessing
    (cached,) = (tmp_path / "cache" / "nftwatch" / "punk-vectors").glob("raw-rgb-v1_*.npy")
    assert cached.stat().st_size > 10_000 * 3072 * 4
    # --ablation belongs to the walk-forward
    refused = _run(env, "--sales", str(sales), "--cutoff", "2018-07-01", "--ablation")
    assert refused.returncode != 0
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "--walk-forward" in refused.stderr
