"""``nftwatch demo``: the whole job on a local chain."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nftwatch.cli.app import cli
from nftwatch.cli.common import JsonFlag, _print_json, _settings


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
