"""``nftwatch export transfers|sales``: the chain events of a block range for analysts, as JSON
lines or CSV, streamed from a server-side cursor (constant memory whatever the range).

One record per NFT transfer (an ERC-1155 batch gives one per id, ``batch_index`` = position) or
per sale, in chain order. Addresses are lower-case hex; uint256 values (``token_id``, ``amount``,
``price_wei``) are decimal strings, so no JSON reader rounds them.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated

import typer
from sqlalchemy import Engine

from nftwatch.cli.app import cli
from nftwatch.cli.common import _settings
from store import listings

export_cli = typer.Typer(help="Export chain events for analysis.", no_args_is_help=True)
cli.add_typer(export_cli, name="export")

TRANSFER_FIELDS = (
    "chain_id",
    "standard",
    "contract",
    "token_id",
    "from",
    "to",
    "amount",
    "block_number",
    "block_hash",
    "tx_hash",
    "log_index",
    "batch_index",
    "is_mint",
)
SALE_FIELDS = (
    *TRANSFER_FIELDS,
    "price_wei",
    "currency",
    "marketplace",
    "inferred",
    "price_eth_wei",  # null for currencies not pegged to ether
    "fees_wei",
    "royalty_wei",
    "bundle_size",
)


class Format(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


def stream_records(
    engine: Engine,
    kind: str,
    from_block: int,
    to_block: int,
    chain_id: int | None,
    batch: int = 5_000,
) -> Iterator[dict[str, object]]:
    """Records of ``kind`` ("transfers" | "sales") in ``[from_block, to_block]``, chain order."""
    fields = TRANSFER_FIELDS if kind == "transfers" else SALE_FIELDS
    rows = listings.stream_events(engine, kind, from_block, to_block, chain_id, batch)
    for row in rows:
        yield dict(zip(fields, row, strict=True))


def write_records(
    records: Iterator[dict[str, object]], kind: str, fmt: Format, out: IO[str]
) -> int:
    count = 0
    if fmt is Format.jsonl:
        for rec in records:
            out.write(json.dumps(rec, separators=(",", ":")))
            out.write("\n")
            count += 1
        return count
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(TRANSFER_FIELDS if kind == "transfers" else SALE_FIELDS)
    for rec in records:
        writer.writerow(
            ("true" if v else "false") if isinstance(v, bool) else v for v in rec.values()
        )
        count += 1
    return count


FromBlock = Annotated[int, typer.Option("--from-block", min=0)]
ToBlock = Annotated[int, typer.Option("--to-block", min=0)]
FormatOpt = Annotated[Format, typer.Option("--format", help="jsonl or csv.")]
OutputOpt = Annotated[
    Path | None, typer.Option("--output", "-o", help="File to write; default stdout.")
]
ChainOpt = Annotated[
    int | None,
    typer.Option("--chain-id", help="Only this chain (default: NFTWATCH_CHAIN_ID, else all)."),
]


def _export(
    kind: str,
    from_block: int,
    to_block: int,
    fmt: Format,
    output: Path | None,
    chain_id: int | None,
) -> None:
    from nftwatch.runtime import open_resources

    if to_block < from_block:
        raise typer.BadParameter("--to-block is below --from-block")
    s = _settings()
    chain = chain_id if chain_id is not None else s.chain_id
    with open_resources(s) as res:
        records = stream_records(res.engine, kind, from_block, to_block, chain)
        if output is None:
            count = write_records(records, kind, fmt, sys.stdout)
            sys.stdout.flush()
        else:
            tmp = output.with_name(output.name + ".part")
            with tmp.open("w", newline="") as fh:
                count = write_records(records, kind, fmt, fh)
            tmp.replace(output)  # a reader never sees half a file
            typer.echo(f"{count} {kind} written to {output}", err=True)


@export_cli.command("transfers")
def export_transfers(
    from_block: FromBlock,
    to_block: ToBlock,
    fmt: FormatOpt = Format.jsonl,
    output: OutputOpt = None,
    chain_id: ChainOpt = None,
) -> None:
    """One record per NFT transfer in the block range (mints and burns included).

    Example: nftwatch export transfers --from-block 0 --to-block 100 --format csv > transfers.csv
    """
    _export("transfers", from_block, to_block, fmt, output, chain_id)


@export_cli.command("sales")
def export_sales(
    from_block: FromBlock,
    to_block: ToBlock,
    fmt: FormatOpt = Format.jsonl,
    output: OutputOpt = None,
    chain_id: ChainOpt = None,
) -> None:
    """One record per sale in the block range, with its price, currency and marketplace.

    Example: nftwatch export sales --from-block 0 --to-block 100 > sales.jsonl
    """
    _export("sales", from_block, to_block, fmt, output, chain_id)
