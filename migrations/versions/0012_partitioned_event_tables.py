"""Transfers and sales partitioned by block range: one partition per million blocks.

Why these two: they grow with the chain by the billion (mainnet's NFT history), and every query
on them names either a token or a block range. Ranges of blocks make the newest partition the
only one a reorg's rollback deletes from, the only one the ingest's replay checks probe, and the
only one whose index pages the ingest keeps hot; old partitions stay still (and can be detached
or moved to other storage whole). The other tables that grow with the chain are smaller by two to
three orders: ``blocks`` holds one row per block (about 21 million on mainnet, and its key
(chain id, number) already makes a rollback a range at the index's right edge; partitioning it
would weaken ``UNIQUE (chain_id, hash)`` to include the number), and ``listings``, ``loans`` and
``consecutive_ranges`` hold a few marketplaces' events. ERC-1155 rows are transfers already.

The layout:

- ``PARTITION BY RANGE (block_number)``; partition ``{table}_p{n:04d}`` holds blocks
  ``n * 1,000,000`` to ``(n + 1) * 1,000,000 - 1`` of every chain (the chain id leads each index).
  A per-token lookup probes one small index per partition; a lookup bounded by block (an owner
  before a position, the merge's order check, a rollback, the existence checks) prunes the
  partitions outside the bound, at plan time or, where the bound comes from another row, at run
  time.
- Keys hold the partition key: ``transfers`` already did (0006); ``sales`` now has the same
  ``(chain_id, block_number, block_hash, log_index, batch_index, tx_hash)``, which makes
  ``ix_sales_block`` redundant (the key's prefix), so it goes. The ingest's inserts use ``ON
  CONFLICT DO NOTHING`` without a target (any of these keys), the event identity is unchanged (a
  hash fixes its number).
- No default partition. A default would catch stray rows, but attaching any new partition then
  locks the default (ACCESS EXCLUSIVE, to check it holds no row of the new range), which every
  lookup not bounded by block reads: readers would queue behind each new span. Instead
  ``ensure_event_partitions(lo, hi)`` creates the partitions of blocks ``lo..hi`` and of the
  next span, by ``CREATE TABLE .. (LIKE ..)`` and ``ATTACH PARTITION``, which takes only SHARE
  UPDATE EXCLUSIVE on the parent (readers and writers go on; two creators queue). The ingest
  calls it at the start of each batch (four catalogue lookups when nothing is missing), so a
  partition exists one span before the chain reaches it. A row outside every partition is an
  error, not a silent slow path; this migration creates the partitions of the stored rows and
  the next span (``p0000`` and ``p0001`` on an empty database).

The conversion, in the migration's one transaction: lock both tables in EXCLUSIVE mode (writers
wait, readers go on reading the old tables), then per table create the partitioned table and the
partitions of every span present, copy the rows in one ``INSERT .. SELECT`` (one scan: the old
keys lead with the chain id, so a batch per span would scan the table once per span; batches
would free no lock either, as the transaction holds them to the end), build the keys and
indexes per partition under temporary names and analyse; only then swap both (drop the old
table, rename), so readers wait only for the swap and the commit. Measured with
``bench/bench_partition_migration.py`` on 1,000,000 transfers and 200,000 sales over 21 spans (a
2-core machine at a load of about 20): 52-60 s, 43-50 s per million rows, during which writers
wait; the longest a per-token reader waited was 0.2-0.35 s. On a large database run it with the
ingest stopped or in a maintenance window. The statement timeout is raised for the copy and the
index builds only; the lock timeout is 10 s, as in 0008.

The downgrade rebuilds the plain tables the same way (sales' old key and ``ix_sales_block``
back) and drops ``ensure_event_partitions``.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# as store.models.PARTITION_SPAN at this revision (a migration keeps its own copy)
SPAN = 1_000_000
EVENT_KEY = "chain_id, block_number, block_hash, log_index, batch_index, tx_hash"
# table -> (index name, definition) besides the key, as at this revision
INDEXES: dict[str, list[tuple[str, str]]] = {
    "transfers": [
        ("ix_transfers_token", "(hashtextextended(contract || token_id::text, 0), chain_id)")
    ],
    "sales": [
        ("ix_sales_token", "(chain_id, contract, token_id, block_number)"),
        ("ix_sales_time", "(chain_id, contract, block_time)"),
    ],
}
# before: sales' key and its block index (0001); transfers' key is EVENT_KEY since 0006
OLD_KEY = {"transfers": EVENT_KEY, "sales": "chain_id, block_hash, tx_hash, log_index, batch_index"}
OLD_INDEXES = {
    "transfers": INDEXES["transfers"],
    "sales": [*INDEXES["sales"], ("ix_sales_block", "(chain_id, block_number)")],
}
# the copy and the index builds run as long as the rows take (about a second per 100,000 here)
COPY_TIMEOUT = "2h"

# SECURITY DEFINER: the services connect as a role that writes rows but owns no table
# (docker/postgres/roles.sql), and attaching a partition takes the parent's owner; the function
# runs as the migrating owner, on this schema only ({schema}: the migration's current schema).
ENSURE_PARTITIONS = f"""
CREATE FUNCTION ensure_event_partitions(lo bigint, hi bigint) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {{schema}}, pg_temp AS $$
DECLARE
  span CONSTANT bigint := {SPAN};
  made integer := 0;
  n bigint;
  t text;
  part text;
BEGIN
  FOR n IN lo / span .. hi / span + 1 LOOP  -- and the next span, created ahead
    FOREACH t IN ARRAY ARRAY['transfers', 'sales'] LOOP
      part := t || '_p' || lpad(n::text, greatest(4, length(n::text)), '0');
      IF to_regclass(part) IS NULL THEN
        -- what ATTACH takes anyway; it serialises creators and makes a partition another one
        -- committed meanwhile visible to the check below
        EXECUTE format('LOCK TABLE %I IN SHARE UPDATE EXCLUSIVE MODE', t);
        IF to_regclass(part) IS NULL THEN
          EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING GENERATED)',
                         part, t);
          EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                         t, part, n * span, (n + 1) * span);
          made := made + 1;
        END IF;
      END IF;
    END LOOP;
  END LOOP;
  RETURN made;
END
$$
"""


def _part(table: str, n: int) -> str:
    return f"{table}_p{n:04d}"


def _columns(table: str) -> str:
    """The table's stored columns (a generated one is computed, never inserted)."""
    rows = op.get_bind().execute(
        text(
            "SELECT column_name FROM information_schema.columns WHERE table_name = :t "
            "AND table_schema = current_schema() AND is_generated = 'NEVER' "
            "ORDER BY ordinal_position"
        ),
        {"t": table},
    )
    return ", ".join(r[0] for r in rows)


def _build(table: str, spans: set[int] | None) -> None:
    """A copy of ``table``, rows, keys, indexes and statistics, as ``{table}_new``: partitioned
    by block range with a partition per span in ``spans``, or plain (None, the downgrade).
    Readers of ``table`` go on meanwhile."""
    bind = op.get_bind()
    new = f"{table}_new"
    timeout = bind.execute(text("SHOW statement_timeout")).scalar_one()
    op.execute(f"SET LOCAL statement_timeout = '{COPY_TIMEOUT}'")
    op.execute(
        f"CREATE TABLE {new} (LIKE {table} INCLUDING DEFAULTS INCLUDING GENERATED)"
        + ("" if spans is None else " PARTITION BY RANGE (block_number)")
    )
    for n in sorted(spans or ()):
        op.execute(
            f"CREATE TABLE {_part(table, n)} PARTITION OF {new} "
            f"FOR VALUES FROM ({n * SPAN}) TO ({(n + 1) * SPAN})"
        )
    columns = _columns(table)
    op.execute(f"INSERT INTO {new} ({columns}) SELECT {columns} FROM {table}")
    # keys and indexes built once the rows are in (per partition), under temporary names
    key = OLD_KEY[table] if spans is None else EVENT_KEY
    op.execute(f"ALTER TABLE {new} ADD CONSTRAINT {new}_pkey PRIMARY KEY ({key})")
    for name, definition in OLD_INDEXES[table] if spans is None else INDEXES[table]:
        op.execute(f"CREATE INDEX {name}_new ON {new} {definition}")
    op.execute(f"ANALYZE {new}")
    op.execute(f"SET LOCAL statement_timeout = '{timeout}'")


def _swap(table: str, *, partitioned: bool) -> None:
    """``{table}_new`` takes the place of ``table``: from here readers wait for the commit."""
    new = f"{table}_new"
    op.execute(f"DROP TABLE {table}")
    op.execute(f"ALTER TABLE {new} RENAME TO {table}")
    op.execute(f"ALTER INDEX {new}_pkey RENAME TO {table}_pkey")
    for name, _ in INDEXES[table] if partitioned else OLD_INDEXES[table]:
        op.execute(f"ALTER INDEX {name}_new RENAME TO {name}")


def _spans() -> set[int]:
    """The spans of every stored transfer and sale (both tables get the same partitions), 0,
    and the one after the highest, created ahead."""
    bind = op.get_bind()
    spans = {
        int(n)
        for (n,) in bind.execute(
            text(
                f"SELECT block_number / {SPAN} FROM transfers "
                f"UNION SELECT block_number / {SPAN} FROM sales"
            )
        )
    }
    return spans | {0, max(spans, default=0) + 1}


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '10s'")
    for table in ("transfers", "sales"):  # writers wait from here to the commit
        op.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
    spans = _spans()
    for table in ("transfers", "sales"):
        _build(table, spans)
    for table in ("transfers", "sales"):
        _swap(table, partitioned=True)
    schema = op.get_bind().execute(text("SELECT quote_ident(current_schema())")).scalar_one()
    op.execute(ENSURE_PARTITIONS.replace("{schema}", schema))


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '10s'")
    op.execute("DROP FUNCTION ensure_event_partitions(bigint, bigint)")
    for table in ("transfers", "sales"):
        op.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
    for table in ("transfers", "sales"):
        _build(table, None)
    for table in ("transfers", "sales"):
        _swap(table, partitioned=False)
