"""``nftwatch backfill``: replay a block range of the chain into the store."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from nftwatch.cli.app import cli
from nftwatch.cli.common import JsonFlag, _print_json, _settings


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
