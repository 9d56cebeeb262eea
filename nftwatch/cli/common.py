"""What the commands share: the settings, the --json flag and its printer, and the checks
that turn a contract address or token id argument into a usage error."""

from __future__ import annotations

import json
import re
from typing import Annotated

import typer

from nftwatch import settings as settings_mod

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def _settings() -> settings_mod.Settings:
    return settings_mod.load()


def _print_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _rpc_map(pairs: list[str] | None, s: settings_mod.Settings) -> dict[int, str]:
    out: dict[int, str] = {}
    for pair in pairs or []:
        chain, _, url = pair.partition("=")
        out[int(chain)] = url
    if s.rpc_url and s.chain_id is not None:
        out.setdefault(s.chain_id, s.rpc_url)
    return out


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
