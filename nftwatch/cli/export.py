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
from sqlalchemy import Engine, text

from nftwatch.cli.app import cli
from nftwatch.cli.common import _settings

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
SALE_FIELDS = (*TRANSFER_FIELDS, "price_wei", "currency", "marketplace", "inferred")

_TRANSFERS = """
SELECT chain_id, standard, contract, token_id::text, from_address, to_address, amount::text,
       block_number, block_hash, tx_hash, log_index, batch_index, is_mint
FROM transfers
WHERE block_number BETWEEN :lo AND :hi {chain}
ORDER BY chain_id, block_number, log_index, batch_index, tx_hash
"""

# A sale's standard and amount come from the NFT's transfer in the same transaction (a sale
# without one, e.g. a Seaport fill of an unwatched transfer, falls back to erc721 / 1).
_SALES = """
SELECT s.chain_id,
       coalesce(t.standard, CASE WHEN s.marketplace = 'cryptopunks' THEN 'cryptopunks'
                                 ELSE 'erc721' END),
       s.contract, s.token_id::text, s.seller, s.buyer, coalesce(t.amount, 1)::text,
       s.block_number, s.block_hash, s.tx_hash, s.log_index, s.batch_index,
       coalesce(t.is_mint, false), s.price_wei::text, s.currency, s.marketplace, s.inferred
FROM sales s
LEFT JOIN LATERAL (
  SELECT x.standard, x.amount, x.is_mint FROM transfers x
  WHERE x.chain_id = s.chain_id AND x.contract = s.contract AND x.token_id = s.token_id
    AND x.block_number = s.block_number AND x.tx_hash = s.tx_hash
  ORDER BY x.log_index, x.batch_index LIMIT 1) t ON true
WHERE s.block_number BETWEEN :lo AND :hi {chain}
ORDER BY s.chain_id, s.block_number, s.log_index, s.batch_index, s.tx_hash
"""


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
    sql = _TRANSFERS if kind == "transfers" else _SALES
    prefix = "" if kind == "transfers" else "s."
    chain = f"AND {prefix}chain_id = :chain" if chain_id is not None else ""
    params: dict[str, object] = {"lo": from_block, "hi": to_block, "chain": chain_id}
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=batch).execute(
            text(sql.format(chain=chain)), params
        )
        for row in result:
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
