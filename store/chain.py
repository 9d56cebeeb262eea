"""Recording chain events: one transaction per batch, set-based SQL, COPY for the bulk rows.

``record_batch`` writes, atomically: the events (``ON CONFLICT DO NOTHING`` on their keys, so a
replay is a no-op), the block headers, the derived ``tokens`` rows of every touched token
(recomputed from all of its events), the checkpoint, and the outbox rows for the work the events
cause. ``rollback_to`` undoes everything above a block after a reorg.

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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.orm import Session


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


@dataclass
class RollbackStats:
    blocks: int = 0
    transfers: int = 0
    sales: int = 0
    listings: int = 0
    tokens: int = 0


_LOCK_NS = 0x6E66  # advisory-lock namespace of chain writers


class MissingBlockError(ValueError):
    """An event refers to a block whose header was not passed."""


# Staging tables live per connection and empty themselves at commit.
_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS _st_transfers (
  block_number bigint, block_hash varchar(66), tx_hash varchar(66), log_index int,
  batch_index int, block_time timestamptz, contract varchar(42), token_id numeric(78,0),
  from_address varchar(42), to_address varchar(42), amount numeric(78,0), standard varchar(16),
  is_mint boolean) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS _st_sales (
  block_number bigint, block_hash varchar(66), tx_hash varchar(66), log_index int,
  batch_index int, block_time timestamptz, contract varchar(42), token_id numeric(78,0),
  seller varchar(42), buyer varchar(42), price_wei numeric(78,0), currency varchar(42),
  marketplace varchar(32), inferred boolean) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS _st_listings (
  block_number bigint, block_hash varchar(66), tx_hash varchar(66), log_index int,
  block_time timestamptz, contract varchar(42), token_id numeric(78,0), kind varchar(16),
  price_wei numeric(78,0), account varchar(42)) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS _st_updates (
  block_number bigint, block_hash varchar(66), log_index int, contract varchar(42),
  from_id numeric(78,0), to_id numeric(78,0)) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS _st_touched (
  contract varchar(42), token_id numeric(78,0)) ON COMMIT DELETE ROWS;
"""

# Recompute the derived columns of every token in _st_touched from all of its events.
_RECOMPUTE = """
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
    WHERE x.chain_id = %(chain)s AND x.contract = t.contract AND x.token_id = t.token_id) tr
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

_DELETE_EVENTLESS_TOKENS = """
DELETE FROM tokens k USING (SELECT DISTINCT contract, token_id FROM _st_touched) t
WHERE k.chain_id = %(chain)s AND k.contract = t.contract AND k.token_id = t.token_id
  AND NOT EXISTS (SELECT 1 FROM transfers x WHERE x.chain_id = %(chain)s
                  AND x.contract = t.contract AND x.token_id = t.token_id)
  AND NOT EXISTS (SELECT 1 FROM sales s WHERE s.chain_id = %(chain)s
                  AND s.contract = t.contract AND s.token_id = t.token_id)
"""

# Before the tokens upsert: tokens never seen, or minted in this batch, get resolve work.
_OUTBOX_RESOLVE = """
INSERT INTO outbox (task, queue, payload, dedupe_key, attempts)
SELECT 'resolve', 'resolve',
       jsonb_build_object('chain_id', %(chain)s::bigint, 'contract', n.contract,
                          'token_id', n.token_id::text, 'block_number', n.block_number),
       'resolve:' || %(chain)s::text || ':' || n.contract || ':' || n.token_id::text, 0
FROM (
  SELECT e.contract, e.token_id, min(e.block_number) AS block_number
  FROM (SELECT contract, token_id, block_number, is_mint FROM _st_transfers
        UNION ALL SELECT contract, token_id, block_number, false FROM _st_sales) e
  WHERE e.is_mint OR NOT EXISTS (
    SELECT 1 FROM tokens k WHERE k.chain_id = %(chain)s AND k.contract = e.contract
      AND k.token_id = e.token_id)
  GROUP BY e.contract, e.token_id) n
ORDER BY n.block_number, n.contract, n.token_id
ON CONFLICT (dedupe_key) DO NOTHING
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

_OUTBOX_LISTING = """
INSERT INTO outbox (task, queue, payload, dedupe_key, attempts)
SELECT 'value', 'urgent',
       jsonb_build_object('chain_id', %(chain)s::bigint, 'contract', l.contract,
                          'token_id', l.token_id::text, 'reason', 'listing',
                          'price_wei', coalesce(l.price_wei, 0)::text),
       'value:' || %(chain)s::text || ':' || l.block_hash || ':' || l.tx_hash || ':'
         || l.log_index::text, 0
FROM _st_listings l WHERE l.kind = 'offered'
ORDER BY l.block_number, l.log_index
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
) -> RecordStats:
    """Record one batch in the session's transaction (the caller commits).

    ``blocks`` must hold the header of every block an event refers to; it may hold more (blocks
    without events, so the follower's parent-hash chain has no holes)."""
    stats = RecordStats()
    times = {b.hash: _utc(b.timestamp) for b in blocks}
    conn = _raw(session)
    p = {"chain": chain_id}

    def when(block_hash: str) -> dt.datetime:
        try:
            return times[block_hash]
        except KeyError:
            raise MissingBlockError(f"no header passed for block {block_hash}") from None

    with conn.cursor() as cur:
        # One writer per chain at a time: the follower and a backfill may overlap, and the token
        # recompute must see every committed event of the other.
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_NS, chain_id % 2**31))
        cur.execute(_STAGING)
        if blocks:
            cur.executemany(
                "INSERT INTO blocks (chain_id, number, hash, parent_hash, timestamp) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (chain_id, number) DO UPDATE SET "
                "hash = EXCLUDED.hash, parent_hash = EXCLUDED.parent_hash, "
                "timestamp = EXCLUDED.timestamp",
                [(chain_id, b.number, b.hash, b.parent_hash, times[b.hash]) for b in blocks],
            )
        if transfers:
            with cur.copy("COPY _st_transfers FROM STDIN") as cp:
                for t in transfers:
                    cp.write_row(
                        (
                            t.block_number,
                            t.block_hash,
                            t.tx_hash,
                            t.log_index,
                            t.batch_index,
                            when(t.block_hash),
                            t.contract,
                            t.token_id,
                            t.from_address,
                            t.to_address,
                            t.amount,
                            t.standard,
                            t.is_mint,
                        )
                    )
        if sales:
            with cur.copy("COPY _st_sales FROM STDIN") as cp:
                for s in sales:
                    cp.write_row(
                        (
                            s.block_number,
                            s.block_hash,
                            s.tx_hash,
                            s.log_index,
                            s.batch_index,
                            when(s.block_hash),
                            s.contract,
                            s.token_id,
                            s.seller,
                            s.buyer,
                            s.price_wei,
                            s.currency,
                            s.marketplace,
                            s.inferred,
                        )
                    )
        if listings:
            with cur.copy("COPY _st_listings FROM STDIN") as cp:
                for li in listings:
                    cp.write_row(
                        (
                            li.block_number,
                            li.block_hash,
                            li.tx_hash,
                            li.log_index,
                            when(li.block_hash),
                            li.contract,
                            li.token_id,
                            li.kind,
                            li.price_wei,
                            li.account,
                        )
                    )
        if metadata_updates:
            with cur.copy("COPY _st_updates FROM STDIN") as cp:
                for u in metadata_updates:
                    cp.write_row(
                        (
                            u.block_number,
                            u.block_hash,
                            u.log_index,
                            u.contract,
                            u.from_token_id,
                            u.to_token_id,
                        )
                    )

        if transfers:
            cur.execute(
                "INSERT INTO transfers (chain_id, block_number, block_hash, tx_hash, log_index, "
                "batch_index, block_time, contract, token_id, from_address, to_address, amount, "
                "standard, is_mint) SELECT %(chain)s, * FROM _st_transfers "
                "ON CONFLICT DO NOTHING",
                p,
            )
            stats.transfers = cur.rowcount
        if listings:
            cur.execute(
                "INSERT INTO listings (chain_id, block_number, block_hash, tx_hash, log_index, "
                "block_time, contract, token_id, kind, price_wei, account) "
                "SELECT %(chain)s, * FROM _st_listings ON CONFLICT DO NOTHING",
                p,
            )
            stats.listings = cur.rowcount
        if sales:
            cur.execute(
                "INSERT INTO sales (chain_id, block_number, block_hash, tx_hash, log_index, "
                "batch_index, block_time, contract, token_id, seller, buyer, price_wei, "
                "currency, marketplace, inferred) SELECT %(chain)s, * FROM _st_sales "
                "ON CONFLICT DO NOTHING",
                p,
            )
            stats.sales = cur.rowcount
            cur.execute(_FIX_PUNK_BID_PRICES, p)

        if transfers or sales:
            cur.execute(_OUTBOX_RESOLVE, p)
            stats.outbox += cur.rowcount
            cur.execute(
                "INSERT INTO _st_touched SELECT contract, token_id FROM _st_transfers "
                "UNION SELECT contract, token_id FROM _st_sales"
            )
            cur.execute("ANALYZE _st_touched")
            cur.execute(_RECOMPUTE, p)
            stats.tokens = cur.rowcount
        if metadata_updates:
            cur.execute(_OUTBOX_REFRESH, p)
            stats.outbox += cur.rowcount
        if listings:
            cur.execute(_OUTBOX_LISTING, p)
            stats.outbox += cur.rowcount
        if checkpoint_name is not None and checkpoint_block is not None:
            _set_checkpoint(cur, checkpoint_name, chain_id, checkpoint_block, checkpoint_hash)
    return stats


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
            ("blocks", "blocks"),
        ):
            col = "number" if table == "blocks" else "block_number"
            cur.execute(f"DELETE FROM {table} WHERE chain_id = %(chain)s AND {col} > %(n)s", p)
            setattr(stats, attr, cur.rowcount)
        cur.execute(_RECOMPUTE, p)
        stats.tokens = cur.rowcount
        # Tokens that only orphaned blocks knew: gone, with their unsent resolve work.
        cur.execute(
            "DELETE FROM outbox o USING _st_touched t WHERE o.sent_at IS NULL "
            "AND o.dedupe_key = 'resolve:' || %(chain)s::text || ':' || t.contract || ':' "
            "|| t.token_id::text AND NOT EXISTS (SELECT 1 FROM transfers x WHERE "
            "x.chain_id = %(chain)s AND x.contract = t.contract AND x.token_id = t.token_id) "
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
