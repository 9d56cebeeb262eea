"""The derived rows of the touched tokens: ``tokens`` (owner, mint, counts, last sale) and the
ERC-1155 ``balances``, merged from a batch's deltas (:mod:`store.chain.token_delta`) or recomputed
from all events of the tokens in ``_st_touched``, and the resolve work for tokens seen first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from psycopg.errors import UniqueViolation
from sqlalchemy.orm import Session

from store.chain import staging
from store.chain.staging import DELTA_COLUMNS, copy_data
from store.chain.token_delta import ZERO_ADDRESS, TokenDelta, balance_deltas, unpack
from store.locks import writer_lock_sql
from store.records import TransferEvent


def token_key_sql(alias: str) -> str:
    """The hash ``ix_transfers_token`` indexes (migration 0006), over ``alias``'s contract and
    token id. Lookups by token compare it and the chain id first (the index's two columns), then
    the columns themselves (a collision costs a heap fetch, never a wrong row)."""
    return f"hashtextextended({alias}.contract || {alias}.token_id::text, 0)"


_X_KEY = token_key_sql("x")
_T_KEY = token_key_sql("t")
_D_KEY = token_key_sql("d")

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

# Merge the batch's deltas into the stored rows (tokens whose delta is mergeable: see
# store.chain.token_delta). A new token takes the delta as it is. MERGE costs about 40% less than
# the equivalent INSERT .. ON CONFLICT (no speculative insertion) on the ingest benchmark, but
# raises a unique violation if another transaction inserts one of the tokens meanwhile (chain
# writers are serialised by the advisory lock; the punk importer is not): then the upsert does it.
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


def record_tokens(
    cur: Any, p: dict[str, Any], delta_data: bytes, *, incremental: bool, later: bool
) -> tuple[int, int]:
    """The token rows and resolve work of a batch's new events (``delta_data``: COPY text of
    ``_st_delta``): deltas merged where they can be, the other tokens recomputed. Returns the
    token rows written and the outbox rows added."""
    copy_data(cur, f"COPY _st_delta ({DELTA_COLUMNS}) FROM STDIN", delta_data)
    # the reference path (not incremental) recomputes every token from all of its events
    mergeable = _MERGEABLE + (_ORDER_CHECK if later else "")
    cur.execute(_MARK_STORED.format(redo=mergeable if incremental else "true"), p)
    if not incremental:
        cur.execute("UPDATE _st_delta SET redo = true WHERE NOT stored")
    cur.execute(_OUTBOX_RESOLVE, p)
    outbox = int(cur.rowcount)
    tokens = _merge_deltas(cur, p)
    cur.execute("INSERT INTO _st_touched SELECT contract, token_id FROM _st_delta WHERE redo")
    if cur.rowcount:
        tokens += recompute_touched(cur, p)
    return tokens, outbox


def recompute_touched(cur: Any, p: dict[str, Any]) -> int:
    """Recompute the token rows of ``_st_touched`` from all of their events; returns the rows."""
    cur.execute(_RECOMPUTE, p)
    return int(cur.rowcount)


def recompute_balances(cur: Any, p: dict[str, Any]) -> int:
    """Rewrite the ERC-1155 balances of ``_st_touched`` from all of their transfers; returns the
    rows written."""
    cur.execute(_CLEAR_BALANCES, p)
    cur.execute(_RECOMPUTE_BALANCES, p)
    return int(cur.rowcount)


def delete_eventless_tokens(cur: Any, p: dict[str, Any]) -> int:
    """Delete the token rows of ``_st_touched`` left without any event; returns the rows."""
    cur.execute(_DELETE_EVENTLESS_TOKENS, p)
    return int(cur.rowcount)


def later_events(cur: Any, chain_id: int, block: int) -> bool:
    """Whether any stored transfer or sale of the chain is at or after ``block``."""
    cur.execute(_LATER_EVENTS, {"chain": chain_id, "n": block})
    return bool(cur.fetchone()[0])


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


def balance_data(transfers: Iterable[TransferEvent]) -> bytes:
    """COPY text of ``_st_balance``: the net ERC-1155 balance changes of ``transfers``, in key
    order, so that the merge inserts into the balances' key in order rather than at random
    leaves (about a tenth off the merge on the ingest benchmark)."""
    return "".join(
        f"{c}\t{token_id}\t{owner}\t{delta}\n"
        for (c, token_id, owner), delta in sorted(balance_deltas(transfers).items())
    ).encode()


def delta_data(deltas: Iterable[TokenDelta]) -> bytes:
    return "".join(_delta_lines(deltas)).encode()


def merge_balances(cur: Any, p: dict[str, Any], data: bytes) -> int:
    """Merge net ERC-1155 balance changes (COPY text of ``_st_balance``); returns the rows."""
    copy_data(cur, "COPY _st_balance FROM STDIN", data)
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


def block_times(times: dict[str, str]) -> Callable[[str], dt.datetime]:
    """Block hash -> its time, from the batch's ISO timestamps, each parsed once."""
    parsed: dict[str, dt.datetime] = {}

    def when(block_hash: str) -> dt.datetime:
        t = parsed.get(block_hash)
        if t is None:
            t = parsed[block_hash] = dt.datetime.fromisoformat(times[block_hash])
        return t

    return when


def recompute_tokens(session: Session, chain_id: int) -> int:
    """Recompute the derived columns of every token of ``chain_id`` that has events, and its
    ERC-1155 balances, from all of its events (a repair tool, and the reference the incremental
    update is checked against). Returns the number of token rows written."""
    with staging.raw(session).cursor() as cur:
        cur.execute(writer_lock_sql(chain_id))
        cur.execute(staging.STAGING)
        cur.execute(
            "INSERT INTO _st_touched SELECT contract, token_id FROM transfers "
            "WHERE chain_id = %(chain)s UNION SELECT contract, token_id FROM sales "
            "WHERE chain_id = %(chain)s",
            {"chain": chain_id},
        )
        cur.execute("ANALYZE _st_touched")
        written = recompute_touched(cur, {"chain": chain_id})
        recompute_balances(cur, {"chain": chain_id})
        return written
