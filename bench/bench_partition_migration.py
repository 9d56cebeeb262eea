"""Migration 0012's window: how long converting ``transfers`` and ``sales`` to partitioned tables
takes per million rows, and how long readers stall meanwhile.

    python bench/bench_partition_migration.py [--transfers 1000000] [--database-url URL]

Grows a database at revision 0011 to ``--transfers`` transfers and a fifth as many sales spread
over 20 million blocks (20 partitions), then upgrades to 0012 while a reader thread runs a
per-token lookup in a loop on its own connection, and downgrades again. Prints seconds per
million rows each way, the reader's longest wait beside its median (a ratio), and the share of
the upgrade during which readers were blocked, and the per-token lookup's median after the
upgrade beside before, then the same lookup turn about on the partitioned table and a plain copy
of it (one index probe per partition against one in all). Writers wait for the whole upgrade by
design.
Without --database-url it starts an embedded Postgres.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alembic import command
from sqlalchemy import Engine, create_engine, text

from store.db import _alembic_config, upgrade

BLOCKS = 20_000_000

_TRANSFERS = f"""
INSERT INTO transfers (chain_id, block_number, block_hash, tx_hash, log_index, batch_index,
  block_time, contract, token_id, from_address, to_address, amount, standard, is_mint)
SELECT 1, b, '0x' || lpad(to_hex(b), 64, '0'), '0x' || md5(i::text) || md5(b::text), i % 200, 0,
  to_timestamp(1500000000 + b * 12), '0x' || lpad(to_hex(i % 300), 40, '0'), i % 10007,
  '0x' || lpad(to_hex(i % 5000), 40, 'a'), '0x' || lpad(to_hex(i % 4999), 40, 'b'), 1,
  'erc721', i % 10 = 0
FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) i,
  LATERAL (SELECT (i * {BLOCKS}) / CAST(:n AS bigint) AS b) x
"""
_SALES = f"""
INSERT INTO sales (chain_id, block_number, block_hash, tx_hash, log_index, batch_index,
  block_time, contract, token_id, seller, buyer, price_wei, currency, marketplace, inferred)
SELECT 1, b, '0x' || lpad(to_hex(b), 64, '0'), '0x' || md5(i::text) || md5(b::text), i % 200, 0,
  to_timestamp(1500000000 + b * 12), '0x' || lpad(to_hex(i % 300), 40, '0'), i % 10007,
  '0x' || lpad(to_hex(i % 5000), 40, 'a'), '0x' || lpad(to_hex(i % 4999), 40, 'b'),
  (i % 1000 + 1) * 10000000000000000::numeric, CASE WHEN i % 9 = 0 THEN 'WETH' ELSE 'ETH' END,
  'seaport', false
FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) i,
  LATERAL (SELECT (i * {BLOCKS}) / CAST(:n AS bigint) AS b) x
"""
_LOOKUP = text(
    "SELECT count(*) FROM transfers WHERE hashtextextended(contract || token_id::text, 0) = "
    "hashtextextended(CAST(:c AS text) || CAST(:t AS text), 0) AND chain_id = 1 "
    "AND contract = :c AND token_id = CAST(:t AS numeric)"
)


class Reader(threading.Thread):
    """Per-token lookups in a loop, and the time each took: their median before the upgrade,
    the stall during it (a blocked one waits for the locks), their median after it."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.engine = create_engine(url)
        self.stop = threading.Event()
        self.waits: list[tuple[float, float]] = []  # (start, seconds)

    def run(self) -> None:
        i = 0
        with self.engine.connect() as c:
            while not self.stop.is_set():
                i += 1
                t = time.perf_counter()
                c.execute(_LOOKUP, {"c": "0x" + format(i % 300, "040x"), "t": str(i % 10007)})
                c.rollback()
                self.waits.append((t, time.perf_counter() - t))
                time.sleep(0.002)
        self.engine.dispose()


def side_by_side(engine: Engine, n: int = 3000) -> tuple[float, float]:
    """Median seconds of the per-token lookup on a plain copy of ``transfers`` (same index) and
    on the partitioned table, taken in turn on one connection, both vacuumed and analysed."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("CREATE TABLE transfers_plain AS SELECT * FROM transfers"))
        c.execute(
            text(
                "CREATE INDEX ON transfers_plain "
                "(hashtextextended(contract || token_id::text, 0), chain_id)"
            )
        )
        c.execute(text("VACUUM ANALYZE transfers_plain"))
        c.execute(text("VACUUM ANALYZE transfers"))
    lookup = {
        t: text(str(_LOOKUP).replace("transfers", t)) for t in ("transfers_plain", "transfers")
    }
    took: dict[str, list[float]] = {t: [] for t in lookup}
    with engine.connect() as c:
        for i in range(n):
            p = {"c": "0x" + format(i % 300, "040x"), "t": str(i % 10007)}
            for table, sql in lookup.items():
                t = time.perf_counter()
                c.execute(sql, p).scalar()
                took[table].append(time.perf_counter() - t)
    with engine.begin() as c:
        c.execute(text("DROP TABLE transfers_plain"))
    return statistics.median(took["transfers_plain"]), statistics.median(took["transfers"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--transfers", type=int, default=1_000_000)
    ap.add_argument("--database-url")
    args = ap.parse_args()
    server = None
    url = args.database_url
    if url is None:
        from nftwatch.localstack.embedded import EmbeddedPostgres

        server = EmbeddedPostgres(Path(tempfile.mkdtemp()), persistent=False)
        url = server.start()
    try:
        upgrade(url, "0011")
        engine = create_engine(url)
        n_tr, n_sa = args.transfers, args.transfers // 5
        t0 = time.perf_counter()
        with engine.begin() as c:
            for sql, n in ((_TRANSFERS, n_tr), (_SALES, n_sa)):
                for lo in range(0, n, 200_000):
                    c.execute(text(sql), {"lo": lo, "hi": min(n, lo + 200_000) - 1, "n": n})
            c.execute(text("ANALYZE transfers"))
            c.execute(text("ANALYZE sales"))
        print(f"{n_tr:,} transfers and {n_sa:,} sales at 0011 in {time.perf_counter() - t0:.1f} s")
        rows = (n_tr + n_sa) / 1e6
        reader = Reader(url)
        reader.start()
        time.sleep(2.0)
        t0 = time.perf_counter()
        upgrade(url)
        t_up = time.perf_counter() - t0
        time.sleep(3.0)
        reader.stop.set()
        reader.join()
        during = [w for s, w in reader.waits if t0 <= s <= t0 + t_up]
        before = [w for s, w in reader.waits if s < t0]
        after = [w for s, w in reader.waits if s > t0 + t_up + 0.5]
        with engine.connect() as c:
            parts = c.execute(
                text("SELECT count(*) FROM pg_inherits WHERE inhparent = 'transfers'::regclass")
            ).scalar_one()
        print(
            f"upgrade to 0012: {t_up:.1f} s, {t_up / rows:.1f} s per million rows "
            f"({parts} partitions per table)"
        )
        if during and before:
            longest, median = max(during), statistics.median(before)
            print(
                f"  reader: longest lookup during it {longest * 1000:.0f} ms, median before "
                f"{median * 1000:.2f} ms ({longest / median:.0f}x); blocked for "
                f"{longest / t_up:.0%} of the upgrade ({len(during)} lookups ran during it)"
            )
        if after and before:
            ratio = statistics.median(after) / statistics.median(before)
            print(
                f"  right after it (cold partitions, autovacuum analysing them), per-token lookup "
                f"median {statistics.median(after) * 1000:.2f} ms ({ratio:.2f}x the plain table's)"
            )
        plain, parted = side_by_side(engine)
        print(
            f"  per-token lookup, steady state, turn about in one session: median "
            f"{parted * 1000:.3f} ms over {parts} partitions, {plain * 1000:.3f} ms on a plain "
            f"copy with the same index (partitioned / plain = {parted / plain:.2f}x)"
        )
        t0 = time.perf_counter()
        command.downgrade(_alembic_config(url), "0011")
        t_down = time.perf_counter() - t0
        print(f"downgrade to 0011: {t_down:.1f} s, {t_down / rows:.1f} s per million rows")
        print(f"  upgrade / downgrade: {t_up / t_down:.2f}x")
        engine.dispose()
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
