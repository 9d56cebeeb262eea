"""The store at mainnet-like size: one database grown through the ingest path to 1x, 10x and 100x
of the other benches' sizes (100,000 transfers and 100,000 vectors at 1x), measured at each step
in the same run and printed as ratios to the 1x figures.

    python bench/bench_scale.py [--scales 1,10,100] [--vector-scales 1,10] [--dim 384]
                                [--database-url URL] [--shared-buffers 2GB]

At each scale point:

- **grow**: synthetic logs shaped like a node's ``eth_getLogs`` JSON (bench_ingest.py's mix:
  ERC-721 mints and transfers, ERC-1155 batches, Seaport sales each beside its ERC-721 Transfer,
  ERC-20 noise) until the transfers table holds scale x 100,000 rows. Every log goes through the
  backfill's own path: ``decode_logs`` -> ``prepare_decoded`` on this thread, ``record_prepared``
  on the ``Writer`` thread, under ``bulk_tuning``, into whatever schema the migrations build (so
  partitioned tables are measured once they exist). About one token is minted per 9.5 transfers
  (1,000,000 tokens at 100x), in collections of 10,000 that open as the last ones fill.
- **ingest rate**: a probe of 100,000 more logs (bench_ingest's size) in two halves, each generated
  beforehand and then ingested the same way into the grown tables; the faster half counts.
  Generation is not timed.
- **reads**: ``GET /v1/tokens/{chain}/{contract}/{id}`` and ``GET /v1/valuations/...`` through the
  real FastAPI app (``create_app`` with an API key, in process through Starlette's TestClient, so
  routing, auth and serialisation are counted, no socket), on random tokens after a warm-up; every
  token has one stored valuation (COPY). Beside them the valuation's biggest read,
  ``market.collection_sales`` of the token's collection, through the store function.
- **vectors** (``--vector-scales``): ``--dim``-d clustered unit vectors (bench_knn.py's shape) for
  tokens of their own collections of 10,000 each, the HNSW index (m=16, ef_construction=64)
  dropped and built again over all of them through ``ensure_vector_index``: build seconds and the
  peak growth of the server's memory (PSS) while it builds; kNN p50/p95 and recall@10 against
  exact search through ``store.vectors.nearest``, across collections and within one.
- **control**: a fresh database in the same server, grown to 1x, gets the same probe and reads
  in the same minute; the bracketed ratio (big / control) cancels the shared machine's drift.
- **size**: the event tables (transfers, sales, blocks, with partitions and indexes) per million
  transfers, tokens and balances per million tokens, embeddings with HNSW per million vectors, and
  the whole database.

Without ``--database-url`` it starts an embedded Postgres in a temporary directory (deleted at the
end), with ``shared_buffers`` as given (docker-compose's default) and maintenance_work_mem 2GB.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import psycopg
from eth_abi import encode
from pgvector import HalfVector
from pgvector.psycopg import register_vector
from sqlalchemy import text
from sqlalchemy.engine import make_url
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient

from listeners import decode as d
from listeners.backfill import chunk_job, prepare_decoded
from listeners.markets import seaport as seaport_market
from listeners.pipeline import Writer, bulk_tuning
from nftwatch.api import create_app
from nftwatch.localstack.embedded import EmbeddedPostgres
from store import market
from store.db import make_engine, make_sessionmaker, upgrade
from store.records import BlockHeader
from store.vectors import ensure_vector_index, nearest, vector_index_name

CHAIN = 1
UNIT = 100_000  # 1x: today's benches (100,000 logs, 100,000 vectors)
PROBE = 100_000  # logs ingested and timed at each scale point: bench_ingest.py's size
PER_BLOCK = 200
COLLECTION_SIZE = 10_000
OPEN_COLLECTIONS = 20
MINT_SHARE = 0.18  # of ERC-721 transfers: with the ERC-1155 rows, 1 token per 9.5 transfers
KEY = "bench-scale-key-0123456789"
SEAPORT = "0x00000000000000adc04c56bf30ac9d3c0aaf14dc"
VEC_TOKEN_BASE = 10**12  # vector tokens' ids, apart from the ingested ones


def _hex(rng: random.Random, bits: int) -> str:
    return "0x" + format(rng.getrandbits(bits), f"0{bits // 4}x")


def _topic(a: str) -> str:
    return "0x" + "0" * 24 + a[2:]


def _word(n: int) -> str:
    return "0x" + format(n, "064x")


class Chain:
    """A synthetic chain that goes on where it stopped: blocks of 200 logs, collections opening
    as the last ones fill. Counts the transfer rows it produced (an ERC-1155 batch of 4 is 4)."""

    def __init__(self, seed: int = 11) -> None:
        self.rng = random.Random(seed)
        self.users = ["0x" + format(self.rng.getrandbits(160), "040x") for _ in range(100_000)]
        self.multis = ["0x" + format(self.rng.getrandbits(160), "040x") for _ in range(3)]
        self.erc20 = "0x" + format(self.rng.getrandbits(160), "040x")
        self.minted: dict[str, int] = {}  # collection -> next id
        self.open: list[str] = []
        self.block = 0
        self.parent = "0x" + "00" * 32
        self.headers: dict[int, BlockHeader] = {}
        self.transfers = 0
        self.tokens = 0
        self.fresh: list[tuple[str, int]] = []  # tokens minted since the last take_fresh()
        self._names: list[str] = []

    def _collection_to_mint(self) -> str:
        while len(self.open) < OPEN_COLLECTIONS:
            c = "0x" + format(self.rng.getrandbits(160), "040x")
            self.minted[c] = 0
            self.open.append(c)
        return self.rng.choice(self.open)

    def _mint(self) -> tuple[str, int]:
        c = self._collection_to_mint()
        tid = self.minted[c]
        self.minted[c] = tid + 1
        if tid + 1 >= COLLECTION_SIZE:
            self.open.remove(c)
        self.tokens += 1
        self.fresh.append((c, tid))
        return c, tid

    def _existing(self) -> tuple[str, int] | None:
        # a random collection, then a random token in it (collections list grows slowly)
        names = self._names
        for _ in range(4):
            c = names[self.rng.randrange(len(names))]
            if self.minted[c]:
                return c, self.rng.randrange(self.minted[c])
        return None

    def take_fresh(self) -> list[tuple[str, int]]:
        out, self.fresh = self.fresh, []
        return out

    def logs(self, n: int) -> list[dict[str, Any]]:
        """The next ``n`` logs (whole blocks)."""
        rng, users = self.rng, self.users
        out: list[dict[str, Any]] = []
        self._names = list(self.minted) or [self._collection_to_mint()]
        while len(out) < n:
            self.block += 1
            bh = _hex(rng, 256)
            self.headers[self.block] = BlockHeader(
                self.block, bh, self.parent, 1_600_000_000 + 12 * self.block
            )
            self.parent = bh
            i = 0
            while i < PER_BLOCK:
                tx = _hex(rng, 256)
                base = {
                    "blockNumber": hex(self.block),
                    "blockHash": bh,
                    "transactionHash": tx,
                    "transactionIndex": hex(i),
                    "removed": False,
                }
                r = rng.random()
                if r < 0.3:  # ERC-20 noise
                    topics = [d.TRANSFER, _topic(rng.choice(users)), _topic(rng.choice(users))]
                    out.append(
                        {
                            **base,
                            "logIndex": hex(i),
                            "address": self.erc20,
                            "topics": topics,
                            "data": _word(rng.getrandbits(64)),
                        }
                    )
                    i += 1
                elif r < 0.85:  # ERC-721 mint or transfer
                    pick = None if rng.random() < MINT_SHARE else self._existing()
                    if pick is None:
                        (c, tid), frm = self._mint(), d.ZERO
                    else:
                        (c, tid), frm = pick, rng.choice(users)
                    topics = [d.TRANSFER, _topic(frm), _topic(rng.choice(users)), _word(tid)]
                    out.append(
                        {**base, "logIndex": hex(i), "address": c, "topics": topics, "data": "0x"}
                    )
                    self.transfers += 1
                    i += 1
                elif r < 0.93:  # ERC-1155 batch of 4
                    ids = [rng.randrange(100) for _ in range(4)]
                    data = encode(["uint256[]", "uint256[]"], [ids, [1, 2, 3, 4]])
                    topics = [d.TRANSFER_BATCH] + [_topic(rng.choice(users)) for _ in range(3)]
                    out.append(
                        {
                            **base,
                            "logIndex": hex(i),
                            "address": rng.choice(self.multis),
                            "topics": topics,
                            "data": "0x" + data.hex(),
                        }
                    )
                    self.transfers += 4
                    i += 1
                else:  # a Seaport sale for ETH and, in the same transaction, its Transfer
                    pick = self._existing()
                    if pick is None:
                        continue
                    c, tid = pick
                    seller, buyer = rng.choice(users), rng.choice(users)
                    price = rng.randrange(10**16, 10**19)
                    topics = [d.TRANSFER, _topic(seller), _topic(buyer), _word(tid)]
                    out.append(
                        {**base, "logIndex": hex(i), "address": c, "topics": topics, "data": "0x"}
                    )
                    data = encode(
                        [
                            "bytes32",
                            "address",
                            "(uint8,address,uint256,uint256)[]",
                            "(uint8,address,uint256,uint256,address)[]",
                        ],
                        [
                            rng.getrandbits(256).to_bytes(32, "big"),
                            buyer,
                            [(2, c, tid, 1)],
                            [
                                (0, d.ZERO, 0, price * 39 // 40, seller),
                                (0, d.ZERO, 0, price // 40, users[0]),
                            ],
                        ],
                    )
                    seller_topic = [seaport_market.ORDER_FULFILLED, _topic(seller)]
                    out.append(
                        {
                            **base,
                            "logIndex": hex(i + 1),
                            "address": SEAPORT,
                            "topics": [*seller_topic, _topic(d.ZERO)],
                            "data": "0x" + data.hex(),
                        }
                    )
                    self.transfers += 1
                    i += 2
        return out


def ingest(factory: Any, chain: Chain, chunks: Iterator[list[dict[str, Any]]]) -> int:
    """Record ``chunks`` as the backfill does; returns NFT logs decoded."""
    nft = 0
    with bulk_tuning(), Writer(factory) as writer:
        for chunk in chunks:
            dec = d.decode_logs(chunk)
            nft += len(dec.transfers) + len(dec.sales)
            hs = [chain.headers[n] for n in sorted(dec.block_numbers())]
            batch = prepare_decoded(CHAIN, hs, dec)
            writer.submit(chunk_job(batch, "bench-scale", int(chunk[-1]["blockNumber"], 16)))
    return nft


def copy_valuations(dsn: str, fresh: list[tuple[str, int]], rng: random.Random) -> None:
    """One stored valuation per new token (what the desk's GET reads), by COPY."""
    cols = "chain_id, contract, token_id, model_version, p_liquid, price_eth, price_low_eth, "
    cols += "price_high_eth, confidence, explanation, inputs"
    with (
        psycopg.connect(dsn) as conn,
        conn.cursor() as cur,
        cur.copy(f"COPY valuations ({cols}) FROM STDIN") as cp,
    ):
        for c, tid in fresh:
            p = rng.uniform(0.05, 20.0)
            cp.write_row(
                    (CHAIN, c, tid, "bench-scale", 0.5, p, p * 0.8, p * 1.25, 0.5,
                     '{"method": "bench"}', "{}")
                )  # fmt: skip


def pct(xs: list[float]) -> tuple[float, float]:
    a = np.asarray(xs) * 1000
    return float(np.percentile(a, 50)), float(np.percentile(a, 95))


def reads(
    factory: Any, client: TestClient, tokens: list[tuple[str, int]], rng: random.Random, n: int
) -> dict[str, tuple[float, float]]:
    """p50/p95 ms of the token and valuation GETs and of collection_sales."""
    picks = [tokens[rng.randrange(len(tokens))] for _ in range(n + 50)]
    lat: dict[str, list[float]] = {"token": [], "valuation": [], "sales": []}
    for k, (c, tid) in enumerate(picks):
        t = time.perf_counter()
        r1 = client.get(f"/v1/tokens/{CHAIN}/{c}/{tid}")
        t1 = time.perf_counter()
        r2 = client.get(f"/v1/valuations/{CHAIN}/{c}/{tid}")
        t2 = time.perf_counter()
        if r1.status_code != 200 or r2.status_code != 200:
            raise RuntimeError(f"{c}/{tid}: {r1.status_code} {r2.status_code} {r2.text[:200]}")
        with factory() as s:
            t3 = time.perf_counter()
            market.collection_sales(s, CHAIN, c)
            t4 = time.perf_counter()
        if k >= 50:  # the first 50 warm the pool and the app
            lat["token"].append(t1 - t)
            lat["valuation"].append(t2 - t1)
            lat["sales"].append(t4 - t3)
    return {k: pct(v) for k, v in lat.items()}


# ------------------------------------------------------------------------------------ vectors


def clustered(n: int, dim: int, seed: int, centres: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), np.float16)
    for lo in range(0, n, 100_000):
        m = min(100_000, n - lo)
        x = centres[rng.integers(0, len(centres), m)] + rng.normal(size=(m, dim)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[lo : lo + m] = x
    return out


def vsha(i: int) -> str:
    return hashlib.sha256(f"scale:{i}".encode()).hexdigest()


def vcontract(i: int) -> str:
    return "0x" + f"{0xEE00000000 + i // COLLECTION_SIZE:040x}"


def copy_vectors(dsn: str, vecs: np.ndarray, start: int, extractor: str) -> None:
    """media, a token and an embedding per vector, by COPY (binary for the halfvecs)."""
    with psycopg.connect(dsn) as conn:
        register_vector(conn)
        with conn.cursor() as cur:
            with cur.copy(
                "COPY media (sha256, mime, width, height, size, content) FROM STDIN"
            ) as cp:
                for i in range(start, start + len(vecs)):
                    cp.write_row((vsha(i), "image/png", 1, 1, 0, b""))
            cols = "chain_id, contract, token_id, image_sha256, transfer_count, sale_count, "
            cols += "metadata_status, attempts"
            with cur.copy(f"COPY tokens ({cols}) FROM STDIN") as cp:
                for i in range(start, start + len(vecs)):
                    cp.write_row((CHAIN, vcontract(i), VEC_TOKEN_BASE + i, vsha(i), 0, 0, "ok", 0))
            ecols = "image_sha256, extractor, dim, vec, weights, preprocess"
            with cur.copy(f"COPY embeddings ({ecols}) FROM STDIN WITH (FORMAT BINARY)") as cp:
                cp.set_types(["varchar", "varchar", "int4", "halfvec", "text", "text"])
                for j, v in enumerate(vecs):
                    cp.write_row((vsha(start + j), extractor, vecs.shape[1], HalfVector(v), "", ""))
        conn.execute("ANALYZE media, tokens, embeddings")


class PeakMemory:
    """Peak growth of the Postgres processes' summed proportional set size (PSS: a shared page
    counts once, split among its users) over the figure at entry, sampled every 0.5 s. The HNSW
    build's graph lives in the building backend and, for a parallel build, in shared memory that
    its workers share: PSS counts both once."""

    def __init__(self, postmaster: psutil.Process) -> None:
        self.root, self.peak, self._stop = postmaster, 0, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self.base = self._sample()

    def _sample(self) -> int:
        total = 0
        for p in [self.root, *self.root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += p.memory_full_info().pss
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.peak = max(self.peak, self._sample() - self.base)

    def __enter__(self) -> PeakMemory:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()


def postmaster(engine: Any) -> psutil.Process:
    """The server's main process (a backend's parent): its children are the backends."""
    with engine.connect() as c:
        pid = c.execute(text("SELECT pg_backend_pid()")).scalar()
    parent = psutil.Process(pid).parent()
    if parent is None:
        raise RuntimeError("the database server must run on this machine to sample its memory")
    return parent


def knn(
    factory: Any, vecs: np.ndarray, extractor: str, qs: np.ndarray, within: bool
) -> tuple[float, float, float]:
    lat: list[float] = []
    found: list[set[int]] = []
    for q in qs:
        with factory.begin() as s:
            t = time.perf_counter()
            got = nearest(
                s,
                extractor=extractor,
                dim=vecs.shape[1],
                image_sha256=vsha(int(q)),
                k=10,
                contract=vcontract(int(q)) if within else None,
            )
            lat.append(time.perf_counter() - t)
        found.append({int(g.token_id) - VEC_TOKEN_BASE for g in got})
    lat = lat[20:]  # the first queries prepare the statement and warm the graph's pages
    # exact answers after the timed loop (BLAS threads would take the cores from Postgres)
    hits = 0
    n = len(vecs)
    owners = np.arange(n) // COLLECTION_SIZE
    qv = vecs[qs].astype(np.float32)
    sims = np.empty((len(qs), n), np.float32)
    for lo in range(0, n, 200_000):
        sims[:, lo : lo + 200_000] = qv @ vecs[lo : lo + 200_000].astype(np.float32).T
    for row, q, got_ids in zip(sims, qs, found, strict=True):
        row[q] = -np.inf
        if within:
            row[owners != owners[q]] = -np.inf
        want = {int(i) for i in np.argpartition(-row, 10)[:10]}
        hits += len(got_ids & want)
    p50, p95 = pct(lat)
    return p50, p95, hits / (10 * len(qs))


# --------------------------------------------------------------------------------------- sizes

# a partitioned table's own size is zero: sum its tree (which is empty for a plain table)
SIZE = """SELECT coalesce((SELECT sum(pg_total_relation_size(relid))
                           FROM pg_partition_tree(CAST(:t AS regclass))),
                          pg_total_relation_size(CAST(:t AS regclass)))"""


def sizes(engine: Any) -> dict[str, int]:
    with engine.connect() as c:
        rel = {t: int(c.execute(text(SIZE), {"t": t}).scalar() or 0) for t in RELS}
        rel["database"] = int(
            c.execute(text("SELECT pg_database_size(current_database())")).scalar()
        )
    return rel


RELS = ("transfers", "sales", "blocks", "tokens", "balances", "outbox", "valuations", "embeddings")


@dataclasses.dataclass
class Point:
    scale: int
    transfers: int = 0
    tokens: int = 0
    sales: int = 0
    ingest: float = 0.0  # NFT logs/s of the probe
    ctrl_ingest: float = 0.0  # the same probe into the 1x control database, in the same minute
    grow: float = 0.0  # logs/s while growing, generation included
    reads: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    ctrl_reads: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    vectors: int = 0
    build_s: float = 0.0
    build_mem: int = 0
    index_bytes: int = 0
    knn: dict[str, tuple[float, float, float]] = dataclasses.field(default_factory=dict)
    size: dict[str, int] = dataclasses.field(default_factory=dict)
    token_rows: int = 0  # the vectors' tokens included


def start_server(data_dir: Path, shared_buffers: str) -> tuple[EmbeddedPostgres, str]:
    server = EmbeddedPostgres(data_dir, persistent=True)
    url = server.start()
    eng = make_engine(url)
    with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.exec_driver_sql(f"ALTER SYSTEM SET shared_buffers = '{shared_buffers}'")
        c.exec_driver_sql("ALTER SYSTEM SET maintenance_work_mem = '2GB'")
        c.exec_driver_sql("ALTER SYSTEM SET max_parallel_maintenance_workers = 2")
        c.exec_driver_sql("ALTER SYSTEM SET max_wal_size = '8GB'")
    eng.dispose()
    server.stop()
    server = EmbeddedPostgres(data_dir, persistent=True)
    return server, server.start()


class Db:
    """One database with its synthetic chain, the API app over it and the tokens it holds."""

    def __init__(self, url: str, chunk: int) -> None:
        upgrade(url)
        self.url, self.chunk = url, chunk
        self.engine = make_engine(url)
        self.factory = make_sessionmaker(self.engine)
        self.dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.chain = Chain()
        self.tokens: list[tuple[str, int]] = []
        self.rng = random.Random(3)
        self.client = TestClient(
            create_app(self.factory, api_keys=[KEY], chain_id_default=CHAIN),
            headers={"X-API-Key": KEY},
        )
        self.client.__enter__()

    def close(self) -> None:
        self.client.__exit__(None, None, None)
        self.engine.dispose()

    def grow(self, stop_at: int, label: str | None) -> float:
        """Ingest until ``stop_at`` transfers; logs/s, generation included."""
        chain = self.chain
        bar = tqdm(
            total=stop_at,
            initial=min(chain.transfers, stop_at),
            unit=" transfers",
            unit_scale=True,
            desc=label,
            file=sys.stderr,
            mininterval=2,
            disable=label is None,
        )

        def chunks() -> Iterator[list[dict[str, Any]]]:
            while chain.transfers < stop_at:
                before = chain.transfers
                yield chain.logs(self.chunk)
                bar.update(chain.transfers - before)

        t0, n0 = time.perf_counter(), chain.block
        ingest(self.factory, chain, chunks())
        bar.close()
        took = time.perf_counter() - t0
        return (chain.block - n0) * PER_BLOCK / took if took > 0 else 0.0

    def probe(self, n: int) -> float:
        """NFT logs/s of ``n`` more logs, generated first (not timed)."""
        logs = self.chain.logs(n)
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("CHECKPOINT")
        t = time.perf_counter()
        parts = [logs[i : i + self.chunk] for i in range(0, len(logs), self.chunk)]
        nft = ingest(self.factory, self.chain, iter(parts))
        return nft / (time.perf_counter() - t)

    def settle(self) -> None:
        """Valuations for the new tokens, then VACUUM ANALYZE (as autovacuum would by now)."""
        fresh = self.chain.take_fresh()
        copy_valuations(self.dsn, fresh, self.rng)
        self.tokens.extend(fresh)
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE")

    def reads(self, n: int) -> dict[str, tuple[float, float]]:
        return reads(self.factory, self.client, self.tokens, self.rng, n)


def control(admin_url: str, chunk: int, transfers: int) -> Db:
    """A fresh database in the same server grown to 1x: measured beside the big one in the same
    minute, so that the machine's drift (other work on a shared host) cancels in the ratio."""
    admin = make_engine(admin_url)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.exec_driver_sql("DROP DATABASE IF EXISTS bench_control WITH (FORCE)")
        c.exec_driver_sql("CREATE DATABASE bench_control")
    admin.dispose()
    db = Db(make_url(admin_url).set(database="bench_control").render_as_string(False), chunk)
    db.grow(transfers, None)
    return db


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scales", default="1,10,100", help="transfers, in units of 100,000")
    ap.add_argument("--vector-scales", default="1,10", help="vectors, in units of 100,000")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--unit", type=int, default=UNIT, help="1x, in transfers and in vectors")
    ap.add_argument("--reads", type=int, default=400, help="timed requests per route")
    ap.add_argument("--queries", type=int, default=200, help="timed kNN queries per kind")
    ap.add_argument("--chunk", type=int, default=20_000, help="logs per recorded batch")
    ap.add_argument("--database-url")
    ap.add_argument("--shared-buffers", default="2GB", help="as docker-compose.yml sets it")
    args = ap.parse_args(argv)
    scales = sorted(int(s) for s in args.scales.split(","))
    probe = min(PROBE, args.unit)
    vscales = {int(s) for s in args.vector_scales.split(",") if s}
    cpus = os.cpu_count()
    print(f"{cpus} CPUs; load average at the start {os.getloadavg()}")
    print(
        f"scales {scales} x {args.unit:,} transfers; vectors at {sorted(vscales)} x "
        f"{args.unit:,}, {args.dim}-d halfvec"
    )
    # a SIGTERM still stops the servers and deletes the data
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    tmp = None
    server = None
    url = args.database_url
    if url is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench-scale-")
        server, url = start_server(Path(tmp.name), args.shared_buffers)
    db = Db(url, args.chunk)
    ctrl: Db | None = None
    points: list[Point] = []
    extractor = f"scale-{args.dim}"
    centres = np.random.default_rng(5).normal(size=(500, args.dim)).astype(np.float32)
    vecs = np.empty((0, args.dim), np.float16)
    pm = postmaster(db.engine)
    try:
        for scale in scales:
            pt = Point(scale)
            # grow to the target less what the probes will add (about 0.85 transfers per log)
            grow_to = max(0, scale * args.unit - int(probe * 0.85))
            pt.grow = db.grow(grow_to, f"{scale}x grow")
            if ctrl is not None:
                ctrl.close()
            ctrl = control(url, args.chunk, max(0, args.unit - int(probe * 0.85)))
            # the probe: two halves into each database, turn about; the faster half counts
            for _ in range(2):
                pt.ingest = max(pt.ingest, db.probe(probe // 2))
                pt.ctrl_ingest = max(pt.ctrl_ingest, ctrl.probe(probe // 2))
            db.settle()
            ctrl.settle()
            with db.engine.connect() as c:
                pt.transfers = int(c.exec_driver_sql("SELECT count(*) FROM transfers").scalar_one())
                pt.sales = int(c.exec_driver_sql("SELECT count(*) FROM sales").scalar_one())
            pt.tokens = db.chain.tokens
            print(
                f"{scale}x: {pt.transfers:,} transfers, {pt.tokens:,} tokens, {pt.sales:,} "
                f"sales; grew at {pt.grow:,.0f} logs/s (generation included), probe "
                f"{pt.ingest:,.0f} NFT logs/s (1x control beside it {pt.ctrl_ingest:,.0f})",
                flush=True,
            )
            pt.reads = db.reads(args.reads)
            pt.ctrl_reads = ctrl.reads(args.reads)
            print(f"  reads (p50, p95 ms): {pt.reads}; control {pt.ctrl_reads}", flush=True)
            if scale in vscales:
                with db.engine.begin() as c:  # loading into a live HNSW graph is slow
                    c.exec_driver_sql(f"DROP INDEX IF EXISTS {vector_index_name(extractor)}")
                want = scale * args.unit
                if want > len(vecs):
                    new = clustered(want - len(vecs), args.dim, 100 + scale, centres)
                    for lo in tqdm(
                        range(0, len(new), 50_000),
                        desc=f"{scale}x vectors",
                        unit="x50k",
                        file=sys.stderr,
                    ):
                        copy_vectors(db.dsn, new[lo : lo + 50_000], len(vecs) + lo, extractor)
                    vecs = np.concatenate([vecs, new])
                print(f"  building HNSW over {len(vecs):,} vectors ...", flush=True)
                with PeakMemory(pm) as mem:
                    t = time.perf_counter()
                    ensure_vector_index(db.engine, extractor, args.dim)
                    pt.build_s = time.perf_counter() - t
                pt.build_mem = mem.peak
                pt.vectors = len(vecs)
                with db.engine.connect() as c:
                    pt.index_bytes = int(
                        c.execute(
                            text("SELECT pg_relation_size(CAST(:n AS regclass))"),
                            {"n": vector_index_name(extractor)},
                        ).scalar_one()
                    )
                qs = np.random.default_rng(scale).choice(len(vecs), args.queries + 20, False)
                for within in (False, True):
                    key = "within" if within else "across"
                    pt.knn[key] = knn(db.factory, vecs, extractor, qs, within)
                print(
                    f"  HNSW build {pt.build_s:.1f} s, peak {pt.build_mem / 2**30:.2f} GiB, "
                    f"index {pt.index_bytes / 2**30:.2f} GiB; kNN {pt.knn}",
                    flush=True,
                )
            pt.size = sizes(db.engine)
            with db.engine.connect() as c:
                pt.token_rows = int(c.exec_driver_sql("SELECT count(*) FROM tokens").scalar_one())
            print(f"  sizes (bytes, with indexes): {pt.size}", flush=True)
            points.append(pt)
        report(points, args.dim, cpus)
    finally:
        if ctrl is not None:
            ctrl.close()
        db.close()
        if server is not None:
            server.stop()
        if tmp is not None:
            tmp.cleanup()
    print(f"load average at the end {os.getloadavg()}")
    return 0


def report(points: list[Point], dim: int, cpus: int | None) -> None:
    base = points[0]
    vbase = next((p for p in points if p.vectors), None)

    def row(
        label: str,
        vals: list[float | None],
        fmt: str,
        ref: float | None,
        ctrl: list[float] | None = None,
    ) -> None:
        """value, its ratio to the 1x figure, and [to the 1x control measured beside it]."""
        cells = []
        for i, v in enumerate(vals):
            if v is None:
                cells.append(f"{'—':>30}")
                continue
            ratio = f"({v / ref:.2f}x)" if ref else ""
            beside = f"[{v / ctrl[i]:.2f}x]" if ctrl and ctrl[i] else ""
            cells.append(f"{format(v, fmt):>12} {ratio:>8} {beside:>8}")
        print(f"{label:<44}" + "".join(cells))

    print(
        f"\nscale table ({cpus} CPUs): figure (ratio to the first column) [ratio to a fresh 1x "
        "control database measured in the same minute]"
    )
    print(f"{'':<44}" + "".join(f"{f'{p.scale}x':>30}" for p in points))
    row("transfers", [p.transfers for p in points], ",", base.transfers)
    row("tokens (ingested)", [p.tokens for p in points], ",", base.tokens)
    row("sales", [p.sales for p in points], ",", base.sales)
    row(
        "ingest probe, NFT logs/s",
        [p.ingest for p in points],
        ",.0f",
        base.ingest,
        [p.ctrl_ingest for p in points],
    )
    for key, name in (
        ("token", "GET /v1/tokens/…"),
        ("valuation", "GET /v1/valuations/…"),
        ("sales", "collection_sales (valuation input)"),
    ):
        for i, q in ((0, "p50"), (1, "p95")):
            row(
                f"{name} {q} ms",
                [p.reads[key][i] for p in points],
                ".2f",
                base.reads[key][i],
                [p.ctrl_reads[key][i] for p in points],
            )
    vref = vbase
    row("vectors", [p.vectors or None for p in points], ",", vref.vectors if vref else None)
    row("HNSW build s", [p.build_s or None for p in points], ".1f", vref.build_s if vref else None)
    row(
        "HNSW build peak memory (PSS) GiB",
        [p.build_mem / 2**30 if p.vectors else None for p in points],
        ".2f",
        vref.build_mem / 2**30 if vref else None,
    )
    row(
        "HNSW index GiB",
        [p.index_bytes / 2**30 if p.vectors else None for p in points],
        ".2f",
        vref.index_bytes / 2**30 if vref else None,
    )
    for key in ("across", "within"):
        for i, q in ((1, "p95 ms"), (2, "recall@10")):
            fmt = ".2f" if i == 1 else ".3f"
            row(
                f"kNN {key} {q}",
                [p.knn[key][i] if p.knn else None for p in points],
                fmt,
                vref.knn[key][i] if vref else None,
            )

    def per_m(p: Point, tables: tuple[str, ...], n: int) -> float:
        return sum(p.size[t] for t in tables) / 2**30 / (n / 1e6)

    ev = ("transfers", "sales", "blocks")
    row(
        "events GiB per M transfers",
        [per_m(p, ev, p.transfers) for p in points],
        ".3f",
        per_m(base, ev, base.transfers),
    )
    row(
        "balances GiB per M transfers",
        [per_m(p, ("balances",), p.transfers) for p in points],
        ".3f",
        per_m(base, ("balances",), base.transfers),
    )
    row(
        "tokens GiB per M token rows",
        [per_m(p, ("tokens",), p.token_rows) for p in points],
        ".3f",
        per_m(base, ("tokens",), base.token_rows),
    )
    ov = ("outbox", "valuations")
    row(
        "outbox+valuations GiB per M ingested tokens",
        [per_m(p, ov, p.tokens) for p in points],
        ".3f",
        per_m(base, ov, base.tokens),
    )
    row(
        f"embeddings+HNSW GiB per M {dim}-d vectors",
        [per_m(p, ("embeddings",), p.vectors) if p.vectors else None for p in points],
        ".3f",
        per_m(vref, ("embeddings",), vref.vectors) if vref else None,
    )
    row(
        "database GiB",
        [p.size["database"] / 2**30 for p in points],
        ".2f",
        base.size["database"] / 2**30,
    )


if __name__ == "__main__":
    raise SystemExit(main())
