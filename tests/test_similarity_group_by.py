"""``nftwatch similarity --group-by TRAIT``: the blog's analysis within one collection, grouped
by a trait's values (CryptoPunks by type) or their count, on held-out tokens by default, on
vectors imported from the real punks; ``train-extractor --collection`` trains on the same stored
images, never on the held-out ones."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from typer.testing import CliRunner

from nftvision.datasets import load_cryptopunks
from nftvision.ssl.holdout import holdout_name, is_held_out
from nftvision.ssl.train import sha256_file, sidecar_path
from nftwatch.cli import cli
from nftwatch.cli.importer import CRYPTOPUNKS_ADDRESS

PUNKS = 200
SIMILARITY = ["similarity", "--collection", CRYPTOPUNKS_ADDRESS, "--extractor", "gradient-v1"]


@pytest.fixture
def imported(db_url: str, tmp_path) -> dict[str, str]:
    env = {"DATABASE_URL": db_url, "NFTWATCH_DATA_DIR": str(tmp_path)}
    result = CliRunner().invoke(
        cli,
        ["import", "cryptopunks", "--limit", str(PUNKS), "--extractor", "gradient-v1"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    return env


def _similarity(env: dict[str, str], *args: str) -> dict:
    result = CliRunner().invoke(
        cli,
        [*SIMILARITY, *args, "--json"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    (report,) = json.loads(result.output[result.output.index("[") :])
    return report


def _pairs(sizes: Counter[str]) -> dict[str, int]:
    """The groups the analysis keeps: a group of one has no within-group similarity."""
    return {g: n for g, n in sizes.items() if n >= 2}


def test_punks_grouped_by_type_on_held_out_tokens(imported: dict[str, str]) -> None:
    punks = load_cryptopunks()[:PUNKS]
    held = [p for p in punks if is_held_out("cryptopunks", p.index)]
    assert 0 < len(held) < len(punks)
    report = _similarity(imported, "--group-by", "type")
    assert report["sizes"] == _pairs(Counter(p.punk_type for p in held))
    assert report["label"] == "gradient-v1" and report["centered"] is True
    assert -1.0 <= report["separation"] <= 2.0
    assert 0.0 <= report["map10"] <= 1.0
    everyone = _similarity(imported, "--group-by", "type", "--all-tokens")
    assert everyone["sizes"] == _pairs(Counter(p.punk_type for p in punks))


def test_punks_grouped_by_accessory_count(imported: dict[str, str]) -> None:
    punks = load_cryptopunks()[:PUNKS]
    report = _similarity(imported, "--group-by", "count:accessory", "--all-tokens")
    counts = Counter(str(sum(a["trait_type"] == "accessory" for a in p.attributes)) for p in punks)
    assert report["sizes"] == _pairs(counts)


def test_train_extractor_from_stored_images_leaves_the_held_out_ones(
    imported: dict[str, str], tmp_path
) -> None:
    assert holdout_name(CRYPTOPUNKS_ADDRESS.upper().replace("0X", "0x")) == "cryptopunks"
    out = tmp_path / "w" / "nft-ssl-v1.pt"
    args = ["train-extractor", "--collection", CRYPTOPUNKS_ADDRESS, "--epochs", "1"]
    args += ["--batch-size", "32", "--out", str(out), "--json"]
    result = CliRunner().invoke(cli, args, env=imported)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    trained = sum(not is_held_out("cryptopunks", i) for i in range(PUNKS))
    assert summary["images"] == trained and summary["version"] == "nft-ssl-v1"
    meta = json.loads(sidecar_path(out).read_text())
    assert meta["sha256"] == sha256_file(out) and meta["version"] == "nft-ssl-v1"
    assert meta["data"]["collections"] == {"cryptopunks": trained}

    unknown = "0x" + "ab" * 20
    missing = CliRunner().invoke(
        cli, ["train-extractor", "--collection", unknown, "--out", str(out)], env=imported
    )
    assert missing.exit_code != 0 and "no stored images" in missing.output
