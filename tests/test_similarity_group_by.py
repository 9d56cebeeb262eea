"""``nftwatch similarity --group-by TRAIT``: the blog's analysis within one collection, grouped
by a trait's values (CryptoPunks by type), on vectors imported from the real punks."""

from __future__ import annotations

import json
from collections import Counter

from typer.testing import CliRunner

from nftvision.datasets import load_cryptopunks
from nftwatch.cli import cli
from nftwatch.cli.importer import CRYPTOPUNKS_ADDRESS

PUNKS = 60


def test_punks_grouped_by_type(db_url: str, tmp_path) -> None:
    runner = CliRunner()
    env = {"DATABASE_URL": db_url, "NFTWATCH_DATA_DIR": str(tmp_path)}
    imported = runner.invoke(
        cli,
        ["import", "cryptopunks", "--limit", str(PUNKS), "--extractor", "gradient-v1"],
        env=env,
    )
    assert imported.exit_code == 0, imported.output
    result = runner.invoke(
        cli,
        [
            "similarity",
            "--collection",
            CRYPTOPUNKS_ADDRESS,
            "--group-by",
            "type",
            "--extractor",
            "gradient-v1",
            "--json",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    (report,) = json.loads(result.output[result.output.index("[") :])
    expected = Counter(p.punk_type for p in load_cryptopunks()[:PUNKS])
    assert report["sizes"] == {t: n for t, n in expected.items()}
    assert report["label"] == "gradient-v1" and report["centered"] is True
    assert -1.0 <= report["separation"] <= 2.0
