"""Checkpoints (how far a scan got) and the stored block headers (the canonical chain the
follower checks reorgs against)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from store.chain.staging import raw
from store.records import BlockHeader

BlockRow = tuple[int, int, str, str, str]  # chain id, number, hash, parent hash, ISO time


def block_time(header: BlockHeader) -> str:
    """The block's time as the ISO text the COPY lines carry."""
    return dt.datetime.fromtimestamp(header.timestamp, tz=dt.UTC).isoformat()


def write_blocks(cur: Any, rows: Sequence[BlockRow]) -> None:
    """Insert or replace (a reorg) the headers of ``rows``."""
    cur.executemany(
        "INSERT INTO blocks (chain_id, number, hash, parent_hash, timestamp) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (chain_id, number) DO UPDATE SET "
        "hash = EXCLUDED.hash, parent_hash = EXCLUDED.parent_hash, "
        "timestamp = EXCLUDED.timestamp",
        rows,
    )


def write_checkpoint(
    cur: Any, name: str, chain_id: int, block: int, block_hash: str | None
) -> None:
    cur.execute(
        "INSERT INTO checkpoints (name, chain_id, block_number, block_hash) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET "
        "chain_id = EXCLUDED.chain_id, block_number = EXCLUDED.block_number, "
        "block_hash = EXCLUDED.block_hash, updated_at = now()",
        (name, chain_id, block, block_hash),
    )


def set_checkpoint(
    session: Session, name: str, chain_id: int, block: int, block_hash: str | None
) -> None:
    with raw(session).cursor() as cur:
        write_checkpoint(cur, name, chain_id, block, block_hash)


def get_checkpoint(session: Session, name: str) -> tuple[int, str | None] | None:
    """(block_number, block_hash) of checkpoint ``name``, or None."""
    with raw(session).cursor() as cur:
        cur.execute("SELECT block_number, block_hash FROM checkpoints WHERE name = %s", (name,))
        row = cur.fetchone()
    return (int(row[0]), row[1]) if row else None


def block_hashes(session: Session, chain_id: int, numbers: Sequence[int]) -> dict[int, str]:
    """Stored canonical hashes of ``numbers`` (those we have)."""
    if not numbers:
        return {}
    with raw(session).cursor() as cur:
        cur.execute(
            "SELECT number, hash FROM blocks WHERE chain_id = %s AND number = ANY(%s)",
            (chain_id, list(numbers)),
        )
        return {int(n): h for n, h in cur.fetchall()}


def latest_block(session: Session, chain_id: int) -> tuple[int, str] | None:
    with raw(session).cursor() as cur:
        cur.execute(
            "SELECT number, hash FROM blocks WHERE chain_id = %s ORDER BY number DESC LIMIT 1",
            (chain_id,),
        )
        row = cur.fetchone()
    return (int(row[0]), row[1]) if row else None
