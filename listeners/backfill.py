"""Backfill / replay of a block range: adaptive ``eth_getLogs`` chunks, each recorded in one
transaction with its checkpoint, so a killed backfill resumes where it stopped and a replay
changes nothing.

The chunk span grows (doubling) after each success, shrinks to what the provider said it accepts
(Infura's -32005 "Try with this block range [a, b]", Alchemy's "up to a 2K block range") or else
halves on a "range too large" answer. Other retryable errors back off with jitter.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from listeners.decode import WETH, all_topics, collection_topics, decode_logs
from listeners.errors import RangeTooLarge, Retryable
from listeners.inferred import infer_sales
from listeners.markets import markets_for
from listeners.pipeline import Writer, bulk_tuning
from listeners.rpc import Rpc
from store.chain import PreparedBatch, get_checkpoint, prepare_batch, record_prepared
from store.records import BlockHeader, Decoded


@dataclass
class BackfillStats:
    from_block: int
    to_block: int
    resumed_from: int  # first block scanned by this run
    blocks: int = 0
    logs: int = 0
    transfers: int = 0  # decoded (new rows are fewer on a replay)
    sales: int = 0
    listings: int = 0
    loans: int = 0
    metadata_updates: int = 0
    oversized_ranges: int = 0
    chunks: int = 0
    splits: int = 0  # "range too large" answers
    retries: int = 0
    seconds: float = 0.0
    last_span: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def blocks_done(self) -> int:
        """Blocks of the whole range scanned, by this run or by the runs it resumed."""
        return self.resumed_from - self.from_block + self.blocks


def checkpoint_name(
    chain_id: int, from_block: int, to_block: int, addresses: list[str] | None
) -> str:
    """One checkpoint per (chain, range, watched set): re-running the same command resumes."""
    watched = ",".join(sorted(a.lower() for a in addresses)) if addresses else "all"
    digest = hashlib.sha1(watched.encode()).hexdigest()[:12]
    return f"backfill:{chain_id}:{from_block}:{to_block}:{digest}"


def fetch_logs(
    rpc: Rpc, start: int, end: int, addresses: list[str] | None, chain_id: int | None = None
) -> list[dict[str, Any]]:
    """The logs we decode in ``[start, end]``, in chain order.

    With a watched list, the collections' own logs come from one query and the markets' (their
    contracts, their payment tokens, the clones' events by topic) from the registry's queries;
    the decoder keeps the market events about watched NFTs. Without one, every decoded topic."""
    if not addresses:
        return rpc.get_logs(start, end, None, [list(all_topics(chain_id))])
    logs = rpc.get_logs(start, end, addresses, [list(collection_topics(chain_id))])
    seen = {(lg["transactionHash"], lg["logIndex"]) for lg in logs}
    extra = False
    for query in markets_for(chain_id).queries():
        addrs = list(query.addresses) if query.addresses is not None else None
        for log in rpc.get_logs(start, end, addrs, [list(query.topics)]):
            key = (log["transactionHash"], log["logIndex"])
            if key not in seen:  # a watched contract may emit a market's event too
                seen.add(key)
                logs.append(log)
                extra = True
    extra |= _add_payments(rpc, logs, seen, chain_id)
    if extra:
        logs.sort(key=lambda lg: (int(lg["blockNumber"], 16), int(lg["logIndex"], 16)))
    return logs


def _add_payments(
    rpc: Rpc, logs: list[dict[str, Any]], seen: set[tuple[str, str]], chain_id: int | None
) -> bool:
    """Append the payment-token transfers of the transactions whose market events read them,
    from those transactions' receipts; whether any was added."""
    markets = markets_for(chain_id)
    wanted = markets.payment_topics
    if not wanted:
        return False
    txs = sorted(
        {lg["transactionHash"] for lg in logs if lg["topics"] and lg["topics"][0].lower() in wanted}
    )
    if not txs:
        return False
    tokens = markets.payment_tokens
    added = False
    for log in rpc.get_receipt_logs(txs):
        key = (log["transactionHash"], log["logIndex"])
        if key not in seen and log["address"].lower() in tokens and log.get("topics"):
            seen.add(key)
            logs.append(log)
            added = True
    return added


def add_inferred_sales(
    rpc: Rpc, decoded: Decoded, watched: frozenset[str] | None, weth_contracts: frozenset[str]
) -> None:
    """Sales without a marketplace event (watched collections only), merged in chain order."""
    inferred = infer_sales(rpc, decoded, watched, weth_contracts=weth_contracts)
    if inferred:
        decoded.sales.extend(inferred)
        decoded.sales.sort(key=lambda s: (s.block_number, s.log_index, s.batch_index))


def headers_for(rpc: Rpc, decoded: Decoded) -> dict[int, BlockHeader]:
    return rpc.get_blocks(sorted(decoded.block_numbers()))


def prepare_decoded(chain_id: int, headers: list[BlockHeader], decoded: Decoded) -> PreparedBatch:
    """The database-independent half of recording ``decoded`` (COPY lines, token deltas)."""
    return prepare_batch(
        chain_id,
        headers,
        decoded.transfers,
        decoded.sales,
        decoded.listings,
        decoded.metadata_updates,
        decoded.oversized,
        decoded.loans,
    )


def record_decoded(
    session: Session,
    chain_id: int,
    headers: list[BlockHeader],
    decoded: Decoded,
    cp_name: str | None,
    cp_block: int | None,
    cp_hash: str | None,
) -> None:
    record_prepared(
        session, prepare_decoded(chain_id, headers, decoded), cp_name, cp_block, cp_hash
    )


def chunk_job(
    batch: PreparedBatch, cp_name: str | None, end: int, *, incremental: bool = True
) -> Callable[[Session], None]:
    """The writer's part of a chunk: ``batch`` was prepared on the reading thread, so the writer
    thread mostly waits on Postgres (GIL released) while the next chunk is fetched and decoded."""

    def job(session: Session) -> None:
        record_prepared(session, batch, cp_name, end, None, incremental=incremental)

    return job


def _consistent(decoded: Decoded, headers: dict[int, BlockHeader]) -> bool:
    """Every event's block hash is the header's hash (false while a reorg moves under us)."""
    for seq in (
        decoded.transfers,
        decoded.sales,
        decoded.listings,
        decoded.loans,
        decoded.metadata_updates,
        decoded.oversized,
    ):
        for e in seq:
            h = headers.get(e.block_number)
            if h is None or h.hash != e.block_hash:
                return False
    return True


def backfill(
    rpc: Rpc,
    session_factory: sessionmaker[Session],
    chain_id: int,
    from_block: int,
    to_block: int,
    addresses: list[str] | None,
    *,
    progress: Callable[[BackfillStats], None] | None = None,
    legacy_contracts: frozenset[str] = frozenset(),
    initial_span: int = 2_000,
    max_span: int = 100_000,
    max_retries: int = 8,
    max_rps: float | None = None,
    max_consecutive: int = 10_000,
    checkpoint: str | None = None,
    pipeline_depth: int = 2,
    weth_contracts: frozenset[str] = frozenset({WETH}),
) -> BackfillStats:
    """Scan ``[from_block, to_block]`` for the events of ``addresses`` (``None``: every NFT
    contract) and record them. Resumes from this range's checkpoint; idempotent."""
    began = time.monotonic()
    addrs = [a.lower() for a in addresses] if addresses else None
    nft_contracts = frozenset(addrs) if addrs else None
    cp_name = checkpoint or checkpoint_name(chain_id, from_block, to_block, addrs)
    with session_factory() as s:
        cp = get_checkpoint(s, cp_name)
    start = from_block if cp is None else max(from_block, cp[0] + 1)
    stats = BackfillStats(from_block, to_block, start)
    span = max(1, initial_span)
    attempts = 0
    min_interval = 1.0 / max_rps if max_rps else 0.0
    last_call = 0.0
    # Chunk N is written on the writer thread while chunk N+1 is fetched and decoded.
    with bulk_tuning(), Writer(session_factory, depth=pipeline_depth) as writer:
        while start <= to_block:
            end = min(to_block, start + span - 1)
            if min_interval:
                wait = last_call + min_interval - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                last_call = time.monotonic()
            try:
                logs = fetch_logs(rpc, start, end, addrs, chain_id)
                decoded = decode_logs(
                    logs,
                    legacy_contracts=legacy_contracts,
                    nft_contracts=nft_contracts,
                    max_consecutive=max_consecutive,
                    chain_id=chain_id,
                )
                add_inferred_sales(rpc, decoded, nft_contracts, weth_contracts)
                headers = headers_for(rpc, decoded)
                if not _consistent(decoded, headers):
                    raise Retryable(f"blocks {start}-{end} changed while reading them (reorg)")
            except RangeTooLarge as exc:
                if end == start:
                    raise
                stats.splits += 1
                if exc.suggested and exc.suggested[0] == start and start <= exc.suggested[1] < end:
                    span = exc.suggested[1] - start + 1
                else:
                    span = max(1, (end - start + 1) // 2)
                continue
            except Retryable as exc:
                attempts += 1
                stats.retries += 1
                if attempts > max_retries:
                    raise
                delay = exc.retry_after or min(30.0, 0.2 * 2 ** (attempts - 1))
                time.sleep(delay * (0.5 + random.random()))
                continue
            attempts = 0
            ordered = sorted(headers.values(), key=lambda h: h.number)
            writer.submit(chunk_job(prepare_decoded(chain_id, ordered, decoded), cp_name, end))
            stats.chunks += 1
            stats.blocks += end - start + 1
            stats.logs += len(logs)
            stats.transfers += len(decoded.transfers)
            stats.sales += len(decoded.sales)
            stats.listings += len(decoded.listings)
            stats.loans += len(decoded.loans)
            stats.metadata_updates += len(decoded.metadata_updates)
            stats.oversized_ranges += len(decoded.oversized)
            stats.last_span = end - start + 1
            stats.seconds = time.monotonic() - began
            if progress is not None:
                progress(stats)
            start = end + 1
            span = min(max_span, span * 2)
    stats.seconds = time.monotonic() - began
    return stats
