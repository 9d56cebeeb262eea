"""Recording one batch of chain events: one transaction, set-based SQL, COPY for the bulk rows.

``record_batch`` = ``prepare_batch`` (pure Python: the COPY lines and the token deltas) +
``record_prepared`` (the SQL). A pipeline calls the two halves on different threads, so that the
Python half of one batch runs while Postgres works on the previous one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from store.chain import partitions, staging, tokens
from store.chain.checkpoints import BlockRow, block_time, write_blocks, write_checkpoint
from store.chain.refresh import record_refreshes
from store.chain.sales import is_unpriced_punk_sale, record_listings, record_offers, record_sales
from store.chain.staging import (
    LISTINGS,
    LOANS,
    RANGES,
    SALES,
    TRANSFERS,
    EventRows,
    event_rows,
    insert_events,
)
from store.chain.token_delta import token_deltas
from store.chain.transfers import record_ranges, record_transfers
from store.locks import writer_lock_sql
from store.records import (
    BlockHeader,
    ListingEvent,
    LoanEvent,
    MetadataUpdateEvent,
    OversizedRange,
    SaleEvent,
    TransferEvent,
)


@dataclass
class RecordStats:
    transfers: int = 0  # rows new to the database
    sales: int = 0
    listings: int = 0
    loans: int = 0
    tokens: int = 0  # token rows recomputed
    outbox: int = 0  # outbox rows added
    balances: int = 0  # ERC-1155 balance rows written (merged or recomputed)


class MissingBlockError(ValueError):
    """An event refers to a block whose header was not passed."""


@dataclass(slots=True)
class PreparedBatch:
    """The half of recording a batch that needs no database: the COPY text of its events and of
    the token deltas computed as if every event were new (the common case; the writer recomputes
    them when the database already holds some). Built by :func:`prepare_batch`, so that a
    pipeline builds it on the thread that decodes while the writer thread waits on Postgres."""

    chain_id: int
    block_rows: list[BlockRow]
    times: dict[str, str]  # block hash -> ISO timestamp
    transfers: Sequence[TransferEvent]
    transfer_rows: EventRows
    sales: Sequence[SaleEvent]
    sale_rows: EventRows
    listings: Sequence[ListingEvent]
    listing_rows: EventRows
    oversized: Sequence[OversizedRange]
    range_rows: EventRows
    metadata_updates: Sequence[MetadataUpdateEvent]
    # CryptoPunks' accepted bids: no price in the event, filled from the bid in SQL
    zero_sale_data: bytes  # their COPY text
    redo_sales: frozenset[tuple[str, str, int, int]]
    first_block: int | None  # earliest block of a transfer or sale
    last_block: int | None  # latest block of a transfer or sale
    delta_data: bytes
    balance_data: bytes  # net ERC-1155 balance changes
    loans: Sequence[LoanEvent] = ()
    loan_rows: EventRows | None = None


def prepare_batch(
    chain_id: int,
    blocks: Sequence[BlockHeader],
    transfers: Sequence[TransferEvent],
    sales: Sequence[SaleEvent],
    listings: Sequence[ListingEvent],
    metadata_updates: Sequence[MetadataUpdateEvent],
    oversized: Sequence[OversizedRange] = (),
    loans: Sequence[LoanEvent] = (),
) -> PreparedBatch:
    """Build the database-independent part of :func:`record_batch` (pure Python).

    Raises :class:`MissingBlockError` when an event's block is not among ``blocks``."""
    times = {b.hash: block_time(b) for b in blocks}
    try:
        transfer_lines = TRANSFERS.lines(chain_id, times, transfers)
        sale_lines = SALES.lines(chain_id, times, sales)
        listing_lines = LISTINGS.lines(chain_id, times, listings)
        range_lines = RANGES.lines(chain_id, times, oversized)
        loan_lines = LOANS.lines(chain_id, times, loans)
    except KeyError as exc:
        raise MissingBlockError(f"no header passed for block {exc.args[0]}") from None
    zero_sales = [i for i, s in enumerate(sales) if is_unpriced_punk_sale(s)]
    redo_sales = frozenset(
        (s.block_hash, s.tx_hash, s.log_index, s.batch_index)
        for s in (sales[i] for i in zero_sales)
    )
    numbers = [e.block_number for seq in (transfers, sales) for e in seq]
    first_block = min(numbers, default=None)
    last_block = max(numbers, default=None)
    deltas = token_deltas(transfers, sales, tokens.block_times(times), redo_sales)
    return PreparedBatch(
        chain_id=chain_id,
        block_rows=[(chain_id, b.number, b.hash, b.parent_hash, times[b.hash]) for b in blocks],
        times=times,
        transfers=transfers,
        transfer_rows=event_rows(transfer_lines, transfers),
        sales=sales,
        sale_rows=event_rows(sale_lines, sales),
        listings=listings,
        listing_rows=event_rows(listing_lines, listings),
        oversized=oversized,
        range_rows=event_rows(range_lines, oversized),
        metadata_updates=metadata_updates,
        zero_sale_data="".join(sale_lines[i] for i in zero_sales).encode(),
        redo_sales=redo_sales,
        first_block=first_block,
        last_block=last_block,
        delta_data=tokens.delta_data(deltas),
        balance_data=tokens.balance_data(transfers),
        loans=loans,
        loan_rows=event_rows(loan_lines, loans),
    )


def record_batch(
    session: Session,
    chain_id: int,
    blocks: Sequence[BlockHeader],
    transfers: Sequence[TransferEvent],
    sales: Sequence[SaleEvent],
    listings: Sequence[ListingEvent],
    metadata_updates: Sequence[MetadataUpdateEvent],
    checkpoint_name: str | None,
    checkpoint_block: int | None,
    checkpoint_hash: str | None,
    oversized: Sequence[OversizedRange] = (),
    *,
    incremental: bool = True,
    loans: Sequence[LoanEvent] = (),
) -> RecordStats:
    """Record one batch in the session's transaction (the caller commits).

    Token rows are updated from the batch's new events (``incremental``), or else recomputed from
    all events of every touched token; both give the same rows.

    ``blocks`` must hold the header of every block an event refers to; it may hold more (blocks
    without events, so the follower's parent-hash chain has no holes)."""
    batch = prepare_batch(
        chain_id, blocks, transfers, sales, listings, metadata_updates, oversized, loans
    )
    return record_prepared(
        session,
        batch,
        checkpoint_name,
        checkpoint_block,
        checkpoint_hash,
        incremental=incremental,
    )


def record_prepared(
    session: Session,
    batch: PreparedBatch,
    checkpoint_name: str | None,
    checkpoint_block: int | None,
    checkpoint_hash: str | None,
    *,
    incremental: bool = True,
) -> RecordStats:
    """:func:`record_batch` of a batch already prepared by :func:`prepare_batch`."""
    stats = RecordStats()
    chain_id = batch.chain_id
    transfers, sales, listings = batch.transfers, batch.sales, batch.listings
    p = {"chain": chain_id}
    with staging.raw(session).cursor() as cur:
        # One writer per chain at a time: the follower and a backfill may overlap, and the token
        # merge must see every committed event of the other. (One round trip with the staging
        # and the partitions the batch's transfers and sales need, which usually exist already.)
        ensure = ""
        if batch.first_block is not None and batch.last_block is not None:
            ensure = ";" + partitions.ensure_sql(batch.first_block, batch.last_block)
        cur.execute(f"{writer_lock_sql(chain_id)};{staging.STAGING}{ensure}")
        if batch.block_rows:
            write_blocks(cur, batch.block_rows)
        # Whether any stored transfer or sale is at or after the batch's first block: when none
        # is (a forward scan), none of the batch's is stored and the per-table checks are moot.
        later = True
        if incremental and batch.first_block is not None:
            later = tokens.later_events(cur, chain_id, batch.first_block)
        # The events new to the database: all of them (None) unless this is a replay.
        new_transfers: Sequence[TransferEvent] | None = None
        new_sales: Sequence[SaleEvent] | None = None
        if transfers:
            new_transfers = record_transfers(
                cur, chain_id, transfers, batch.transfer_rows, check=later
            )
            stats.transfers = len(transfers if new_transfers is None else new_transfers)
        if listings:  # before the sales: an accepted punk bid is priced from its bid
            stats.listings = record_listings(cur, chain_id, listings, batch.listing_rows)
        if sales:
            new_sales = record_sales(
                cur, chain_id, sales, batch.sale_rows, batch.zero_sale_data, check=later
            )
            stats.sales = len(sales if new_sales is None else new_sales)
        if batch.oversized:
            record_ranges(cur, chain_id, batch.range_rows)
        if batch.loans and batch.loan_rows is not None:
            keys = insert_events(cur, LOANS, chain_id, batch.loan_rows)
            stats.loans = len(batch.loans) if keys is None else len(keys)
        all_new = new_transfers is None and new_sales is None
        fresh_transfers = transfers if new_transfers is None else new_transfers
        fresh_sales = sales if new_sales is None else new_sales
        if fresh_transfers or fresh_sales:
            if all_new:
                delta_data = batch.delta_data
            else:  # a replay: only the events new to the database count
                deltas = token_deltas(
                    fresh_transfers, fresh_sales, tokens.block_times(batch.times), batch.redo_sales
                )
                delta_data = tokens.delta_data(deltas)
            stats.tokens, stats.outbox = tokens.record_tokens(
                cur, p, delta_data, incremental=incremental, later=later
            )
        if fresh_transfers:
            if not incremental:  # the reference path: from all events of the touched tokens
                stats.balances = tokens.recompute_balances(cur, p)
            else:
                data = batch.balance_data if all_new else tokens.balance_data(fresh_transfers)
                if data:
                    stats.balances = tokens.merge_balances(cur, p, data)
        if batch.metadata_updates:
            stats.outbox += record_refreshes(cur, chain_id, batch.metadata_updates)
        stats.outbox += record_offers(cur, chain_id, listings, sales, transfers)
        if checkpoint_name is not None and checkpoint_block is not None:
            write_checkpoint(cur, checkpoint_name, chain_id, checkpoint_block, checkpoint_hash)
    return stats
