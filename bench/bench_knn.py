"""pgvector kNN through ``store.vectors.nearest``: HNSW build time, p50/p95 latency and recall@10
against exact search, across all collections and within one, at 100,000 vectors.

    python bench/bench_knn.py [--n 100000] [--dim 1280] [--collections 10] [--queries 200]
                              [--m 16] [--ef-construction 64] [--ef-search 40,100,200]
                              [--bq-n 20000] [--bq-rerank 10,40] [--warmup 1000]
                              [--rounds 3] [--shared-buffers 2GB]

Vectors are synthetic and clustered (``--centres`` Gaussian centres, each vector a centre plus
noise, L2-normalised), the shape of pooled CNN features of a few visual families; they are spread
over ``--collections`` contracts at random so that a collection filter keeps 1/collections of the
rows. Exact answers are computed in numpy on the same half-precision numbers Postgres stores.
The second part does the same for 4096-d non-negative sparse vectors (VGG fc7-like) through the
binary-quantised index with exact re-ranking. Everything runs in a throwaway embedded Postgres,
restarted with ``shared_buffers`` as docker-compose.yml sets it, so that the HNSW graph is served
from Postgres' own cache as in production. A first pass of ``--warmup`` other queries warms that
cache; its figures are printed as "cold". Each setting then runs ``--rounds`` times over the same
queries and keeps the round with the lowest p95 (a busy moment on a shared machine inflates
one round's tail, not all of them).
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg
from pgvector import HalfVector
from pgvector.psycopg import register_vector

from nftwatch.localstack.embedded import EmbeddedPostgres
from store.db import make_engine, make_sessionmaker, upgrade
from store.vectors import ensure_vector_index, nearest

CHAIN = 1
BQ_BASE = 10**9  # token ids of the 4096-d set, apart from the first set's


def clustered(n: int, dim: int, centres: int, noise: float, seed: int, relu: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, dim)).astype(np.float32)
    x = c[rng.integers(0, centres, n)] + noise * rng.normal(size=(n, dim)).astype(np.float32)
    if relu:
        x = np.maximum(x, 0)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float16)


def sha(i: int, tag: str) -> str:
    return hashlib.sha256(f"{tag}:{i}".encode()).hexdigest()


def contract(c: int) -> str:
    return "0x" + f"{c + 1:040x}"


def load(url: str, vecs: np.ndarray, owners: np.ndarray, extractor: str, base: int = 0) -> float:
    """COPY media, tokens and halfvec embeddings; returns seconds."""
    start = time.perf_counter()
    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn) as conn:
        register_vector(conn)
        with conn.cursor() as cur:
            with cur.copy(
                "COPY media (sha256, mime, width, height, size, content) FROM STDIN"
            ) as cp:
                for i in range(len(vecs)):
                    cp.write_row((sha(i, extractor), "image/png", 1, 1, 0, b""))
            cols = "chain_id, contract, token_id, image_sha256, transfer_count, sale_count, "
            cols += "metadata_status, attempts"
            with cur.copy(f"COPY tokens ({cols}) FROM STDIN") as cp:
                for i in range(len(vecs)):
                    row = (
                        CHAIN,
                        contract(int(owners[i])),
                        base + i,
                        sha(i, extractor),
                        0,
                        0,
                        "ok",
                        0,
                    )
                    cp.write_row(row)
            ecols = "image_sha256, extractor, dim, vec, weights, preprocess"
            with cur.copy(f"COPY embeddings ({ecols}) FROM STDIN WITH (FORMAT BINARY)") as cp:
                cp.set_types(["varchar", "varchar", "int4", "halfvec", "text", "text"])
                for i, v in enumerate(vecs):
                    cp.write_row(
                        (sha(i, extractor), extractor, vecs.shape[1], HalfVector(v), "", "")
                    )
        conn.execute("ANALYZE media, tokens, embeddings")
    return time.perf_counter() - start


def start_server(data_dir: Path, shared_buffers: str) -> tuple[EmbeddedPostgres, str]:
    """A throwaway embedded Postgres, restarted once so that ``shared_buffers`` takes effect."""
    server = EmbeddedPostgres(data_dir, persistent=True)
    url = server.start()
    engine = make_engine(url)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            f"ALTER SYSTEM SET shared_buffers = '{shared_buffers}'"
        )
    engine.dispose()
    server.stop()
    server = EmbeddedPostgres(data_dir, persistent=True)
    return server, server.start()


def build(url: str, extractor: str, dim: int, m: int, ef_construction: int) -> float:
    """Build through ``ensure_vector_index``, with the graph in memory (database-level settings,
    so the connection that builds the index has them)."""
    engine = make_engine(url)
    with engine.begin() as conn:
        db = conn.exec_driver_sql("SELECT current_database()").scalar()
        conn.exec_driver_sql(f"ALTER DATABASE \"{db}\" SET maintenance_work_mem = '2GB'")
        conn.exec_driver_sql(f'ALTER DATABASE "{db}" SET max_parallel_maintenance_workers = 2')
    engine.dispose()
    engine = make_engine(url)
    start = time.perf_counter()
    ensure_vector_index(engine, extractor, dim, m=m, ef_construction=ef_construction)
    took = time.perf_counter() - start
    engine.dispose()
    return took


def exact_top(vecs32: np.ndarray, q: int, k: int, mask: np.ndarray | None) -> set[int]:
    sims = vecs32 @ vecs32[q]
    sims[q] = -np.inf
    if mask is not None:
        sims[~mask] = -np.inf
    top = np.argpartition(-sims, k)[:k]
    return {int(i) for i in top}


def measure(
    url: str,
    vecs: np.ndarray,
    owners: np.ndarray,
    extractor: str,
    queries_: np.ndarray,
    ef_search: int,
    within: bool,
    rerank: int = 10,
    k: int = 10,
    base: int = 0,
    rounds: int = 1,
) -> tuple[float, float, float]:
    """p50 ms, p95 ms (of the round with the lowest p95: the machine is shared and noisy),
    recall@k."""
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    best: tuple[float, float] | None = None
    found: list[set[int]] = []
    for _ in range(rounds):
        lat, found = [], []
        for q in queries_:
            owner = contract(int(owners[q])) if within else None
            with factory.begin() as s:
                start = time.perf_counter()
                got = nearest(
                    s,
                    extractor=extractor,
                    dim=vecs.shape[1],
                    image_sha256=sha(int(q), extractor),
                    k=k,
                    contract=owner,
                    ef_search=ef_search,
                    rerank=rerank,
                )
                lat.append(time.perf_counter() - start)
            found.append({int(g.token_id) - base for g in got})
        ms = np.asarray(lat) * 1000
        p50, p95 = float(np.percentile(ms, 50)), float(np.percentile(ms, 95))
        if best is None or p95 < best[1]:
            best = (p50, p95)
    # exact answers only after the timed loop: numpy's BLAS threads spin on after each product
    # and would take the cores from the Postgres backend being timed
    vecs32 = vecs.astype(np.float32)
    hits = 0
    for q, got_ids in zip(queries_, found, strict=True):
        want = exact_top(vecs32, int(q), k, owners == owners[q] if within else None)
        hits += len(got_ids & want)
    engine.dispose()
    assert best is not None
    return best[0], best[1], hits / (k * len(queries_))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=1280)
    ap.add_argument("--centres", type=int, default=500)
    ap.add_argument("--noise", type=float, default=1.0)
    ap.add_argument("--collections", type=int, default=10)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=64)
    ap.add_argument("--ef-search", default="40,100,200")
    ap.add_argument("--bq-n", type=int, default=20_000)
    ap.add_argument("--bq-rerank", default="10,40")
    ap.add_argument("--warmup", type=int, default=1000, help="other queries, to warm the cache")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds; the best p95 is kept")
    ap.add_argument("--shared-buffers", default="2GB", help="as docker-compose.yml sets it")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)

    with tempfile.TemporaryDirectory() as tmp:
        server, url = start_server(Path(tmp), args.shared_buffers)
        try:
            upgrade(url)
            name = f"synthetic-{args.dim}"
            vecs = clustered(args.n, args.dim, args.centres, args.noise, 1, relu=False)
            owners = rng.integers(0, args.collections, args.n)
            print(
                f"{args.n} clustered synthetic {args.dim}-d vectors ({args.centres} centres), "
                f"{args.collections} collections; {args.queries} queries, k=10"
            )
            print(f"load (COPY) {load(url, vecs, owners, name):.1f} s")
            took = build(url, name, args.dim, args.m, args.ef_construction)
            print(
                f"HNSW halfvec_cosine_ops m={args.m} ef_construction={args.ef_construction}: "
                f"build {took:.1f} s"
            )
            qs = rng.choice(args.n, args.queries, replace=False)
            print(f"{'search':<8} {'ef_search':>9} {'p50 ms':>7} {'p95 ms':>7} {'recall@10':>9}")
            # a cold cache reads the graph from disk; the desk keeps it hot in production
            others = np.setdiff1d(np.arange(args.n), qs)
            warm = rng.choice(others, args.warmup, replace=False)
            for within in (False, True):
                p50, p95, rec = measure(url, vecs, owners, name, warm, 100, within)
                label = "within" if within else "across"
                print(f"{label:<8} {'100 cold':>9} {p50:>7.2f} {p95:>7.2f} {rec:>9.3f}")
            for ef in [int(e) for e in args.ef_search.split(",")]:
                for within in (False, True):
                    p50, p95, rec = measure(
                        url, vecs, owners, name, qs, ef, within, rounds=args.rounds
                    )
                    label = "within" if within else "across"
                    print(f"{label:<8} {ef:>9} {p50:>7.2f} {p95:>7.2f} {rec:>9.3f}")
            if args.bq_n:
                bq(url, args, rng)
        finally:
            server.stop()
    return 0


def bq(url: str, args: argparse.Namespace, rng: np.random.Generator) -> None:
    dim, name = 4096, "synthetic-4096"
    vecs = clustered(args.bq_n, dim, max(10, args.centres // 5), args.noise, 2, relu=True)
    owners = rng.integers(0, args.collections, args.bq_n)
    load(url, vecs, owners, name, base=BQ_BASE)
    took = build(url, name, dim, args.m, args.ef_construction)
    print(
        f"\n{args.bq_n} non-negative sparse 4096-d vectors (fc7-like): binary_quantize "
        f"bit_hamming_ops HNSW build {took:.1f} s; exact cosine re-rank of rerank×k candidates"
    )
    qs = rng.choice(args.bq_n, min(args.queries, 100), replace=False)
    print(f"{'search':<8} {'rerank':>6} {'p50 ms':>7} {'p95 ms':>7} {'recall@10':>9}")
    for rerank in [int(r) for r in args.bq_rerank.split(",")]:
        for within in (False, True):
            p50, p95, rec = measure(
                url,
                vecs,
                owners,
                name,
                qs,
                40,
                within,
                rerank=rerank,
                base=BQ_BASE,
                rounds=args.rounds,
            )
            label = "within" if within else "across"
            print(f"{label:<8} {rerank:>6} {p50:>7.2f} {p95:>7.2f} {rec:>9.3f}")


if __name__ == "__main__":
    raise SystemExit(main())
