"""The vision commands through the CLI: ``nftwatch similarity`` on vectors stored in Postgres for
two constructed collections, and ``nftwatch embed`` on real Moonbirds and Nouns files."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nftvision.extractors import get_extractor
from nftwatch.cli import cli
from store import tokens
from store.db import make_engine, make_sessionmaker
from store.models import Media, Token
from store.vectors import store_embeddings
from tokenmeta.media import decode_media

CHAIN = 1
A = "0x" + "a1" * 20
B = "0x" + "b2" * 20
EXTRACTOR = "constructed-v1"


def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {"DATABASE_URL": db_url, "NFTWATCH_DATA_DIR": str(tmp_path / "data")}


def store_groups(db_url: str, groups: dict[str, np.ndarray]) -> None:
    engine = make_engine(db_url)
    with make_sessionmaker(engine).begin() as s:
        for name, (address, vecs) in zip(("alpha", "beta"), groups.items(), strict=True):
            tokens.upsert_collection(s, CHAIN, address, name=name)
            rows = []
            for i, v in enumerate(vecs):
                sha = hashlib.sha256(f"{address}:{i}".encode()).hexdigest()
                s.add(Media(sha256=sha, mime="image/png", width=1, height=1, size=0, content=b""))
                s.flush()
                s.add(
                    Token(chain_id=CHAIN, contract=address, token_id=Decimal(i), image_sha256=sha)
                )
                rows.append((sha, v.tolist()))
            store_embeddings(s, EXTRACTOR, "w", "p", rows)
    engine.dispose()


def test_similarity_command_on_two_constructed_collections(db_url: str, tmp_path: Path) -> None:
    # alpha points along the first axis, beta along the second: tight groups, far apart
    rng = np.random.default_rng(3)
    dim, n = 16, 30
    a = np.zeros((n, dim)) + 0.15 * rng.normal(size=(n, dim))
    a[:, 0] += 1
    b = np.zeros((n, dim)) + 0.15 * rng.normal(size=(n, dim))
    b[:, 1] += 1
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    store_groups(db_url, {A: a, B: b})
    plot = tmp_path / "heat.png"
    args = ["similarity", "--collection", A, "--collection", B, "--extractor", EXTRACTOR]
    result = CliRunner().invoke(
        cli,
        [*args, "--no-center", "--json", "--plot", str(plot)],
        env=env(db_url, tmp_path),
    )
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.output[result.output.index("[") :])
    assert report["label"] == EXTRACTOR and report["centered"] is False
    assert report["sizes"] == {"alpha": n, "beta": n}
    # the expected means, computed here from the same vectors (half precision as stored)
    a16, b16 = (x.astype(np.float16).astype(np.float64) for x in (a, b))
    a16 /= np.linalg.norm(a16, axis=1, keepdims=True)
    b16 /= np.linalg.norm(b16, axis=1, keepdims=True)
    within_a = (a16 @ a16.T)[~np.eye(n, dtype=bool)].mean()
    across = (a16 @ b16.T).mean()
    assert report["within"]["alpha"] == pytest.approx(within_a, abs=2e-3)
    assert report["across"]["alpha|beta"] == pytest.approx(across, abs=2e-3)
    assert report["separation"] > 0.5 and report["d_prime"] > 3
    assert report["nn1_balanced_accuracy"] == 1.0
    assert plot.stat().st_size > 0

    text = CliRunner().invoke(cli, args, env=env(db_url, tmp_path))
    assert text.exit_code == 0, text.output
    assert "alpha" in text.output and "beta" in text.output and "centred" in text.output.lower()


def test_similarity_command_needs_two_collections(db_url: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["similarity", "--collection", A, "--extractor", EXTRACTOR], env=env(db_url, tmp_path)
    )
    assert result.exit_code != 0


def test_embed_command_on_real_files(db_url: str, tmp_path: Path, shared_data: Path) -> None:
    files = [
        shared_data / "moonbirds" / "0.png",
        shared_data / "moonbirds" / "100.png",
        shared_data / "nouns" / "0.png",
    ]
    names = ["gradient-v1", "effnet-lite0-v1"]
    args = ["embed", *map(str, files), *[x for n in names for x in ("--extractor", n)], "--json"]
    result = CliRunner().invoke(cli, args, env=env(db_url, tmp_path))
    assert result.exit_code == 0, result.output
    out = json.loads(result.output[result.output.index("{") :])
    assert sorted(out) == sorted(names)
    images = [decode_media(f.read_bytes()).image for f in files]
    for name in names:
        model = get_extractor(name)
        data = out[name]
        assert data["dim"] == model.dim and data["weights"] == model.weights
        got = np.array([data["vectors"][str(f)] for f in files], dtype=np.float32)
        assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-4)
        want = model.embed(images)
        assert np.allclose((got * want).sum(axis=1), 1, atol=1e-3)
        # two birds are closer to each other than a bird to a Noun
        sims = got @ got.T
        assert sims[0, 1] > sims[0, 2]

    text = CliRunner().invoke(cli, ["embed", str(files[0]), "--extractor", "gradient-v1"])
    assert text.exit_code == 0, text.output
    assert "gradient-v1" in text.output and str(files[0]) in text.output
