"""What the demo stored and what it means: event and token counts, the blog's within- vs
across-collection similarity per extractor (with a heatmap PNG), and a few valuations with the
comparables that explain them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from nftwatch.demo.world import TradeStats
from store import ops, tokens, valuations
from store.vectors import grouped_vectors
from worker.config import WorkerConfig
from worker.context import WorkerContext
from worker.valuing import value_now


def vectors_by_collection(
    factory: sessionmaker[Session], extractor: str, names: dict[str, str]
) -> dict[str, np.ndarray]:
    """Each named collection's stored vectors, keyed by its display name."""
    with factory() as s:
        groups = grouped_vectors(s, extractor, list(names))
    return {names[c]: np.asarray(v, dtype=np.float32) for c, v in groups.items() if v}


def build(
    factory: sessionmaker[Session],
    *,
    chain_id: int,
    collections: dict[str, str],
    extractors: list[str],
    trade_stats: TradeStats,
    listings: list[tuple[str, int, int]],
    out_dir: Path,
    worker_config: WorkerConfig,
) -> dict[str, Any]:
    from nftvision.heatmap import plot_heatmaps
    from nftvision.similarity import analyse

    with factory() as s:
        stored = ops.stored_counts(s)
    reports = []
    for name in extractors:
        groups = vectors_by_collection(factory, name, collections)
        if len(groups) >= 2:
            reports.append(analyse(groups, center=True, label=name))
    heatmap = plot_heatmaps(reports, out_dir / "similarity.png") if reports else None

    ctx = WorkerContext(worker_config)
    valued: list[dict[str, Any]] = []
    picks = [(c, t) for c, t, _ in listings] + _most_traded(factory, chain_id, collections)
    for contract, token_id in picks:
        value_now(ctx, chain_id, contract, token_id, reason="demo")
        with factory() as s:
            v = valuations.latest_valuation(s, chain_id, contract, token_id)
        if v is None:
            continue
        valued.append(
            {
                "collection": collections[contract],
                "contract": contract,
                "token_id": token_id,
                "price_eth": v.price_eth,
                "interval_eth": [v.price_low_eth, v.price_high_eth],
                "p_liquid": v.p_liquid,
                "confidence": v.confidence,
                "model_version": v.model_version,
                "listed": any(c == contract and t == token_id for c, t, _ in listings),
                "comparables": v.explanation.get("visual_neighbours", [])[:4],
            }
        )
    ctx.engine.dispose()
    return {
        "events": stored.events,
        "scenario": {
            "sales": trade_stats.sales,
            "transfers": trade_stats.transfers,
            "listings": len(listings),
        },
        "tokens": stored.tokens,
        "vectors": stored.vectors,
        "similarity": [r.to_dict() for r in reports],
        "heatmap": str(heatmap) if heatmap else None,
        "valuations": valued,
    }


def _most_traded(
    factory: sessionmaker[Session], chain_id: int, collections: dict[str, str]
) -> list[tuple[str, int]]:
    picks = []
    with factory() as s:
        for contract in collections:
            tid = tokens.most_traded_token(s, chain_id, contract)
            if tid is not None:
                picks.append((contract, tid))
    return picks


def render(summary: dict[str, Any], console: Console) -> None:
    e = summary["events"]
    console.rule("nftwatch demo: summary")
    console.print(
        f"events ingested: {e['transfers']} transfers ({e['mints']} mints), {e['sales']} sales, "
        f"{e['listings']} listings"
    )
    console.print(f"tokens by metadata status: {summary['tokens']}")
    console.print(f"vectors stored per extractor: {summary['vectors']}")
    for rep in summary["similarity"]:
        table = Table(title=f"{rep['label']}: mean cosine (mean-centred)", show_lines=False)
        table.add_column("collection")
        table.add_column("within", justify="right")
        table.add_column("1-NN recall", justify="right")
        for group in rep["groups"]:
            recall = rep["nn1_recall"].get(group)
            table.add_row(
                group, f"{rep['within'][group]:.3f}", "-" if recall is None else f"{recall:.2f}"
            )
        console.print(table)
        console.print(
            f"  within − across = {rep['separation']:.3f}, d′ = {rep['d_prime']:.2f}, "
            f"balanced 1-NN accuracy = {rep['nn1_balanced_accuracy']:.2f} "
            f"(chance {rep['chance']:.2f})"
        )
    if summary["heatmap"]:
        console.print(f"similarity heatmap written to [bold]{summary['heatmap']}[/bold]")
    table = Table(title="valuations")
    for col in ("token", "price ETH", "80% interval", "P(liquid)", "nearest comparables"):
        table.add_column(col)
    for v in summary["valuations"]:
        comps = ", ".join(
            f"#{c['token_id']} ({c['similarity']:.2f}"
            + (f", {c['last_sale_eth']:.2f} ETH)" if c.get("last_sale_eth") else ")")
            for c in v["comparables"]
        )
        low, high = v["interval_eth"]
        table.add_row(
            f"{v['collection']} #{v['token_id']}" + (" (new listing)" if v["listed"] else ""),
            f"{v['price_eth']:.2f}" if v["price_eth"] is not None else "-",
            f"{low:.2f}–{high:.2f}" if low is not None and high is not None else "-",
            f"{v['p_liquid']:.2f}",
            comps or "-",
        )
    console.print(table)
