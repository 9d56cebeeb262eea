"""Undoing a reorg: everything of a chain above the common ancestor goes, and what was derived
from it is recomputed."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from store.chain import staging
from store.chain.tokens import (
    delete_eventless_tokens,
    recompute_balances,
    recompute_touched,
    token_key_sql,
)
from store.locks import writer_lock_sql


@dataclass
class RollbackStats:
    blocks: int = 0
    transfers: int = 0
    sales: int = 0
    listings: int = 0
    loans: int = 0
    tokens: int = 0
    balances: int = 0


def rollback_to(session: Session, chain_id: int, block_number: int) -> RollbackStats:
    """Delete every event and block row of ``chain_id`` above ``block_number`` (a reorg's common
    ancestor), recompute the tokens they touched (removing those left without events), drop the
    unsent work queued by orphaned blocks, and move checkpoints beyond it back to it."""
    stats = RollbackStats()
    p = {"chain": chain_id, "n": block_number}
    with staging.raw(session).cursor() as cur:
        cur.execute(writer_lock_sql(chain_id))
        cur.execute(staging.STAGING)
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
            ("loans", "loans"),
            ("consecutive_ranges", None),
            ("blocks", "blocks"),
        ):
            col = "number" if table == "blocks" else "block_number"
            cur.execute(f"DELETE FROM {table} WHERE chain_id = %(chain)s AND {col} > %(n)s", p)
            if attr is not None:
                setattr(stats, attr, cur.rowcount)
        stats.tokens = recompute_touched(cur, p)
        stats.balances = recompute_balances(cur, p)
        # Tokens that only orphaned blocks knew: gone, with their unsent resolve work.
        cur.execute(
            "DELETE FROM outbox o USING _st_touched t WHERE o.sent_at IS NULL "
            "AND o.dedupe_key = 'resolve:' || %(chain)s::text || ':' || t.contract || ':' "
            "|| t.token_id::text AND NOT EXISTS (SELECT 1 FROM transfers x WHERE "
            f"{token_key_sql('x')} = {token_key_sql('t')} "
            "AND x.chain_id = %(chain)s AND x.contract = t.contract AND x.token_id = t.token_id) "
            "AND NOT EXISTS (SELECT 1 FROM sales s WHERE s.chain_id = %(chain)s "
            "AND s.contract = t.contract AND s.token_id = t.token_id)",
            p,
        )
        stats.tokens += delete_eventless_tokens(cur, p)
        cur.execute(
            "UPDATE checkpoints c SET block_number = %(n)s, "
            "block_hash = (SELECT hash FROM blocks b WHERE b.chain_id = %(chain)s "
            "AND b.number = %(n)s), updated_at = now() "
            "WHERE c.chain_id = %(chain)s AND c.block_number > %(n)s",
            p,
        )
    return stats
