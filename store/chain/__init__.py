"""Recording chain events: one transaction per batch, set-based SQL, COPY for the bulk rows.

``record_batch`` writes, atomically: the events (``ON CONFLICT DO NOTHING`` on their keys, so a
replay is a no-op), the block headers, the derived ``tokens`` rows of every touched token (the
batch's deltas merged in, or recomputed from all of its events), the ERC-1155 ``balances`` per
(token, owner) (net changes merged in), the checkpoint, and the outbox rows for the work the
events cause. ``rollback_to`` undoes everything above a block after a reorg and recomputes what
was derived from the removed events. The events are the records of :mod:`store.records`.

By domain: :mod:`.batch` (the transaction), :mod:`.staging` (COPY, staging tables),
:mod:`.transfers`, :mod:`.sales` (sales, listings, offers), :mod:`.tokens` (derived token rows,
balances, deltas, recompute), :mod:`.refresh` (metadata updates), :mod:`.reorg` (rollback),
:mod:`.checkpoints` (checkpoints, block headers), :mod:`.partitions` (the block-range partitions
of ``transfers`` and ``sales``, created as a batch needs them).

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

from store.chain.batch import (
    MissingBlockError,
    PreparedBatch,
    RecordStats,
    prepare_batch,
    record_batch,
    record_prepared,
)
from store.chain.checkpoints import block_hashes, get_checkpoint, latest_block, set_checkpoint
from store.chain.partitions import ensure_partitions
from store.chain.reorg import RollbackStats, rollback_to
from store.chain.tokens import recompute_tokens, token_key_sql

__all__ = [
    "MissingBlockError",
    "PreparedBatch",
    "RecordStats",
    "RollbackStats",
    "block_hashes",
    "ensure_partitions",
    "get_checkpoint",
    "latest_block",
    "prepare_batch",
    "recompute_tokens",
    "record_batch",
    "record_prepared",
    "rollback_to",
    "set_checkpoint",
    "token_key_sql",
]
