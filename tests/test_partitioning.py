"""The event tables partitioned by block range (migration 0012): the store's own statements scan
only the partitions their blocks can be in.

Every statement the store functions run (the ingest's, the rollback's, the readers') is captured
as it runs and first executed under ``EXPLAIN (ANALYZE, FORMAT JSON)`` in a savepoint, on a
database whose history spans four partitions: the test reads which partitions each one actually
scanned, pruned at plan time or at run time, from the store's real SQL, not from a copy.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from store.chain import record_batch, rollback_to
from store.chain.partitions import ensure_partitions, partitions
from store.chain.staging import raw
from store.market import floor_ask, live_orders, token_sales
from store.models import PARTITION_SPAN, Listing
from store.ops import events_between
from store.records import BlockHeader, SaleEvent, TransferEvent
from store.tokens import owners_before

CHAIN = 1
NFT = "0x" + "a1" * 20
FILLER = "0x" + "f0" * 20
ZERO = "0x" + "0" * 40
A, B, C, D, E = ("0x" + c * 40 for c in "abcde")
SPAN = PARTITION_SPAN
EVENTS = re.compile(r"^(transfers|sales)_p\d+$")


def _hash(n: int) -> str:
    return "0x" + format(n, "064x")


def _header(n: int) -> BlockHeader:
    return BlockHeader(n, _hash(n), _hash(n - 1), 1_700_000_000 + n)


def _transfer(block: int, log: int, token: int, frm: str, to: str) -> TransferEvent:
    return TransferEvent(
        block, _hash(block), _hash(block * 1000 + log), log, 0, NFT, token, frm, to, 1, "erc721",
        frm == ZERO,
    )  # fmt: skip


def _sale(block: int, log: int, token: int, seller: str, buyer: str) -> SaleEvent:
    return SaleEvent(
        block, _hash(block), _hash(block * 1000 + log), log + 1, 0, NFT, token, seller, buyer,
        10**18, "ETH", "seaport",
    )  # fmt: skip


def _record(
    session: Session, transfers: Sequence[TransferEvent], sales: Sequence[SaleEvent] = ()
) -> None:
    blocks = sorted({e.block_number for e in transfers} | {e.block_number for e in sales})
    record_batch(
        session, CHAIN, [_header(b) for b in blocks], transfers, sales, [], [], None, None, None
    )


def _p(table: str, *spans: int) -> set[str]:
    return {f"{table}_p{n:04d}" for n in spans}


class Plans:
    """Each statement that reads or writes transfers or sales, run first under EXPLAIN ANALYZE
    in a savepoint (then rolled back to it, so the real statement sees the same state)."""

    def __init__(self) -> None:
        self.on = False
        self.plans: list[tuple[str, dict[str, Any]]] = []

    def cursor_class(self) -> type[psycopg.Cursor[Any]]:
        plans = self

        class Explaining(psycopg.Cursor[Any]):
            def execute(self, query: Any, params: Any = None, **kw: Any) -> Any:
                sql = str(query)
                if plans.on and _explainable(sql):
                    super().execute("SAVEPOINT explain_it")
                    try:
                        super().execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
                        row = self.fetchone()
                        assert row is not None
                        plans.plans.append((sql, row[0][0]["Plan"]))
                    except psycopg.errors.UniqueViolation:
                        pass  # the store's own fallback follows the real statement
                    super().execute("ROLLBACK TO SAVEPOINT explain_it")
                    super().execute("RELEASE SAVEPOINT explain_it")
                return super().execute(query, params, **kw)

        return Explaining

    def scanned(self, where: str | None = None) -> set[str]:
        """The event partitions that statements (those containing ``where``) scanned."""
        return {
            n for sql, plan in self.plans if where is None or where in sql for n in _scans(plan)
        }


def _explainable(sql: str) -> bool:
    words = sql.split(None, 1)
    return (
        bool(words)
        and words[0].upper() in {"SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "MERGE"}
        and bool(re.search(r"\b(transfers|sales)\b", sql))
        and ";" not in sql.strip().rstrip(";")
    )


def _scans(plan: dict[str, Any], *, kinds: bool = False) -> set[str]:
    """Event partitions a plan's scan nodes ran on (at least one loop); ``kinds``: as
    "node type on partition"."""
    out: set[str] = set()
    name = plan.get("Relation Name", "")
    if "Scan" in plan.get("Node Type", "") and EVENTS.match(name) and plan.get("Actual Loops"):
        out.add(f"{plan['Node Type']} on {name}" if kinds else name)
    for child in plan.get("Plans", []):
        out |= _scans(child, kinds=kinds)
    return out


def _indexes(plan: dict[str, Any]) -> set[tuple[str, str | None]]:
    """(partition, index) of each scan node of a plan that ran on an event partition."""
    out: set[tuple[str, str | None]] = set()
    name = plan.get("Relation Name", "")
    if "Scan" in plan.get("Node Type", "") and EVENTS.match(name) and plan.get("Actual Loops"):
        index = plan.get("Index Name")
        # a bitmap heap scan names its index in the bitmap index scan below it
        for child in plan.get("Plans", []) if index is None else ():
            index = index or child.get("Index Name")
        out.add((name, index))
    for child in plan.get("Plans", []):
        out |= _indexes(child)
    return out


def _per_token(sql: str) -> bool:
    """A statement over the touched tokens' whole histories (not one bounded by block)."""
    return bool(re.search(r"\b(FROM|USING) _st_touched\b", sql))


def _seq_scans(factory: sessionmaker[Session], kinds: set[str]) -> list[str]:
    """The sequential scans among ``kinds`` of partitions that hold rows (an empty one, such as
    the span created ahead, is scanned for free)."""
    with factory() as s:
        holding = set(
            s.execute(
                text(
                    "SELECT DISTINCT tableoid::regclass::text FROM transfers "
                    "UNION SELECT DISTINCT tableoid::regclass::text FROM sales"
                )
            ).scalars()
        )
    return [k for k in kinds if k.startswith("Seq Scan") and k.split(" on ")[1] in holding]


def _fresh_partitions(db_url: str) -> None:
    """The partitions a freshly migrated database has (spans 0 and 1): the empty ones earlier
    tests made (a mainnet fixture's span 17, say) would show up in every plan that reads ahead."""
    engine = create_engine(db_url)
    with engine.begin() as conn:
        cur = conn.connection.cursor()
        for table in ("transfers", "sales"):
            for name, lo, _ in partitions(cur, table):
                if lo // SPAN > 1:
                    conn.execute(text(f'DROP TABLE "{name}"'))
    engine.dispose()


@pytest.fixture
def history(db_url: str) -> Iterator[tuple[Engine, sessionmaker[Session], Plans]]:
    """Token 1 moves once in each of four spans (and sells in three); tokens 2 and 3 are minted
    in the first, token 2 moves again in the fourth; a few thousand other transfers and sales
    per span, analysed, so plans are chosen on real statistics."""
    plans = Plans()
    _fresh_partitions(db_url)
    engine = create_engine(db_url)
    event.listen(
        engine, "connect", lambda conn, _: setattr(conn, "cursor_factory", plans.cursor_class())
    )
    factory = sessionmaker(engine)
    batches: list[tuple[list[TransferEvent], list[SaleEvent]]] = [
        ([_transfer(100, t, t, ZERO, A) for t in (1, 2, 3)], []),
        ([_transfer(SPAN + 100, 0, 1, A, B)], [_sale(SPAN + 100, 0, 1, A, B)]),
        ([_transfer(2 * SPAN + 100, 0, 1, B, C)], [_sale(2 * SPAN + 100, 0, 1, B, C)]),
        (
            [_transfer(3 * SPAN + 100, 0, 1, C, D), _transfer(3 * SPAN + 100, 2, 2, A, B)],
            [_sale(3 * SPAN + 100, 0, 1, C, D)],
        ),
    ]
    for transfers, sales in batches:  # one transaction per batch, as the ingest commits them
        with factory.begin() as s:
            _record(s, transfers, sales)
    with factory.begin() as s:
        for n in range(4):
            s.execute(
                text(
                    "INSERT INTO transfers (chain_id, block_number, block_hash, tx_hash, "
                    "log_index, batch_index, block_time, contract, token_id, from_address, "
                    "to_address, amount, standard, is_mint) "
                    "SELECT 1, :lo + i / 100, '0x' || lpad(to_hex(:lo + i / 100), 64, '0'), "
                    "'0x' || lpad(to_hex(i), 64, 'f'), i % 100 + 10, 0, now(), :c, i % 500, "
                    ":a, :b, 1, 'erc721', false FROM generate_series(0, 4999) i"
                ),
                {"lo": n * SPAN, "c": FILLER, "a": A, "b": B},
            )
            s.execute(
                text(
                    "INSERT INTO sales (chain_id, block_number, block_hash, tx_hash, log_index, "
                    "batch_index, block_time, contract, token_id, seller, buyer, price_wei, "
                    "currency, marketplace, inferred) "
                    "SELECT 1, :lo + i / 20, '0x' || lpad(to_hex(:lo + i / 20), 64, '0'), "
                    "'0x' || lpad(to_hex(i), 64, 'f'), i % 20 + 10, 0, now(), :c, i % 500, "
                    ":a, :b, 5, 'ETH', 'seaport', false FROM generate_series(0, 999) i"
                ),
                {"lo": n * SPAN, "c": FILLER, "a": A, "b": B},
            )
        s.execute(text("ANALYZE transfers"))
        s.execute(text("ANALYZE sales"))
    yield engine, factory, plans
    engine.dispose()


def test_the_ingest_creates_each_span_and_the_next_one_ahead(
    history: tuple[Engine, sessionmaker[Session], Plans],
) -> None:
    _, factory, _ = history
    with factory() as s, raw(s).cursor() as cur:
        for table in ("transfers", "sales"):
            got = partitions(cur, table)
            assert [p[0] for p in got if p[1] < 5 * SPAN] == sorted(_p(table, 0, 1, 2, 3, 4))
            assert all(hi - lo == SPAN and lo % SPAN == 0 for _, lo, hi in got)
        assert ensure_partitions(s, 0, 3 * SPAN) == 0  # 0 to 4: all there, nothing to do
        assert ensure_partitions(s, 9 * SPAN + 5, 9 * SPAN + 5) == 4  # 9 and 10, both tables
        s.rollback()


def test_a_forward_batch_reads_only_the_newest_partitions(
    history: tuple[Engine, sessionmaker[Session], Plans],
) -> None:
    _, factory, plans = history
    with factory.begin() as s:
        plans.on = True
        _record(
            s, [_transfer(3 * SPAN + 200, 0, 2, B, C), _transfer(3 * SPAN + 200, 1, 9, ZERO, E)]
        )
        plans.on = False
    assert plans.plans, "no statement on the event tables was captured"
    scanned = plans.scanned()
    assert scanned, [sql for sql, _ in plans.plans]
    assert scanned <= _p("transfers", 3, 4) | _p("sales", 3, 4), scanned


def test_a_batch_behind_the_head_checks_order_from_its_own_partition_on(
    history: tuple[Engine, sessionmaker[Session], Plans],
) -> None:
    """Events below stored ones: the existence checks look in the batch's partition, the merge's
    order check (bounded by each token's first new block, a value known only at run time) in
    that one and the later ones; a replay of a stored batch likewise."""
    _, factory, plans = history
    plans.on = True
    with factory.begin() as s:
        _record(s, [_transfer(2 * SPAN + 200, 0, 3, A, E)])  # token 3: minted in span 0 only
    with factory.begin() as s:  # a replay
        _record(s, [_transfer(2 * SPAN + 100, 0, 1, B, C)], [_sale(2 * SPAN + 100, 0, 1, B, C)])
    plans.on = False
    with factory() as s:
        owner, moves = s.execute(
            text("SELECT owner, transfer_count FROM tokens WHERE token_id = 3")
        ).one()
    assert (owner, moves) == (E, 1)
    later = _p("transfers", 2, 3, 4) | _p("sales", 2, 3, 4)
    assert plans.scanned() <= later, plans.scanned()
    # the order check ran, in the batch's partition and not below
    assert "transfers_p0002" in plans.scanned("UPDATE _st_delta"), plans.plans


def test_rollback_deletes_from_the_partitions_above_the_ancestor_only(
    history: tuple[Engine, sessionmaker[Session], Plans],
) -> None:
    """By block, a rollback reads and deletes the partitions above the common ancestor; the
    tokens it touched are recomputed from all of their events, through each partition's token
    index."""
    _, factory, plans = history
    with factory.begin() as s:
        _record(
            s, [_transfer(3 * SPAN + 200, 0, 2, B, C), _transfer(3 * SPAN + 200, 1, 9, ZERO, E)]
        )
    with factory.begin() as s:
        # on partitions this small a scan can cost the same as the index, so the planner's choice
        # swings with statistics; what must hold is that the index CAN serve each token's read
        # (its expression spelt exactly): with scans priced out, a scan left means it cannot
        s.execute(text("SET LOCAL enable_seqscan = off"))
        plans.on = True
        stats = rollback_to(s, CHAIN, 3 * SPAN + 150)
        plans.on = False
        owner = s.execute(text("SELECT owner FROM tokens WHERE token_id = 2")).scalar_one()
    assert stats.transfers == 2 and owner == B
    by_block = {n for sql, plan in plans.plans if not _per_token(sql) for n in _scans(plan)}
    assert "transfers_p0003" in by_block, plans.plans
    assert by_block <= _p("transfers", 3, 4) | _p("sales", 3, 4), [
        (sql, _scans(plan)) for sql, plan in plans.plans if not _per_token(sql)
    ]
    # (the ERC-1155 balances' recompute reads only ERC-1155 transfers, of which this history has
    # none: the planner rightly looks for them first, by scanning)
    per_token = {
        kind
        for sql, plan in plans.plans
        if _per_token(sql) and "INTO balances" not in sql
        for kind in _scans(plan, kinds=True)
    }
    assert per_token and not _seq_scans(factory, per_token), [
        (" ".join(sql.split())[:160], sorted(k for k in _scans(plan, kinds=True) if "Seq" in k))
        for sql, plan in plans.plans
        if _per_token(sql)
    ]


def test_readers_bounded_by_block_prune_and_per_token_reads_use_each_partition_index(
    history: tuple[Engine, sessionmaker[Session], Plans],
) -> None:
    _, factory, plans = history
    with factory() as s:
        plans.on = True
        before = owners_before(s, [(CHAIN, NFT, 1, 2 * SPAN + 100, 0)])
        owners = plans.scanned()
        plans.plans.clear()
        n = events_between(s, CHAIN, 2 * SPAN, 3 * SPAN - 1)  # blocks (lo, hi]
        between = plans.scanned()
        plans.plans.clear()
        sold = token_sales(s, CHAIN, NFT, 1)
        per_token = {k for _, plan in plans.plans for k in _scans(plan, kinds=True)}
        plans.on = False
    assert before == {(CHAIN, NFT, 1, 2 * SPAN + 100, 0): B}
    # the owner before a position: that position's partition and the ones below, never above
    assert owners and owners <= _p("transfers", 0, 1, 2), owners
    # the other events of span 2 are in blocks 2,000,000 to 2,000,049, 100 and 20 in the first
    assert n == (4900 + 1) + (980 + 1) and between == _p("transfers", 2) | _p("sales", 2), between
    # a token's whole history: every partition of sales, each through its own index
    assert len(sold) == 3
    assert {k.split(" on ")[1] for k in per_token} >= _p("sales", 1, 2, 3), per_token
    assert not _seq_scans(factory, per_token), per_token


def test_a_tokens_live_orders_read_its_transfers_through_each_partition_index(
    history: tuple[Engine, sessionmaker[Session], Plans],
) -> None:
    _, factory, plans = history
    with factory() as s:
        # an offer made early on, ended by the token's later moves
        s.add(
            Listing(
                chain_id=CHAIN,
                block_number=10,
                block_hash=_hash(10),
                tx_hash=_hash(10_000_001),
                log_index=999,
                block_time=dt.datetime(2021, 1, 1, tzinfo=dt.UTC),
                contract=NFT,
                token_id=Decimal(1),
                kind="offered",
                price_wei=Decimal(10**18),
                account=ZERO,
            )
        )
        s.flush()
        plans.on = True
        orders = live_orders(s, CHAIN, NFT, 1)
        floor = floor_ask(s, CHAIN, NFT)
        used = {u for _, plan in plans.plans for u in _indexes(plan)}
        plans.on = False
    assert orders.ask_wei is None and floor is None  # nothing is listed in this history
    # the token's last move is found by its hash key, never by walking the chain's key
    # backwards through every row of the contract
    with factory() as s:
        holding = set(
            s.execute(text("SELECT DISTINCT tableoid::regclass::text FROM transfers")).scalars()
        )
    # (the span created ahead is empty: scanning it is free, whatever the plan)
    transfers = {(rel, ix) for rel, ix in used if rel in holding}
    assert transfers, used
    assert all(ix is not None and "hash" in ix for _, ix in transfers), transfers


# ------------------------------------------------------------------ the migration itself


@pytest.fixture
def fresh_pg() -> Iterator[str]:
    from nftwatch.localstack.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(Path(tempfile.mkdtemp()), persistent=False)
    url = server.start()
    yield url
    server.stop()


_SEED_0011 = [
    "INSERT INTO transfers (chain_id, block_number, block_hash, tx_hash, log_index, "
    "batch_index, block_time, contract, token_id, from_address, to_address, amount, standard, "
    "is_mint) SELECT 1 + i % 2, (i % 3) * 2500000 + i, '0x' || lpad(to_hex(i), 64, '0'), "
    "'0x' || lpad(to_hex(i), 64, 'e'), i % 7, 0, now(), '0x' || repeat('1', 40), i, "
    "'0x' || repeat('0', 40), '0x' || repeat('2', 40), 1, 'erc721', true "
    "FROM generate_series(1, 3000) i",
    "INSERT INTO sales (chain_id, block_number, block_hash, tx_hash, log_index, batch_index, "
    "block_time, contract, token_id, seller, buyer, price_wei, currency, marketplace, inferred) "
    "SELECT 1, (i % 3) * 2500000 + i, '0x' || lpad(to_hex(i), 64, '0'), "
    "'0x' || lpad(to_hex(i), 64, 'e'), i % 7, 0, now(), '0x' || repeat('1', 40), i, "
    "'0x' || repeat('0', 40), '0x' || repeat('2', 40), i, "
    "CASE WHEN i % 4 = 0 THEN '0x' || repeat('c', 40) ELSE 'WETH' END, 'seaport', false "
    "FROM generate_series(1, 900) i",
]


_SALE_COLUMNS = (
    "chain_id, block_number, block_hash, tx_hash, log_index, batch_index, block_time, contract, "
    "token_id, seller, buyer, price_wei, currency, marketplace, inferred"
)


def _rows(engine: Engine) -> dict[str, list[Any]]:
    with engine.connect() as c:
        return {
            t: [tuple(r) for r in c.execute(text(f"SELECT * FROM {t} ORDER BY 1, 2, 3, 4, 5, 6"))]
            for t in ("transfers", "sales")
        }


def test_migration_converts_a_database_and_downgrades(fresh_pg: str) -> None:
    from alembic import command

    from store.db import _alembic_config, upgrade

    upgrade(fresh_pg, "0011")
    engine = create_engine(fresh_pg)
    with engine.begin() as c:
        for sql in _SEED_0011:
            c.execute(text(sql))
    before = _rows(engine)
    upgrade(fresh_pg)
    assert _rows(engine) == before  # same rows, same column order, price in ether recomputed
    with engine.connect() as c:
        kinds: dict[str, str] = dict(
            c.execute(
                text(
                    "SELECT relname, relkind FROM pg_class WHERE relname IN ('transfers', "
                    "'sales', 'ix_transfers_token', 'ix_sales_token', 'ix_sales_time', "
                    "'ix_sales_block', 'transfers_pkey', 'sales_pkey')"
                )
            ).all()
        )
        parts: dict[str, list[str]] = dict(c.execute(text(
            "SELECT p.relname, array_agg(c.relname::text ORDER BY c.relname) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE p.relname IN ('transfers', 'sales') GROUP BY p.relname"
        )).all())  # fmt: skip
        sales_key = c.execute(text("SELECT pg_get_indexdef('sales_pkey'::regclass)")).scalar_one()
        hex_collations = set(
            c.execute(
                text(
                    "SELECT coalesce(collation_name, '') FROM information_schema.columns "
                    "WHERE table_name LIKE 'sales_p%' AND column_name IN ('contract', 'buyer')"
                )
            ).scalars()
        )
        generated = c.execute(
            text("SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d JOIN pg_attribute a "
                 "ON a.attrelid = d.adrelid AND a.attnum = d.adnum "
                 "WHERE d.adrelid = 'sales_p0005'::regclass AND a.attname = 'price_eth_wei'")
        ).scalar_one()  # fmt: skip
        trigger = c.execute(
            text("SELECT count(*) FROM pg_trigger WHERE tgname = 'offchain_listings_changed'")
        ).scalar_one()
    assert kinds == {
        "transfers": "p",
        "sales": "p",
        "ix_transfers_token": "I",
        "ix_sales_token": "I",
        "ix_sales_time": "I",
        "transfers_pkey": "I",
        "sales_pkey": "I",
    }
    # blocks up to 5,003,000: spans 0, 2 and 5 hold rows; 6 is created ahead
    for table in ("transfers", "sales"):
        assert parts[table] == sorted(_p(table, 0, 2, 5, 6))
    assert "(chain_id, block_number, block_hash, log_index, batch_index, tx_hash)" in sales_key
    assert hex_collations == {"C"} and "WETH" in generated and trigger == 1
    with engine.begin() as c:  # a replayed row conflicts in its partition
        n = c.execute(
            text(
                f"INSERT INTO sales ({_SALE_COLUMNS}) SELECT {_SALE_COLUMNS} FROM sales LIMIT 5 "
                "ON CONFLICT DO NOTHING"
            )
        ).rowcount
    assert n == 0
    with engine.connect() as c:  # as the services connect: a role that owns no table
        c.execute(text("CREATE ROLE rows_only NOLOGIN"))
        c.execute(text("GRANT SELECT, INSERT ON transfers, sales TO rows_only"))
        c.execute(text("SET LOCAL ROLE rows_only"))
        made = c.execute(text("SELECT ensure_event_partitions(40000000, 40000000)")).scalar_one()
        c.execute(
            text(
                f"INSERT INTO sales ({_SALE_COLUMNS}) SELECT chain_id, block_number + 40000000, "
                + _SALE_COLUMNS.split(", block_number, ", 1)[1]
                + " FROM sales LIMIT 1"
            )
        )
        c.rollback()
    assert made == 4  # spans 40 and 41 of both tables

    command.downgrade(_alembic_config(fresh_pg), "0011")
    assert _rows(engine) == before
    with engine.connect() as c:
        kinds = dict(
            c.execute(
                text(
                    "SELECT relname, relkind FROM pg_class WHERE relname IN ('transfers', "
                    "'sales', 'ix_sales_block', 'sales_p0000')"
                )
            ).all()
        )
        fn = c.execute(
            text("SELECT count(*) FROM pg_proc WHERE proname = 'ensure_event_partitions'")
        ).scalar_one()
    assert kinds == {"transfers": "r", "sales": "r", "ix_sales_block": "i"} and fn == 0
    upgrade(fresh_pg)
    assert _rows(engine) == before
    engine.dispose()
