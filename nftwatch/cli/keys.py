"""``nftwatch keys``: API keys for the HTTP API, stored only as SHA-256 hashes."""

from __future__ import annotations

import json
import secrets
from typing import Annotated

import typer

from nftwatch.cli.app import cli

keys_cli = typer.Typer(help="API keys for the HTTP API (stored hashed).", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")


@keys_cli.command("create")
def create(name: Annotated[str, typer.Argument(help="Who or what the key is for.")]) -> None:
    """Create a key and print it once: only its hash is stored.

    Example: nftwatch keys create desk
    """
    from nftwatch.api.auth import key_hash
    from nftwatch.runtime import open_resources
    from nftwatch.settings import load
    from store import keys

    key = secrets.token_urlsafe(32)
    with open_resources(load()) as res, res.factory.begin() as session:
        if any(k.name == name for k in keys.api_keys(session)):
            raise ValueError(f"a key named {name!r} exists already")
        keys.add_api_key(session, name, key_hash(key).hex())
    typer.echo(key)


@keys_cli.command("list")
def list_keys(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Names, creation and revocation times (never the keys).

    Example: nftwatch keys list --json
    """
    from nftwatch.runtime import open_resources
    from nftwatch.settings import load
    from store import keys

    with open_resources(load()) as res, res.factory() as session:
        rows = [
            {
                "name": k.name,
                "created_at": k.created_at.isoformat(),
                "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
            }
            for k in keys.api_keys(session)
        ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        for r in rows:
            typer.echo(
                f"{r['name']:<24} created {r['created_at']}"
                + (f"  revoked {r['revoked_at']}" if r["revoked_at"] else "")
            )


@keys_cli.command("revoke")
def revoke(name: str) -> None:
    """Revoke a key; the API refuses it within seconds.

    Example: nftwatch keys revoke desk
    """
    from nftwatch.runtime import open_resources
    from nftwatch.settings import load
    from store import keys

    with open_resources(load()) as res, res.factory.begin() as session:
        if not keys.revoke_api_key(session, name):
            raise ValueError(f"no active key named {name!r}")
    typer.echo(f"revoked {name}")
