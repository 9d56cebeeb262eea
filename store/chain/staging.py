"""COPY and the staging tables: a batch's rows as COPY text, written straight into the event
tables or through per-connection temp tables that empty themselves at commit.

The event tables' column lists, their staging tables and their COPY line builders are derived
from the records of :mod:`store.records`: each record's fields, in order, between ``chain_id``
and the block's time, typed as the same-named columns of :mod:`store.models`.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg.errors import UniqueViolation
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from store import models
from store.records import (
    ListingEvent,
    LoanEvent,
    MetadataUpdateEvent,
    OversizedRange,
    SaleEvent,
    TransferEvent,
)

# (chain id, dict of block hash -> ISO time, events) -> their COPY lines
LineBuilder = Callable[[int, dict[str, str], Iterable[Any]], list[str]]

_NULL = "\\N"
_KEY = ("block_hash", "tx_hash", "log_index", "batch_index")
_DIALECT = postgresql.dialect()
# Column types by name: the event tables agree on the type of every name they share.
_SQL_TYPES = {
    column.name: column.type.compile(dialect=_DIALECT)
    for model in (
        models.Transfer,
        models.Sale,
        models.Listing,
        models.Loan,
        models.ConsecutiveRange,
    )
    for column in model.__table__.columns
}


def _cell(name: str, hint: Any) -> str:
    """The f-string field of one attribute of ``e``: booleans as t/f, None as \\N."""
    if hint is bool:
        return f"{{'t' if e.{name} else 'f'}}"
    if type(None) in typing.get_args(hint):
        return f"{{_NULL if e.{name} is None else e.{name}}}"
    return f"{{e.{name}}}"


def _line_builder(record: type, *, located: bool) -> LineBuilder:
    """One f-string per row, compiled from the record's fields (as dataclasses builds its
    ``__init__``): a generic join costs a call per value, and this runs once per event.
    ``located``: the line starts with the chain id and ends with the block's time."""
    hints = typing.get_type_hints(record)
    cells = [_cell(f.name, hints[f.name]) for f in dataclasses.fields(record)]
    if located:
        cells = ["{chain_id}", *cells, "{times[e.block_hash]}"]
    line = "\\t".join(cells) + "\\n"
    source = f'def lines(chain_id, times, events):\n    return [f"{line}" for e in events]\n'
    namespace: dict[str, Any] = {"_NULL": _NULL}
    exec(source, namespace)
    builder: LineBuilder = namespace["lines"]
    return builder


class Staged:
    """A record's rows in one table: an event table and its ``_st_`` copy, or staging only."""

    __slots__ = ("columns", "keys", "lines", "names", "table")

    def __init__(self, table: str, record: type, *, located: bool) -> None:
        names = [f.name for f in dataclasses.fields(record)]
        if located:  # rows carry the chain id first and the block's time last
            names = ["chain_id", *names, "block_time"]
        self.table = table
        self.names: tuple[str, ...] = tuple(names)
        self.columns = ", ".join(names)
        self.keys = ", ".join(k for k in _KEY if k in names)  # the event key's columns
        self.lines = _line_builder(record, located=located)

    def staging_ddl(self) -> str:
        typed = ", ".join(f"{n} {_SQL_TYPES[n]}" for n in self.names)
        return f"CREATE TEMP TABLE IF NOT EXISTS _st_{self.table} ({typed}) ON COMMIT DELETE ROWS;"


TRANSFERS = Staged("transfers", TransferEvent, located=True)
SALES = Staged("sales", SaleEvent, located=True)
LISTINGS = Staged("listings", ListingEvent, located=True)
LOANS = Staged("loans", LoanEvent, located=True)
RANGES = Staged("consecutive_ranges", OversizedRange, located=True)
UPDATES = Staged("updates", MetadataUpdateEvent, located=False)  # staging only: refresh work

# The token deltas' and balance changes' staging (store.chain.tokens writes their lines).
DELTA_COLUMNS = (
    "contract, token_id, first_block, minted_here, rows, moves, mint_block, multi, fb, fl, fi, "
    "last_to, sales, sb, sl, si, last_price, last_time, redo"
)
_ADDR = _SQL_TYPES["contract"]
_UINT = _SQL_TYPES["token_id"]
_DERIVED_STAGING = f"""
CREATE TEMP TABLE IF NOT EXISTS _st_delta (
  contract {_ADDR}, token_id {_UINT}, first_block bigint, minted_here boolean,
  rows int, moves int, mint_block bigint, multi boolean, fb bigint, fl int, fi int,
  last_to {_ADDR}, sales int, sb bigint, sl int, si int, last_price {_UINT},
  last_time timestamptz, redo boolean, stored boolean NOT NULL DEFAULT false)
  ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS _st_touched (
  contract {_ADDR}, token_id {_UINT}) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS _st_balance (
  contract {_ADDR}, token_id {_UINT}, owner {_ADDR}, delta numeric(80,0))
  ON COMMIT DELETE ROWS;
"""

# Every staging table, created (if missing) by one statement at the start of each writing
# transaction. Hex columns compare byte by byte, as the tables they are joined with do
# (migration 0007). Read at call time (``staging.STAGING``): the ingest benchmark swaps it.
STAGING = (
    "\n".join(s.staging_ddl() for s in (TRANSFERS, SALES, LISTINGS, LOANS, UPDATES, RANGES))
    + _DERIVED_STAGING
)


def raw(session: Session) -> Any:
    """The psycopg connection under the session's transaction (for COPY)."""
    return session.connection().connection.driver_connection


def copy_data(cur: Any, sql: str, data: bytes) -> None:
    """COPY in text format, the lines built by the caller: the values are hex, digits, words and
    pre-formatted timestamps, none needing escapes, which is several times cheaper than
    per-value adaptation."""
    with cur.copy(sql) as cp:
        cp.write(data)


@dataclass(slots=True)
class EventRows:
    """One event table's share of a batch: its rows as COPY text (chain_id first), encoded, and
    the (number, hash) of their blocks."""

    data: bytes
    blocks: list[tuple[int, str]]


def event_rows(lines: list[str], events: Iterable[Any]) -> EventRows:
    return EventRows(
        "".join(lines).encode(), sorted({(e.block_number, e.block_hash) for e in events})
    )


def _exists(cur: Any, table: str, chain_id: int, blocks: Sequence[tuple[int, str]]) -> bool:
    """Whether ``table`` holds any event of these (number, hash) blocks. A hash fixes its number:
    the numbers only narrow the scan (``transfers``' key leads with the block number)."""
    cur.execute(
        f"SELECT EXISTS (SELECT 1 FROM {table} WHERE chain_id = %s AND block_number = ANY(%s) "
        "AND block_hash = ANY(%s))",
        (chain_id, [n for n, _ in blocks], [h for _, h in blocks]),
    )
    return bool(cur.fetchone()[0])


def insert_events(
    cur: Any, staged: Staged, chain_id: int, rows: EventRows, *, check: bool = True
) -> set[tuple[Any, ...]] | None:
    """Write event ``rows`` into ``staged.table``; returns the keys of the rows new to the
    database, or None when all were: the common case, a range seen for the first time, where COPY
    goes straight into the table. ``check=False``: the caller knows none of them is stored."""
    table = staged.table
    if not check or not _exists(cur, table, chain_id, rows.blocks):
        cur.execute("SAVEPOINT direct_copy")
        try:
            copy_data(cur, f"COPY {table} ({staged.columns}) FROM STDIN", rows.data)
        except UniqueViolation:
            # The batch repeats one of its own events: the ON CONFLICT path sorts it out.
            cur.execute("ROLLBACK TO SAVEPOINT direct_copy")
        else:
            cur.execute("RELEASE SAVEPOINT direct_copy")
            return None
    copy_data(cur, f"COPY _st_{table} FROM STDIN", rows.data)
    cur.execute(
        f"INSERT INTO {table} ({staged.columns}) SELECT * FROM _st_{table} "
        f"ON CONFLICT DO NOTHING RETURNING {staged.keys}"
    )
    return {tuple(r) for r in cur.fetchall()}
