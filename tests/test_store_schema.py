"""The migrated schema: extension, tables, and the keys that make replays idempotent."""

from __future__ import annotations

import re
from decimal import Decimal

from sqlalchemy import create_engine, text
from sqlalchemy.dialects.postgresql import insert

from store.db import current_revision, ensure_schema, head_revision
from store.models import Transfer


def test_migration_creates_vector_extension_and_is_at_head(db_url: str) -> None:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        version = conn.execute(
            text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        ).scalar()
    engine.dispose()
    assert version is not None
    assert current_revision(db_url) == head_revision()
    ensure_schema(db_url)  # idempotent on a current database
    assert current_revision(db_url) == head_revision()


def test_token_ids_up_to_2_256_and_replayed_events_are_not_doubled(db_url: str) -> None:
    big = Decimal(2**256 - 1)
    row = dict(
        chain_id=1,
        block_number=10,
        block_hash="0x" + "ab" * 32,
        tx_hash="0x" + "cd" * 32,
        log_index=3,
        batch_index=0,
        block_time="2024-01-01T00:00:00Z",
        contract="0x" + "11" * 20,
        token_id=big,
        from_address="0x" + "00" * 20,
        to_address="0x" + "22" * 20,
        amount=1,
        standard="erc721",
        is_mint=True,
    )
    engine = create_engine(db_url)
    with engine.begin() as conn:
        for _ in range(2):
            conn.execute(insert(Transfer).values(**row).on_conflict_do_nothing())
    with engine.connect() as conn:
        ids = conn.execute(text("SELECT token_id FROM transfers")).scalars().all()
    engine.dispose()
    assert ids == [big]


def test_per_token_transfer_lookups_use_the_token_index(db_url: str) -> None:
    """The queries that read a token's transfers (recompute, rollback) spell the indexed
    expression exactly: if either side drifts, Postgres falls back to scanning every transfer."""
    from store.chain import token_key_sql

    engine = create_engine(db_url)
    with engine.begin() as conn:
        # a chain's worth of transfers, analysed: the plan is chosen on real statistics, not on
        # whatever an earlier test left in the catalogue
        conn.execute(
            text(
                "INSERT INTO transfers (chain_id, block_number, block_hash, tx_hash, log_index, "
                "batch_index, block_time, contract, token_id, from_address, to_address, amount, "
                "standard, is_mint) "
                "SELECT 1, i / 50, '0x' || lpad(to_hex(i / 50), 64, '0'), "
                "'0x' || lpad(to_hex(i), 64, '0'), i % 50, 0, now(), "
                "'0x' || lpad(to_hex(i % 40), 40, '0'), i % 997, '0x' || repeat('0', 40), "
                "'0x' || repeat('2', 40), 1, 'erc721', false FROM generate_series(1, 20000) i"
            )
        )
        conn.execute(text("ANALYZE transfers"))
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = conn.execute(
            text(
                "EXPLAIN SELECT count(*) FROM transfers x, "
                "(SELECT '0x' || repeat('11', 20) AS contract, 5::numeric AS token_id) t "
                f"WHERE {token_key_sql('x')} = {token_key_sql('t')} "
                "AND x.chain_id = 1 AND x.contract = t.contract AND x.token_id = t.token_id"
            )
        ).scalars()
        plan_text = "\n".join(plan)
        # partitions an earlier test made and left empty cost nothing, whatever their plan
        holding = set(
            conn.execute(text("SELECT DISTINCT tableoid::regclass::text FROM transfers")).scalars()
        )
        scans = re.findall(r"(?:Index (?:Only )?Scan using (\w+)|Seq Scan) on (\w+)", plan_text)
        scans = [(index, part) for index, part in scans if part in holding]
        # each partition's scan names the partition's own index: map it to the parent's
        used = [index for index, _ in scans]
        parents = set(
            conn.execute(
                text(
                    "SELECT p.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "JOIN pg_class p ON p.oid = i.inhparent WHERE c.relname = ANY(:used)"
                ),
                {"used": used},
            ).scalars()
        )
    engine.dispose()
    assert used and all(used) and parents == {"ix_transfers_token"}, plan_text
    # the chain id is answered by the same index, never by ANDing in the key's chain_id prefix
    assert not [index for index in used if "pkey" in index], plan_text


def test_hex_columns_compare_bytewise_in_tables_and_staging(db_url: str) -> None:
    """Every column the models type as a hex identifier has collation "C" after the migrations,
    and so do the ingest's staging columns that are joined with them: a mismatch would make the
    joins unable to use the other side's index (or fail on conflicting collations)."""
    from sqlalchemy.orm import Session

    from store.chain import staging
    from store.models import Base

    declared = {
        (table.name, column.name)
        for table in Base.metadata.tables.values()
        for column in table.columns
        if getattr(column.type, "collation", None) == "C"
    }
    assert ("transfers", "contract") in declared and ("outbox", "dedupe_key") in declared
    engine = create_engine(db_url)
    with Session(engine) as session:
        stored = {
            (r.table_name, r.column_name): r.collation_name
            for r in session.execute(
                text(
                    "SELECT table_name, column_name, collation_name FROM information_schema.columns"
                    " WHERE table_schema = 'public'"
                )
            )
        }
        staging.raw(session).execute(staging.STAGING)
        staged = session.execute(
            text(
                "SELECT c.relname, a.attname, coalesce(l.collname, '') AS coll "
                "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                "LEFT JOIN pg_collation l ON l.oid = a.attcollation AND a.attcollation <> 100 "
                "WHERE c.relname LIKE '\\_st\\_%' AND c.relpersistence = 't' "
                "AND a.attnum > 0 AND a.atttypid IN ('varchar'::regtype, 'text'::regtype)"
            )
        ).all()
        session.rollback()
    engine.dispose()
    assert {key: stored.get(key) for key in declared} == dict.fromkeys(declared, "C")
    hex_staged = {
        (r.relname, r.attname): r.coll
        for r in staged
        if r.attname not in {"standard", "marketplace", "kind"}
    }
    assert hex_staged and set(hex_staged.values()) == {"C"}, hex_staged
