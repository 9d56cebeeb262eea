"""Metadata refresh work for EIP-4906 / ERC-1155 ``URI`` updates.

Outbox contract: ``task="resolve", queue="resolve"``, payload ``{chain_id, contract, token_id
(decimal string), block_number}``, dedupe key ``refresh:{chain_id}:{block_hash}:{log_index}:
{token_id}``; a range update covers the known tokens of the contract inside the range.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from store.chain.staging import UPDATES, copy_data
from store.records import MetadataUpdateEvent

_OUTBOX_REFRESH = """
INSERT INTO outbox (task, queue, payload, dedupe_key, attempts)
SELECT 'resolve', 'resolve',
       jsonb_build_object('chain_id', %(chain)s::bigint, 'contract', r.contract,
                          'token_id', r.token_id::text, 'block_number', r.block_number),
       'refresh:' || %(chain)s::text || ':' || r.block_hash || ':' || r.log_index::text || ':'
         || r.token_id::text, 0
FROM (
  SELECT u.block_number, u.block_hash, u.log_index, u.contract, u.from_token_id AS token_id
  FROM _st_updates u WHERE u.from_token_id = u.to_token_id
  UNION
  SELECT u.block_number, u.block_hash, u.log_index, u.contract, k.token_id
  FROM _st_updates u JOIN tokens k ON k.chain_id = %(chain)s AND k.contract = u.contract
   AND k.token_id BETWEEN u.from_token_id AND u.to_token_id
  WHERE u.from_token_id <> u.to_token_id) r
ORDER BY r.block_number, r.log_index, r.token_id
ON CONFLICT (dedupe_key) DO NOTHING
"""


def record_refreshes(cur: Any, chain_id: int, updates: Sequence[MetadataUpdateEvent]) -> int:
    """Queue the refresh work of ``updates``; returns the outbox rows added."""
    copy_data(
        cur, "COPY _st_updates FROM STDIN", "".join(UPDATES.lines(chain_id, {}, updates)).encode()
    )
    cur.execute(_OUTBOX_REFRESH, {"chain": chain_id})
    return int(cur.rowcount)
