"""Recording chain events: one transaction per batch, set-based SQL, COPY for the bulk rows.

``record_batch`` writes, atomically: the events (``ON CONFLICT DO NOTHING`` on their keys, so a
replay is a no-op), the block headers, the derived ``tokens`` rows of every touched token (the
batch's deltas merged in, or recomputed from all of its events), the ERC-1155 ``balances`` per
(token, owner) (net changes merged in), the checkpoint, and the outbox rows for the work the
events cause. ``rollback_to`` undoes everything above a block after a reorg and recomputes what
was derived from the removed events.

``record_batch`` = ``prepare_batch`` (pure Python: the COPY lines and the token deltas) +
``record_prepared`` (the SQL). A pipeline calls the two halves on different threads, so that the
Python half of one batch runs while Postgres works on the previous one.

The events are duck-typed (see the Protocols below) so that this module imports nothing of ours.

Outbox contract (the worker relies on it):

- a token seen for the first time (no ``tokens`` row before, or a mint in the batch):
  ``task="resolve", queue="resolve"``, payload ``{chain_id, contract, token_id (decimal string),
  block_number}``, dedupe key ``resolve:{chain_id}:{contract}:{token_id}``;
- an EIP-4906 / ERC-1155 URI update: the same task and payload, dedupe key
  ``refresh:{chain_id}:{block_hash}:{log_index}:{token_id}`` (a range update covers the known
  tokens of the contract inside the range);
- an on-chain listing (``offered``): ``task="value", queue="urgent"``, payload ``{chain_id,
  contract, token_id, reason: "listing", price_wei (string)}``, dedupe key
  ``value:{chain_id}:{block_hash}:{tx_hash}:{log_index}``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from psycopg.errors import UniqueViolation
from sqlalchemy.orm import Session

from store.token_delta import ZERO_ADDRESS, TokenDelta, balance_deltas, token_deltas, unpack


class BlockLike(Protocol):
    number: int
    hash: str
    parent_hash: str
    timestamp: int  # unix seconds


class TransferLike(Protocol):
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    batch_index: int
    contract: str
    token_id: int
    from_address: str
    to_address: str
    amount: int
    standard: str
    is_mint: bool


class SaleLike(Protocol):
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    batch_index: int
    contract: str
    token_id: int
    seller: str
    buyer: str
    price_wei: int
    currency: str
    marketplace: str
    inferred: bool


class ListingLike(Protocol):
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    contract: str
    token_id: int
    kind: str
    price_wei: int | None
    account: str


class RangeLike(Protocol):
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    contract: str
    from_token_id: int
    to_token_id: int
    from_address: str
    to_address: str


class MetadataUpdateLike(Protocol):
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    contract: str
    from_token_id: int
    to_token_id: int


@dataclass
class RecordStats:
    transfers: int = 0  # rows new to the database
    sales: int = 0
    listings: int = 0
    tokens: int = 0  # token rows recomputed
    outbox: int = 0  # outbox rows added
    balances: int = 0  # ERC-1155 balance rows written (merged or recomputed)


@dataclass
class RollbackStats:
    blocks: int = 0
    transfers: int = 0
    sales: int = 0
    listings: int = 0
    tokens: int = 0
    balances: int = 0


_LOCK_NS = 0x6E66  # advisory-lock namespace of chain writers


class MissingBlockError(ValueError):
    """An event refers to a block whose header was not passed."""


def token_key_sql(alias: str) -> str:
    """The hash ``ix_transfers_token`` indexes (migration 0006), over ``alias``'s contract and
    token id. Lookups by token compare it and the chain id first (the index's two columns), then
    the columns themselves (a collision costs a heap fetch, never a wrong row)."""
    return f"hashtextextended({alias}.contract || {alias}.token_id::text, 0)"


_X_KEY = token_key_sql("x")
_T_KEY = token_key_sql("t")
_D_KEY = token_key_sql("d")


# Staging tables live per connection and empty themselves at commit. Hex columns compare byte by
# byte, as the tables they are joined with do (migration 0007).
_ADDR = 'varchar(42) COLLATE "C"'
_HASH = 'varchar(66) COLLATE "C"'
_STAGING = f"""
CREATE TEMP TABLE IF NOT EXISTS _st_transfers (
  chain_id bigint, block_number bigint, block_hash {_HASH}, tx_hash {_HASH}, log_index int,
  batch_index int, block_time timestamptz, contract {_ADDR}, token_id numeric(78,0),
  from_address {_ADDR}, to_address {_ADDR}, amount numeric(78,0), standard varchar(16),
  is_mint boolean) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS _st_sales (
  chain_id bigint, block_number bigint, block_hash {_HASH}, tx_hash {_HASH}, log_index int,
  batch_index int, block_time timestamptz, contract {_ADDR}, token_id numeric(78,0),
  seller {_ADDR}, buyer {_ADDR}, price_wei numeric(78,0), currency {_ADDR},
  marketplace varchar(32), inferred boolean, fees_wei numeric(78,0)) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS _st_listings (
  chain_id bigint, block_number bigint, block_hash {_HASH}, tx_hash {_HASH}, log_index int,
  block_time timestamptz, contract {_ADDR}, token_id numeric(78,0), kind varchar(16),
  price_wei numeric(78,0), account {_ADDR}) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS _st_updates (
  block_number bigint, block_hash {_HASH}, log_index int, contract {_ADDR},
  from_id numeric(78,0), to_id numeric(78,0)) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS _st_consecutive_ranges (
  chain_id bigint, block_number bigint, block_hash {_HASH}, tx_hash {_HASH}, log_index int,
  block_time timestamptz, contract {_ADDR}, from_token_id numeric(78,0),
  to_token_id numeric(78,0), from_address {_ADDR}, to_address {_ADDR})
  ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS _st_delta (
  contract {_ADDR}, token_id numeric(78,0), first_block bigint, minted_here boolean,
  rows int, moves int, mint_block bigint, multi boolean, fb bigint, fl int, fi int,
  last_to {_ADDR}, sales int, sb bigint, sl int, si int, last_price numeric(78,0),
  last_time timestamptz, redo boolean, stored boolean NOT NULL DEFAULT false)
  ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS _st_touched (
  contract {_ADDR}, token_id numeric(78,0)) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS _st_balance (
  contract {_ADDR}, token_id numeric(78,0), owner {_ADDR}, delta numeric(80,0))
  ON COMMIT DELETE ROWS;
"""

# Recompute the derived columns of every token in _st_touched from all of its events.
_RECOMPUTE = f"""
WITH t AS (SELECT DISTINCT contract, token_id FROM _st_touched),
agg AS (
  SELECT t.contract, t.token_id, tr.*, sa.*
  FROM t
  CROSS JOIN LATERAL (
    SELECT min(x.block_number) FILTER (WHERE x.is_mint) AS minted_block,
           count(*) FILTER (WHERE NOT x.is_mint) AS transfer_count,
           count(*) AS transfer_rows,
           bool_or(x.standard = 'erc1155') AS multi,
           (array_agg(x.to_address
                      ORDER BY x.block_number DESC, x.log_index DESC, x.batch_index DESC))[1]
             AS last_to
    FROM transfers x
    WHERE {_X_KEY} = {_T_KEY}
      AND x.chain_id = %(chain)s AND x.contract = t.contract AND x.token_id = t.token_id) tr
  CROSS JOIN LATERAL (
    SELECT count(*) AS sale_count,
           (array_agg(s.price_wei
                      ORDER BY s.block_number DESC, s.log_index DESC, s.batch_index DESC))[1]
             AS last_price,
           max(s.block_time) AS last_time
    FROM sales s
    WHERE s.chain_id = %(chain)s AND s.contract = t.contract AND s.token_id = t.token_id) sa)
INSERT INTO tokens (chain_id, contract, token_id, owner, minted_block, transfer_count, sale_count,
                    last_sale_wei, last_sale_at, metadata_status, attempts)
SELECT %(chain)s, contract, token_id, CASE WHEN multi THEN NULL ELSE last_to END,
       minted_block, transfer_count, sale_count, last_price, last_time, 'pending', 0
FROM agg
WHERE transfer_rows > 0 OR sale_count > 0
ON CONFLICT (chain_id, contract, token_id) DO UPDATE SET
  owner = EXCLUDED.owner, minted_block = EXCLUDED.minted_block,
  transfer_count = EXCLUDED.transfer_count, sale_count = EXCLUDED.sale_count,
  last_sale_wei = EXCLUDED.last_sale_wei, last_sale_at = EXCLUDED.last_sale_at,
  updated_at = now()
"""

_DELETE_EVENTLESS_TOKENS = f"""
DELETE FROM tokens k USING (SELECT DISTINCT contract, token_id FROM _st_touched) t
WHERE k.chain_id = %(chain)s AND k.contract = t.contract AND k.token_id = t.token_id
  AND NOT EXISTS (SELECT 1 FROM transfers x WHERE {_X_KEY} = {_T_KEY}
                  AND x.chain_id = %(chain)s AND x.contract = t.contract
                  AND x.token_id = t.token_id)
  AND NOT EXISTS (SELECT 1 FROM sales s WHERE s.chain_id = %(chain)s
                  AND s.contract = t.contract AND s.token_id = t.token_id)
"""

# ERC-1155 balances are sums over a token's transfers, so a batch's net changes merge in any
# order; a row that reaches zero is deleted. MERGE rather than INSERT .. ON CONFLICT: about a third
# cheaper on the ingest benchmark, and the deletion happens in the same pass. Only the chain's
# writer (advisory lock) writes its balances, so no concurrent insert can race it.
_MERGE_BALANCES = """
MERGE INTO balances b
USING _st_balance s
ON b.chain_id = %(chain)s AND b.contract = s.contract AND b.token_id = s.token_id
  AND b.owner = s.owner
WHEN MATCHED AND b.amount + s.delta = 0 THEN DELETE
WHEN MATCHED THEN UPDATE SET amount = b.amount + s.delta
WHEN NOT MATCHED THEN INSERT (chain_id, contract, token_id, owner, amount)
  VALUES (%(chain)s, s.contract, s.token_id, s.owner, s.delta)
"""

# The balances of every token in _st_touched, from all of its ERC-1155 transfers (reorg rollback,
# the reference path, repairs): each transfer moves its amount from the sender to the recipient.
_CLEAR_BALANCES = """
DELETE FROM balances b USING (SELECT DISTINCT contract, token_id FROM _st_touched) t
WHERE b.chain_id = %(chain)s AND b.contract = t.contract AND b.token_id = t.token_id
"""
_RECOMPUTE_BALANCES = f"""
INSERT INTO balances (chain_id, contract, token_id, owner, amount)
SELECT %(chain)s, t.contract, t.token_id, m.owner, sum(m.amount)
FROM (SELECT DISTINCT contract, token_id FROM _st_touched) t
CROSS JOIN LATERAL (
  SELECT v.owner, v.amount
  FROM transfers x
  CROSS JOIN LATERAL (VALUES (x.to_address, x.amount), (x.from_address, -x.amount))
    v(owner, amount)
  WHERE {_X_KEY} = {_T_KEY}
    AND x.chain_id = %(chain)s AND x.contract = t.contract AND x.token_id = t.token_id
    AND x.standard = 'erc1155' AND v.owner <> '{ZERO_ADDRESS}') m
GROUP BY t.contract, t.token_id, m.owner
HAVING sum(m.amount) <> 0
"""

_OUTBOX_REFRESH = """
INSERT INTO outbox (task, queue, payload, dedupe_key, attempts)
SELECT 'resolve', 'resolve',
       jsonb_build_object('chain_id', %(chain)s::bigint, 'contract', r.contract,
                          'token_id', r.token_id::text, 'block_number', r.block_number),
       'refresh:' || %(chain)s::text || ':' || r.block_hash || ':' || r.log_index::text || ':'
         || r.token_id::text, 0
FROM (
  SELECT u.block_number, u.block_hash, u.log_index, u.contract, u.from_id AS token_id
  FROM _st_updates u WHERE u.from_id = u.to_id
  UNION
  SELECT u.block_number, u.block_hash, u.log_index, u.contract, k.token_id
  FROM _st_updates u JOIN tokens k ON k.chain_id = %(chain)s AND k.contract = u.contract
   AND k.token_id BETWEEN u.from_id AND u.to_id
  WHERE u.from_id <> u.to_id) r
ORDER BY r.block_number, r.log_index, r.token_id
ON CONFLICT (dedupe_key) DO NOTHING
"""

# CryptoPunks' acceptBidForPunk emits PunkBought with value 0: the price is the accepted bid,
# the buyer's latest PunkBidEntered for that punk before the sale.
_FIX_PUNK_BID_PRICES = """
UPDATE sales s SET price_wei = b.price_wei, inferred = true
FROM _st_sales st, LATERAL (
  SELECT l.price_wei FROM listings l
  WHERE l.chain_id = %(chain)s AND l.contract = st.contract AND l.token_id = st.token_id
    AND l.kind = 'bid' AND l.account = st.buyer
    AND (l.block_number, l.log_index) < (st.block_number, st.log_index)
  ORDER BY l.block_number DESC, l.log_index DESC LIMIT 1) b
WHERE st.marketplace = 'cryptopunks' AND st.price_wei = 0
  AND s.chain_id = %(chain)s AND s.block_hash = st.block_hash AND s.tx_hash = st.tx_hash
  AND s.log_index = st.log_index AND s.batch_index = st.batch_index
"""


def _raw(session: Session) -> Any:
    """The psycopg connection under the session's transaction (for COPY)."""
    return session.connection().connection.driver_connection


def _utc(ts: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC)


def _copy_rows(cur: Any, sql: str, rows: Iterable[tuple[Any, ...]]) -> None:
    """COPY in text format, the lines built here: the values are hex, digits, words and
    pre-formatted timestamps, none needing escapes, and this is several times cheaper than
    per-value adaptation."""
    buf: list[str] = []
    with cur.copy(sql) as cp:
        for row in rows:
            buf.append("\t".join([_cell(v) for v in row]))
            if len(buf) >= 20_000:
                buf.append("")
                cp.write("\n".join(buf))
                buf = []
        if buf:
            buf.append("")
            cp.write("\n".join(buf))


def _cell(v: Any) -> str:
    if v is None:
        return "\\N"
    if v is True:
        return "t"
    if v is False:
        return "f"
    return str(v)


def _exists(cur: Any, table: str, chain_id: int, blocks: Sequence[tuple[int, str]]) -> bool:
    """Whether ``table`` holds any event of these (number, hash) blocks. A hash fixes its number:
    the numbers only narrow the scan (``transfers``' key leads with the block number)."""
    cur.execute(
        f"SELECT EXISTS (SELECT 1 FROM {table} WHERE chain_id = %s AND block_number = ANY(%s) "
        "AND block_hash = ANY(%s))",
        (chain_id, [n for n, _ in blocks], [h for _, h in blocks]),
    )
    return bool(cur.fetchone()[0])


def _insert_events(
    cur: Any, table: str, columns: str, chain_id: int, rows: EventRows, *, check: bool = True
) -> set[tuple[Any, ...]] | None:
    """Write event ``rows`` into ``table``; returns the keys of the rows new to the database, or
    None when all were: the common case, a range seen for the first time, where COPY goes
    straight into the table. ``check=False``: the caller knows none of them is stored."""
    if not check or not _exists(cur, table, chain_id, rows.blocks):
        cur.execute("SAVEPOINT direct_copy")
        try:
            _copy_data(cur, f"COPY {table} (chain_id, {columns}) FROM STDIN", rows.data)
        except UniqueViolation:
            # The batch repeats one of its own events: the ON CONFLICT path sorts it out.
            cur.execute("ROLLBACK TO SAVEPOINT direct_copy")
        else:
            cur.execute("RELEASE SAVEPOINT direct_copy")
            return None
    _copy_data(cur, f"COPY _st_{table} FROM STDIN", rows.data)
    key_cols = "block_hash, tx_hash, log_index" + (
        ", batch_index" if "batch_index" in columns else ""
    )
    cur.execute(
        f"INSERT INTO {table} (chain_id, {columns}) SELECT * FROM _st_{table} "
        f"ON CONFLICT DO NOTHING RETURNING {key_cols}"
    )
    return {tuple(r) for r in cur.fetchall()}


def _copy_data(cur: Any, sql: str, data: bytes) -> None:
    with cur.copy(sql) as cp:
        cp.write(data)


def _line(*values: Any) -> str:
    return "\t".join([_cell(v) for v in values]) + "\n"


_TRANSFER_COLS = (
    "block_number, block_hash, tx_hash, log_index, batch_index, block_time, contract, token_id, "
    "from_address, to_address, amount, standard, is_mint"
)
_SALE_COLS = (
    "block_number, block_hash, tx_hash, log_index, batch_index, block_time, contract, token_id, "
    "seller, buyer, price_wei, currency, marketplace, inferred, fees_wei"
)
_LISTING_COLS = (
    "block_number, block_hash, tx_hash, log_index, block_time, contract, token_id, kind, "
    "price_wei, account"
)
_RANGE_COLS = (
    "block_number, block_hash, tx_hash, log_index, block_time, contract, from_token_id, "
    "to_token_id, from_address, to_address"
)

# Merge the batch's deltas into the stored rows (tokens whose delta is mergeable: see
# store.token_delta). A new token takes the delta as it is. MERGE costs about 40% less than the
# equivalent INSERT .. ON CONFLICT (no speculative insertion) on the ingest benchmark, but raises
# a unique violation if another transaction inserts one of the tokens meanwhile (chain writers
# are serialised by the advisory lock; the punk importer is not): then the upsert does it.
_MERGE_DELTAS = """
MERGE INTO tokens k USING (SELECT * FROM _st_delta WHERE NOT redo) d
ON k.chain_id = %(chain)s AND k.contract = d.contract AND k.token_id = d.token_id
WHEN MATCHED THEN UPDATE SET
  owner = coalesce(CASE WHEN d.multi THEN NULL ELSE d.last_to END, k.owner),
  minted_block = least(k.minted_block, d.mint_block),
  transfer_count = k.transfer_count + d.moves,
  sale_count = k.sale_count + d.sales,
  last_sale_wei = coalesce(d.last_price, k.last_sale_wei),
  last_sale_at = greatest(k.last_sale_at, d.last_time),
  updated_at = now()
WHEN NOT MATCHED THEN INSERT (chain_id, contract, token_id, owner, minted_block, transfer_count,
    sale_count, last_sale_wei, last_sale_at, metadata_status, attempts)
  VALUES (%(chain)s, d.contract, d.token_id, CASE WHEN d.multi THEN NULL ELSE d.last_to END,
    d.mint_block, d.moves, d.sales, d.last_price, d.last_time, 'pending', 0)
"""
# The same merge, safe against concurrent inserts (keep the two in step).
_UPSERT_DELTAS = """
INSERT INTO tokens (chain_id, contract, token_id, owner, minted_block, transfer_count, sale_count,
                    last_sale_wei, last_sale_at, metadata_status, attempts)
SELECT %(chain)s, d.contract, d.token_id, CASE WHEN d.multi THEN NULL ELSE d.last_to END,
       d.mint_block, d.moves, d.sales, d.last_price, d.last_time, 'pending', 0
FROM _st_delta d WHERE NOT d.redo
ON CONFLICT (chain_id, contract, token_id) DO UPDATE SET
  owner = coalesce(EXCLUDED.owner, tokens.owner),
  minted_block = least(tokens.minted_block, EXCLUDED.minted_block),
  transfer_count = tokens.transfer_count + EXCLUDED.transfer_count,
  sale_count = tokens.sale_count + EXCLUDED.sale_count,
  last_sale_wei = coalesce(EXCLUDED.last_sale_wei, tokens.last_sale_wei),
  last_sale_at = greatest(tokens.last_sale_at, EXCLUDED.last_sale_at),
  updated_at = now()
"""

# One pass over the batch's tokens that are already stored: marks them ``stored`` (the resolve
# work below is for the others) and decides which deltas merge. A delta merges only if the stored
# row and the batch agree on single vs several owners (an ERC-1155 row in the batch: none; a
# stored row without owner: sales only, or ERC-1155), and the batch's new events come after every
# stored event of the token: the count of its events at or after the batch's first one is the
# batch's own count. Otherwise: recompute. The count is skipped when no stored event of the chain
# is at or above the batch's first block (the usual forward scan).
_MARK_STORED = """
UPDATE _st_delta d SET stored = true, redo = {redo}
FROM tokens k
WHERE k.chain_id = %(chain)s AND k.contract = d.contract AND k.token_id = d.token_id
"""
_MERGEABLE = "d.redo OR (k.owner IS NULL) <> d.multi"
_ORDER_CHECK = f"""
    OR (d.rows > 0 AND d.rows <> (
      SELECT count(*) FROM transfers x
      WHERE {_X_KEY} = {_D_KEY}
        AND x.chain_id = %(chain)s AND x.contract = d.contract AND x.token_id = d.token_id
        AND x.block_number >= d.fb
        AND (x.block_number, x.log_index, x.batch_index) >= (d.fb, d.fl, d.fi)))
    OR (d.sales > 0 AND d.sales <> (
      SELECT count(*) FROM sales x
      WHERE x.chain_id = %(chain)s AND x.contract = d.contract AND x.token_id = d.token_id
        AND x.block_number >= d.sb
        AND (x.block_number, x.log_index, x.batch_index) >= (d.sb, d.sl, d.si)))"""
_LATER_EVENTS = """
SELECT EXISTS (SELECT 1 FROM transfers WHERE chain_id = %(chain)s AND block_number >= %(n)s)
    OR EXISTS (SELECT 1 FROM sales WHERE chain_id = %(chain)s AND block_number >= %(n)s)
"""

_DELTA_COLS = (
    "contract, token_id, first_block, minted_here, rows, moves, mint_block, multi, fb, fl, fi, "
    "last_to, sales, sb, sl, si, last_price, last_time, redo"
)

# Resolve work for the batch's tokens not stored before it (and re-minted ones).
_OUTBOX_RESOLVE = """
INSERT INTO outbox (task, queue, payload, dedupe_key, attempts)
SELECT 'resolve', 'resolve',
       jsonb_build_object('chain_id', %(chain)s::bigint, 'contract', d.contract,
                          'token_id', d.token_id::text, 'block_number', d.first_block),
       'resolve:' || %(chain)s::text || ':' || d.contract || ':' || d.token_id::text, 0
FROM _st_delta d
WHERE d.minted_here OR NOT d.stored
ORDER BY d.first_block, d.contract, d.token_id
ON CONFLICT (dedupe_key) DO NOTHING
"""


@dataclass(slots=True)
class EventRows:
    """One event table's share of a batch: its rows as COPY text (chain_id first), encoded, and
    the (number, hash) of their blocks."""

    data: bytes
    blocks: list[tuple[int, str]]


def _event_rows(lines: list[str], events: Iterable[Any]) -> EventRows:
    return EventRows(
        "".join(lines).encode(), sorted({(e.block_number, e.block_hash) for e in events})
    )


@dataclass(slots=True)
class PreparedBatch:
    """The half of recording a batch that needs no database: the COPY text of its events and of
    the token deltas computed as if every event were new (the common case; the writer recomputes
    them when the database already holds some). Built by :func:`prepare_batch`, so that a
    pipeline builds it on the thread that decodes while the writer thread waits on Postgres."""

    chain_id: int
    block_rows: list[tuple[int, int, str, str, str]]
    times: dict[str, str]  # block hash -> ISO timestamp
    transfers: Sequence[TransferLike]
    transfer_rows: EventRows
    sales: Sequence[SaleLike]
    sale_rows: EventRows
    listings: Sequence[ListingLike]
    listing_rows: EventRows
    oversized: Sequence[RangeLike]
    range_rows: EventRows
    metadata_updates: Sequence[MetadataUpdateLike]
    # CryptoPunks' accepted bids: no price in the event, filled from the bid in SQL
    zero_sale_data: bytes  # their COPY text
    redo_sales: frozenset[tuple[str, str, int, int]]
    first_block: int | None  # earliest block of a transfer or sale
    delta_data: bytes
    balance_data: bytes  # net ERC-1155 balance changes


def prepare_batch(
    chain_id: int,
    blocks: Sequence[BlockLike],
    transfers: Sequence[TransferLike],
    sales: Sequence[SaleLike],
    listings: Sequence[ListingLike],
    metadata_updates: Sequence[MetadataUpdateLike],
    oversized: Sequence[RangeLike] = (),
) -> PreparedBatch:
    """Build the database-independent part of :func:`record_batch` (pure Python).

    Raises :class:`MissingBlockError` when an event's block is not among ``blocks``."""
    times = {b.hash: _utc(b.timestamp).isoformat() for b in blocks}
    try:
        transfer_lines = _transfer_lines(chain_id, times, transfers)
        sale_lines = _sale_lines(chain_id, times, sales)
        listing_lines = _listing_lines(chain_id, times, listings)
        range_lines = _range_lines(chain_id, times, oversized)
    except KeyError as exc:
        raise MissingBlockError(f"no header passed for block {exc.args[0]}") from None
    zero_sales = [
        i for i, s in enumerate(sales) if s.marketplace == "cryptopunks" and s.price_wei == 0
    ]
    redo_sales = frozenset(
        (s.block_hash, s.tx_hash, s.log_index, s.batch_index)
        for s in (sales[i] for i in zero_sales)
    )
    first_block = min((e.block_number for seq in (transfers, sales) for e in seq), default=None)
    deltas = token_deltas(transfers, sales, _parse_time(times), redo_sales)
    return PreparedBatch(
        chain_id,
        [(chain_id, b.number, b.hash, b.parent_hash, times[b.hash]) for b in blocks],
        times,
        transfers,
        _event_rows(transfer_lines, transfers),
        sales,
        _event_rows(sale_lines, sales),
        listings,
        _event_rows(listing_lines, listings),
        oversized,
        _event_rows(range_lines, oversized),
        metadata_updates,
        "".join(sale_lines[i] for i in zero_sales).encode(),
        redo_sales,
        first_block,
        _delta_data(deltas),
        _balance_data(transfers),
    )


def _transfer_lines(
    chain_id: int, times: dict[str, str], transfers: Iterable[TransferLike]
) -> list[str]:
    # one f-string per row: the generic _line costs a call per value, and this runs per transfer
    return [
        f"{chain_id}\t{t.block_number}\t{t.block_hash}\t{t.tx_hash}\t{t.log_index}\t"
        f"{t.batch_index}\t{times[t.block_hash]}\t{t.contract}\t{t.token_id}\t"
        f"{t.from_address}\t{t.to_address}\t{t.amount}\t{t.standard}\t"
        f"{'t' if t.is_mint else 'f'}\n"
        for t in transfers
    ]


def _sale_lines(chain_id: int, times: dict[str, str], sales: Iterable[SaleLike]) -> list[str]:
    return [
        _line(
            chain_id,
            s.block_number,
            s.block_hash,
            s.tx_hash,
            s.log_index,
            s.batch_index,
            times[s.block_hash],
            s.contract,
            s.token_id,
            s.seller,
            s.buyer,
            s.price_wei,
            s.currency,
            s.marketplace,
            s.inferred,
            getattr(s, "fees_wei", 0),
        )
        for s in sales
    ]


def _listing_lines(
    chain_id: int, times: dict[str, str], listings: Iterable[ListingLike]
) -> list[str]:
    return [
        _line(
            chain_id,
            li.block_number,
            li.block_hash,
            li.tx_hash,
            li.log_index,
            times[li.block_hash],
            li.contract,
            li.token_id,
            li.kind,
            li.price_wei,
            li.account,
        )
        for li in listings
    ]


def _range_lines(chain_id: int, times: dict[str, str], ranges: Iterable[RangeLike]) -> list[str]:
    return [
        _line(
            chain_id,
            o.block_number,
            o.block_hash,
            o.tx_hash,
            o.log_index,
            times[o.block_hash],
            o.contract,
            o.from_token_id,
            o.to_token_id,
            o.from_address,
            o.to_address,
        )
        for o in ranges
    ]


def record_batch(
    session: Session,
    chain_id: int,
    blocks: Sequence[BlockLike],
    transfers: Sequence[TransferLike],
    sales: Sequence[SaleLike],
    listings: Sequence[ListingLike],
    metadata_updates: Sequence[MetadataUpdateLike],
    checkpoint_name: str | None,
    checkpoint_block: int | None,
    checkpoint_hash: str | None,
    oversized: Sequence[RangeLike] = (),
    *,
    incremental: bool = True,
) -> RecordStats:
    """Record one batch in the session's transaction (the caller commits).

    Token rows are updated from the batch's new events (``incremental``), or else recomputed from
    all events of every touched token; both give the same rows.

    ``blocks`` must hold the header of every block an event refers to; it may hold more (blocks
    without events, so the follower's parent-hash chain has no holes)."""
    batch = prepare_batch(chain_id, blocks, transfers, sales, listings, metadata_updates, oversized)
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
    with _raw(session).cursor() as cur:
        # One writer per chain at a time: the follower and a backfill may overlap, and the token
        # merge must see every committed event of the other. (Integers inlined: one round trip.)
        cur.execute(f"SELECT pg_advisory_xact_lock({_LOCK_NS}, {chain_id % 2**31});{_STAGING}")
        if batch.block_rows:
            cur.executemany(
                "INSERT INTO blocks (chain_id, number, hash, parent_hash, timestamp) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (chain_id, number) DO UPDATE SET "
                "hash = EXCLUDED.hash, parent_hash = EXCLUDED.parent_hash, "
                "timestamp = EXCLUDED.timestamp",
                batch.block_rows,
            )
        # Whether any stored transfer or sale is at or after the batch's first block: when none
        # is (a forward scan), none of the batch's is stored and the per-table checks are moot.
        later = True
        if incremental and batch.first_block is not None:
            cur.execute(_LATER_EVENTS, {"chain": chain_id, "n": batch.first_block})
            later = bool(cur.fetchone()[0])
        all_new = True
        new_transfers: Sequence[TransferLike] = transfers
        if transfers:
            keys = _insert_events(
                cur, "transfers", _TRANSFER_COLS, chain_id, batch.transfer_rows, check=later
            )
            if keys is not None:
                all_new = False
                new_transfers = [
                    t
                    for t in transfers
                    if (t.block_hash, t.tx_hash, t.log_index, t.batch_index) in keys
                ]
            stats.transfers = len(new_transfers)
        if listings:
            keys = _insert_events(cur, "listings", _LISTING_COLS, chain_id, batch.listing_rows)
            stats.listings = len(listings) if keys is None else len(keys)
        new_sales: Sequence[SaleLike] = sales
        if sales:
            keys = _insert_events(cur, "sales", _SALE_COLS, chain_id, batch.sale_rows, check=later)
            if keys is not None:
                all_new = False
                new_sales = [
                    s
                    for s in sales
                    if (s.block_hash, s.tx_hash, s.log_index, s.batch_index) in keys
                ]
            stats.sales = len(new_sales)
            if batch.zero_sale_data:
                if keys is None:
                    _copy_data(cur, "COPY _st_sales FROM STDIN", batch.zero_sale_data)
                cur.execute(_FIX_PUNK_BID_PRICES, p)
        if batch.oversized:
            _insert_events(cur, "consecutive_ranges", _RANGE_COLS, chain_id, batch.range_rows)
        if new_transfers or new_sales:
            if all_new:
                delta_data = batch.delta_data
            else:  # a replay: only the events new to the database count
                deltas = token_deltas(
                    new_transfers, new_sales, _parse_time(batch.times), batch.redo_sales
                )
                delta_data = _delta_data(deltas)
            _record_tokens(cur, p, delta_data, stats, incremental=incremental, later=later)
        if new_transfers:
            if not incremental:  # the reference path: from all events of the touched tokens
                cur.execute(_CLEAR_BALANCES, p)
                cur.execute(_RECOMPUTE_BALANCES, p)
                stats.balances = cur.rowcount
            else:
                data = batch.balance_data if all_new else _balance_data(new_transfers)
                if data:
                    stats.balances = _merge_balances(cur, p, data)
        if batch.metadata_updates:
            stats.outbox += _record_refreshes(cur, p, batch.metadata_updates)
        offered = [li for li in listings if li.kind == "offered"]
        if offered:
            stats.outbox += _record_offers(cur, chain_id, offered)
        if checkpoint_name is not None and checkpoint_block is not None:
            _set_checkpoint(cur, checkpoint_name, chain_id, checkpoint_block, checkpoint_hash)
    return stats


def _record_refreshes(cur: Any, p: dict[str, Any], updates: Sequence[MetadataUpdateLike]) -> int:
    """Refresh work for EIP-4906 / ERC-1155 URI updates; returns the outbox rows added."""
    _copy_rows(
        cur,
        "COPY _st_updates FROM STDIN",
        (
            (u.block_number, u.block_hash, u.log_index, u.contract, u.from_token_id, u.to_token_id)
            for u in updates
        ),
    )
    cur.execute(_OUTBOX_REFRESH, p)
    return int(cur.rowcount)


def _record_offers(cur: Any, chain_id: int, offered: Sequence[ListingLike]) -> int:
    """Urgent valuation work for on-chain listings; returns the outbox rows added."""
    cur.executemany(
        "INSERT INTO outbox (task, queue, payload, dedupe_key, attempts) "
        "VALUES ('value', 'urgent', %s::jsonb, %s, 0) ON CONFLICT (dedupe_key) DO NOTHING",
        [
            (
                json.dumps(
                    {
                        "chain_id": chain_id,
                        "contract": li.contract,
                        "token_id": str(li.token_id),
                        "reason": "listing",
                        "price_wei": str(li.price_wei or 0),
                    }
                ),
                f"value:{chain_id}:{li.block_hash}:{li.tx_hash}:{li.log_index}",
            )
            for li in sorted(offered, key=lambda x: (x.block_number, x.log_index))
        ],
    )
    return max(0, int(cur.rowcount))


def _record_tokens(
    cur: Any,
    p: dict[str, Any],
    delta_data: bytes,
    stats: RecordStats,
    *,
    incremental: bool,
    later: bool,
) -> None:
    """The token rows and resolve work of a batch's new events (``delta_data``: COPY text of
    ``_st_delta``): deltas merged where they can be, the other tokens recomputed."""
    _copy_data(cur, f"COPY _st_delta ({_DELTA_COLS}) FROM STDIN", delta_data)
    # the reference path (not incremental) recomputes every token from all of its events
    mergeable = _MERGEABLE + (_ORDER_CHECK if later else "")
    cur.execute(_MARK_STORED.format(redo=mergeable if incremental else "true"), p)
    if not incremental:
        cur.execute("UPDATE _st_delta SET redo = true WHERE NOT stored")
    cur.execute(_OUTBOX_RESOLVE, p)
    stats.outbox += cur.rowcount
    stats.tokens = _merge_deltas(cur, p)
    cur.execute("INSERT INTO _st_touched SELECT contract, token_id FROM _st_delta WHERE redo")
    if cur.rowcount:
        cur.execute(_RECOMPUTE, p)
        stats.tokens += cur.rowcount


def _merge_deltas(cur: Any, p: dict[str, Any]) -> int:
    """Token rows written by merging ``_st_delta``."""
    cur.execute("SAVEPOINT merge_tokens")
    try:
        cur.execute(_MERGE_DELTAS, p)
    except UniqueViolation:  # a token row inserted by another transaction meanwhile
        cur.execute("ROLLBACK TO SAVEPOINT merge_tokens")
        cur.execute(_UPSERT_DELTAS, p)
        return int(cur.rowcount)
    written = int(cur.rowcount)
    cur.execute("RELEASE SAVEPOINT merge_tokens")
    return written


def _balance_data(transfers: Iterable[TransferLike]) -> bytes:
    """COPY text of ``_st_balance``: the net ERC-1155 balance changes of ``transfers``, in key
    order, so that the merge inserts into the balances' key in order rather than at random
    leaves (about a tenth off the merge on the ingest benchmark)."""
    return "".join(
        f"{c}\t{token_id}\t{owner}\t{delta}\n"
        for (c, token_id, owner), delta in sorted(balance_deltas(transfers).items())
    ).encode()


def _delta_data(deltas: Iterable[TokenDelta]) -> bytes:
    return "".join(_delta_lines(deltas)).encode()


def _merge_balances(cur: Any, p: dict[str, Any], data: bytes) -> int:
    _copy_data(cur, "COPY _st_balance FROM STDIN", data)
    cur.execute(_MERGE_BALANCES, p)
    return int(cur.rowcount)


def _delta_lines(deltas: Iterable[TokenDelta]) -> list[str]:
    """COPY lines of ``_st_delta``, one f-string per delta (the generic ``_line`` costs a call
    per value, and there is a delta per touched token)."""
    out = []
    for d in deltas:
        fp = d.first_pos
        line = (
            f"{d.contract}\t{d.token_id}\t{d.first_block}\t{'t' if d.minted_here else 'f'}\t"
            f"{d.rows}\t{d.moves}\t{_NULL if d.mint_block is None else d.mint_block}\t"
            f"{'t' if d.multi else 'f'}\t"
            + (_NULL3 if fp is None else "{}\t{}\t{}\t".format(*unpack(fp)))
            + f"{_NULL if d.last_to is None else d.last_to}\t{d.sales}\t"
        )
        if d.sales:  # a minority of tokens: the sale columns
            sp = d.sale_first_pos
            lt = d.last_time
            line += (
                (_NULL3 if sp is None else "{}\t{}\t{}\t".format(*unpack(sp)))
                + f"{_NULL if d.last_price is None else d.last_price}\t"
                f"{_NULL if lt is None else lt.isoformat()}\t{'t' if d.redo else 'f'}\n"
            )
        else:
            line += "\\N\t\\N\t\\N\t\\N\t\\N\t" + ("t\n" if d.redo else "f\n")
        out.append(line)
    return out


_NULL3 = "\\N\t\\N\t\\N\t"
_NULL = "\\N"


def _parse_time(times: dict[str, str]) -> Any:
    parsed: dict[str, dt.datetime] = {}

    def when(block_hash: str) -> dt.datetime:
        t = parsed.get(block_hash)
        if t is None:
            t = parsed[block_hash] = dt.datetime.fromisoformat(times[block_hash])
        return t

    return when


def _set_checkpoint(cur: Any, name: str, chain_id: int, block: int, block_hash: str | None) -> None:
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
    with _raw(session).cursor() as cur:
        _set_checkpoint(cur, name, chain_id, block, block_hash)


def get_checkpoint(session: Session, name: str) -> tuple[int, str | None] | None:
    """(block_number, block_hash) of checkpoint ``name``, or None."""
    with _raw(session).cursor() as cur:
        cur.execute("SELECT block_number, block_hash FROM checkpoints WHERE name = %s", (name,))
        row = cur.fetchone()
    return (int(row[0]), row[1]) if row else None


def block_hashes(session: Session, chain_id: int, numbers: Sequence[int]) -> dict[int, str]:
    """Stored canonical hashes of ``numbers`` (those we have)."""
    if not numbers:
        return {}
    with _raw(session).cursor() as cur:
        cur.execute(
            "SELECT number, hash FROM blocks WHERE chain_id = %s AND number = ANY(%s)",
            (chain_id, list(numbers)),
        )
        return {int(n): h for n, h in cur.fetchall()}


def latest_block(session: Session, chain_id: int) -> tuple[int, str] | None:
    with _raw(session).cursor() as cur:
        cur.execute(
            "SELECT number, hash FROM blocks WHERE chain_id = %s ORDER BY number DESC LIMIT 1",
            (chain_id,),
        )
        row = cur.fetchone()
    return (int(row[0]), row[1]) if row else None


def rollback_to(session: Session, chain_id: int, block_number: int) -> RollbackStats:
    """Delete every event and block row of ``chain_id`` above ``block_number`` (a reorg's common
    ancestor), recompute the tokens they touched (removing those left without events), drop the
    unsent work queued by orphaned blocks, and move checkpoints beyond it back to it."""
    stats = RollbackStats()
    p = {"chain": chain_id, "n": block_number}
    with _raw(session).cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_NS, chain_id % 2**31))
        cur.execute(_STAGING)
        cur.execute(
            "INSERT INTO _st_touched SELECT contract, token_id FROM transfers "
            "WHERE chain_id = %(chain)s AND block_number > %(n)s "
            "UNION SELECT contract, token_id FROM sales "
            "WHERE chain_id = %(chain)s AND block_number > %(n)s",
            p,
        )
        # Unsent refresh/listing work from orphaned blocks: their keys carry the block hash.
        cur.execute(
            "WITH orphan AS (SELECT hash FROM blocks WHERE chain_id = %(chain)s AND number > %(n)s "
            " UNION SELECT block_hash FROM transfers WHERE chain_id = %(chain)s "
            "   AND block_number > %(n)s "
            " UNION SELECT block_hash FROM listings WHERE chain_id = %(chain)s "
            "   AND block_number > %(n)s) "
            "DELETE FROM outbox o USING orphan WHERE o.sent_at IS NULL "
            "AND (o.dedupe_key LIKE 'refresh:%%' OR o.dedupe_key LIKE 'value:%%') "
            "AND split_part(o.dedupe_key, ':', 2) = %(chain)s::text "
            "AND split_part(o.dedupe_key, ':', 3) = orphan.hash",
            p,
        )
        for table, attr in (
            ("transfers", "transfers"),
            ("sales", "sales"),
            ("listings", "listings"),
            ("consecutive_ranges", None),
            ("blocks", "blocks"),
        ):
            col = "number" if table == "blocks" else "block_number"
            cur.execute(f"DELETE FROM {table} WHERE chain_id = %(chain)s AND {col} > %(n)s", p)
            if attr is not None:
                setattr(stats, attr, cur.rowcount)
        cur.execute(_RECOMPUTE, p)
        stats.tokens = cur.rowcount
        cur.execute(_CLEAR_BALANCES, p)
        cur.execute(_RECOMPUTE_BALANCES, p)
        stats.balances = cur.rowcount
        # Tokens that only orphaned blocks knew: gone, with their unsent resolve work.
        cur.execute(
            "DELETE FROM outbox o USING _st_touched t WHERE o.sent_at IS NULL "
            "AND o.dedupe_key = 'resolve:' || %(chain)s::text || ':' || t.contract || ':' "
            "|| t.token_id::text AND NOT EXISTS (SELECT 1 FROM transfers x WHERE "
            f"{_X_KEY} = {_T_KEY} "
            "AND x.chain_id = %(chain)s AND x.contract = t.contract AND x.token_id = t.token_id) "
            "AND NOT EXISTS (SELECT 1 FROM sales s WHERE s.chain_id = %(chain)s "
            "AND s.contract = t.contract AND s.token_id = t.token_id)",
            p,
        )
        cur.execute(_DELETE_EVENTLESS_TOKENS, p)
        stats.tokens += cur.rowcount
        cur.execute(
            "UPDATE checkpoints c SET block_number = %(n)s, "
            "block_hash = (SELECT hash FROM blocks b WHERE b.chain_id = %(chain)s "
            "AND b.number = %(n)s), updated_at = now() "
            "WHERE c.chain_id = %(chain)s AND c.block_number > %(n)s",
            p,
        )
    return stats


def recompute_tokens(session: Session, chain_id: int) -> int:
    """Recompute the derived columns of every token of ``chain_id`` that has events, and its
    ERC-1155 balances, from all of its events (a repair tool, and the reference the incremental
    update is checked against). Returns the number of token rows written."""
    with _raw(session).cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_NS, chain_id % 2**31))
        cur.execute(_STAGING)
        cur.execute(
            "INSERT INTO _st_touched SELECT contract, token_id FROM transfers "
            "WHERE chain_id = %(chain)s UNION SELECT contract, token_id FROM sales "
            "WHERE chain_id = %(chain)s",
            {"chain": chain_id},
        )
        cur.execute("ANALYZE _st_touched")
        cur.execute(_RECOMPUTE, {"chain": chain_id})
        written = int(cur.rowcount)
        cur.execute(_CLEAR_BALANCES, {"chain": chain_id})
        cur.execute(_RECOMPUTE_BALANCES, {"chain": chain_id})
        return written
