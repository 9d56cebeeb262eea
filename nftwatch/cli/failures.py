"""``nftwatch failures`` lists the dead letters (tokens whose metadata or image failed for good)
and ``nftwatch retry`` re-drives them through the outbox, so the service's dispatcher sends them
to the workers like any other resolve work."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Annotated

import typer

from nftwatch.cli.app import cli
from nftwatch.cli.common import JsonFlag, _print_json, _settings, _token_args
from store.tokens import dead_letters, redrive


@cli.command()
def failures(
    as_json: JsonFlag = False,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
) -> None:
    """List dead letters: tokens whose metadata or image failed for good.

    Example: nftwatch failures --json
    """
    from nftwatch.runtime import open_resources

    with open_resources(_settings()) as res, res.factory() as session:
        letters = dead_letters(session, limit)
    if as_json:
        _print_json([_jsonable(asdict(d)) for d in letters])
        return
    if not letters:
        typer.echo("no dead letters")
        return
    for d in letters:
        typer.echo(
            f"{d.chain_id} {d.contract} {d.token_id}  {d.status}/{d.stage or '-'}  "
            f"{d.error_class}  attempts={d.attempts}  {d.uri or '-'}\n    {d.message or ''}"
        )


@cli.command()
def retry(
    contract: Annotated[str | None, typer.Argument(help="Contract address.")] = None,
    token_id: Annotated[str | None, typer.Argument(help="Token id (decimal).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every dead letter.")] = False,
    chain_id: Annotated[int | None, typer.Option(help="Only this chain.")] = None,
) -> None:
    """Re-drive dead letters through the outbox (a running `nftwatch run` sends them on).

    Example: nftwatch retry 0xb47e3cd837ddf8e4c57f05d70ab865de6e193bbb 7804 (or --all)
    """
    from nftwatch.runtime import open_resources

    if all_ == (contract is not None):
        raise typer.BadParameter("give either --all or CONTRACT TOKEN_ID")
    token = None
    if contract is not None:
        if token_id is None:
            raise typer.BadParameter("CONTRACT needs a TOKEN_ID")
        token = _token_args(contract, token_id)
    with open_resources(_settings()) as res, res.factory.begin() as session:
        queued = redrive(session, token=token, chain_id=chain_id)
    if token is not None and not queued:
        typer.echo(f"no such token: {contract} {token_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"queued {queued} token{'s' if queued != 1 else ''} for resolving")


def _jsonable(data: dict[str, object]) -> dict[str, object]:
    return {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in data.items()}
