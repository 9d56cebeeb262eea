"""Transfer rows (and the EIP-2309 ranges too large to expand) of a batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from store.chain.staging import RANGES, TRANSFERS, EventRows, insert_events
from store.records import TransferEvent


def record_transfers(
    cur: Any,
    chain_id: int,
    transfers: Sequence[TransferEvent],
    rows: EventRows,
    *,
    check: bool,
) -> list[TransferEvent] | None:
    """Write ``transfers`` (their COPY ``rows``); returns those new to the database, or None
    when all of them were. ``check=False``: the caller knows none of them is stored."""
    keys = insert_events(cur, TRANSFERS, chain_id, rows, check=check)
    if keys is None:
        return None
    return [t for t in transfers if (t.block_hash, t.tx_hash, t.log_index, t.batch_index) in keys]


def record_ranges(cur: Any, chain_id: int, rows: EventRows) -> None:
    insert_events(cur, RANGES, chain_id, rows)
