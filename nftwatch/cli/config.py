"""``nftwatch config`` and ``nftwatch db``: the settings in effect and the schema they
point at."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from nftwatch.cli.app import cli
from nftwatch.cli.common import JsonFlag, _print_json, _settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

db_cli = typer.Typer(help="Database schema.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")


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
