"""The ``nftwatch`` command line."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from nftwatch import settings as settings_mod

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


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@cli.command()
def config(as_json: JsonFlag = False) -> None:
    """Print the effective settings, secrets masked."""
    data = _settings().masked()
    if as_json:
        _print_json(data)
        return
    width = max(map(len, data))
    for key, value in data.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        typer.echo(f"{key:<{width}}  {shown if shown not in (None, '') else '-'}")


@db_cli.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations (the embedded database is started when DATABASE_URL is unset)."""
    from nftwatch.runtime import open_resources
    from store.db import current_revision, upgrade

    with open_resources(_settings()) as res:
        upgrade(res.database_url, revision)
        typer.echo(f"database at revision {current_revision(res.database_url)}")


@cli.command()
def worker(
    queues: Annotated[str, typer.Option(help="Comma-separated queues.")] = "urgent,resolve,embed",
    pool: Annotated[
        str, typer.Option(help="solo for GPU/embed workers, threads for I/O.")
    ] = "threads",
    concurrency: Annotated[int, typer.Option(min=1)] = 8,
    rpc: Annotated[list[str] | None, typer.Option(help="CHAIN_ID=URL, repeatable.")] = None,
) -> None:
    """Run a Celery worker on the given queues."""
    from nftwatch.runtime import open_resources
    from worker.app import configure

    s = _settings()
    with open_resources(s) as res:
        rpc_urls = _rpc_map(rpc, s)
        app = configure(res.worker_config(rpc_urls))
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
    as_json: JsonFlag = False,
) -> None:
    """Run the whole job on a local chain: deploy, mint, trade, resolve, embed, value."""
    from nftwatch.demo import run_demo

    summary = run_demo(
        _settings(), tokens_per_collection=tokens_per_collection, out_dir=out, as_json=as_json
    )
    if as_json:
        _print_json(summary)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        cli()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # one clear line, not a traceback
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            raise
        typer.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
