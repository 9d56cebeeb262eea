"""Partitions of the event tables that grow with the chain (``transfers``, ``sales``): one per
:data:`store.models.PARTITION_SPAN` blocks, without a default partition (migration 0012 says
why). A writer makes sure the partitions of its rows exist before it writes them: the ingest does
at the start of every batch, and creates the next span's ahead, so the chain never reaches a
missing one; any other writer calls :func:`ensure_partitions` first."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from store.chain.staging import raw


def ensure_sql(lo: int, hi: int) -> str:
    """The statement that creates any missing partition for blocks ``lo..hi`` and the span after
    (ints inlined, so that it joins the batch's first round trip)."""
    return f"SELECT ensure_event_partitions({int(lo)}, {int(hi)})"


def ensure_partitions(session: Session, lo: int, hi: int) -> int:
    """Create any missing partition of ``transfers`` and ``sales`` for blocks ``lo..hi`` (and
    the span after), in the session's transaction; returns how many were created. Taking a SHARE
    UPDATE EXCLUSIVE lock on the parent only when one is missing: readers and writers go on."""
    with raw(session).cursor() as cur:
        cur.execute(ensure_sql(lo, hi))
        return int(cur.fetchone()[0])


def partitions(cur: Any, table: str) -> list[tuple[str, int, int]]:
    """(name, first block, last block + 1) of each partition of ``table``, in block order."""
    cur.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
        (table,),
    )
    out = []
    for name, bound in cur.fetchall():
        # FOR VALUES FROM ('1000000') TO ('2000000')
        lo, hi = (int(v.strip(" ()'")) for v in bound.split("FROM", 1)[1].split("TO"))
        out.append((str(name), lo, hi))
    return sorted(out, key=lambda p: p[1])
