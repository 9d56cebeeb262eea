"""Resolve throughput with 1, 2 and 4 worker processes sharing one Redis, as separate hosts would.

Each worker is its own ``nftwatch worker --queues resolve --pool solo`` process. The tokens are
the demo's (four collections deployed and minted on anvil, metadata and images published on a
loopback IPFS gateway that adds ``--latency`` to every request), recorded by ``nftwatch
backfill``. For each process count the tokens are marked pending again and sent as the
dispatcher sends them (batches of ``RESOLVE_BATCH`` tokens of one contract); the clock runs from
the first message to the last token stored as resolved: tokenURI by ``eth_call``, metadata and
image from the gateway, the image's hash checked and stored.

    python bench/bench_workers.py [--tokens-per-collection 100] [--latency 0.05] [--counts 1,2,4]
                                  [--rounds 2]

Uses the machine's Redis at 127.0.0.1:6379 when it answers (``--redis-url``), else starts the
embedded one; Postgres is an embedded throwaway. The CPU count is printed: on a machine with
fewer cores than processes, the processes share them.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis
from celery import Celery
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nftwatch.demo import content, world  # noqa: E402
from nftwatch.localstack import chaintools  # noqa: E402
from nftwatch.localstack.embedded import Anvil, EmbeddedPostgres, EmbeddedRedis  # noqa: E402
from nftwatch.localstack.ipfs_gateway import LocalIpfsGateway  # noqa: E402
from store.db import make_engine, upgrade  # noqa: E402
from tests.support.workers import start_workers, stop_workers, wait_until_ready  # noqa: E402
from worker.app import RESOLVE_TASK  # noqa: E402
from worker.dispatcher import RESOLVE_BATCH  # noqa: E402

CHAIN_ID = 31337


def redis_url(given: str | None, tmp: Path) -> tuple[str, EmbeddedRedis | None]:
    url = given or "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url).ping()
        return url, None
    except redis.exceptions.ConnectionError:
        if given:
            raise
    server = EmbeddedRedis(tmp / "redis", persistent=False)
    server.start()
    return server.url, server


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens-per-collection", type=int, default=100)
    ap.add_argument("--latency", type=float, default=0.05, help="seconds per gateway request")
    ap.add_argument("--counts", default="1,2,4", help="worker process counts")
    ap.add_argument("--rounds", type=int, default=2, help="runs per count, turn about; best kept")
    ap.add_argument("--redis-url")
    args = ap.parse_args(argv)
    counts = [int(c) for c in args.counts.split(",")]
    cpus = os.cpu_count()
    print(f"{cpus} CPUs; load average at the start {os.getloadavg()}")

    tmp = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    pg = EmbeddedPostgres(tmp / "pg", persistent=False)
    db_url = pg.start()
    broker, own_redis = redis_url(args.redis_url, tmp)
    prefix = f"bench-workers-{uuid.uuid4().hex[:8]}:"
    gateway = LocalIpfsGateway()
    node = Anvil(chain_id=CHAIN_ID)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        upgrade(db_url)
        node.start()
        gateway.start()
        collections = content.build_collections(args.tokens_per_collection, seed=5)[1:5]
        uris = [content.publish(gateway, c) for c in collections]
        w3 = chaintools.connect(node.url)
        deployed = world.deploy(w3, collections, uris)
        holders = [str(a) for a in list(w3.eth.accounts)[1:5]]
        world.mint_all(w3, deployed, holders, random.Random(11))
        env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "CELERY_BROKER_URL": broker,
            "NFTWATCH_REDIS_PREFIX": prefix,
            "ETH_RPC_URL": node.url,
            "NFTWATCH_CHAIN_ID": str(CHAIN_ID),
            "NFTWATCH_COLLECTIONS": ",".join(d.address for d in deployed),
            "IPFS_GATEWAYS": gateway.base_url,
            "NFTWATCH_ALLOW_HOSTS": gateway.netloc,
            "NFTWATCH_EXTRACTORS": "gradient-v1",
            "NFTWATCH_DEVICE": "cpu",
            "NFTWATCH_DATA_DIR": str(tmp / "data"),
            "NFTWATCH_METRICS_PORT": "0",
            "NFTWATCH_LOG_LEVEL": "INFO",  # the workers say "ready." at INFO
        }
        head = int(w3.eth.block_number)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "nftwatch.cli",
                "backfill",
                "--from-block",
                "0",
                "--to-block",
                str(head),
                "--json",
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        engine = make_engine(db_url)
        with engine.connect() as c:
            rows = c.execute(text("SELECT contract, token_id FROM tokens ORDER BY 1, 2")).all()
        by_contract: dict[str, list[str]] = {}
        for contract, tid in rows:
            by_contract.setdefault(contract, []).append(str(int(tid)))
        messages = [
            {"chain_id": CHAIN_ID, "contract": c, "token_ids": ids[i : i + RESOLVE_BATCH]}
            for c, ids in by_contract.items()
            for i in range(0, len(ids), RESOLVE_BATCH)
        ]
        total = len(rows)
        print(
            f"{total} tokens in {len(by_contract)} collections, {len(messages)} messages of up "
            f"to {RESOLVE_BATCH}; gateway latency {args.latency * 1000:.0f} ms per request "
            "(two requests per token: metadata, image)"
        )
        app = Celery("bench", broker=broker)
        app.conf.broker_transport_options = {"global_keyprefix": prefix}
        gateway.latency = args.latency
        best: dict[int, float] = {}
        order = [n for r in range(args.rounds) for n in (counts if r % 2 == 0 else counts[::-1])]
        for n in order:
            with engine.begin() as c:
                c.execute(text("UPDATE tokens SET metadata_status = 'pending'"))
            logs = [tmp / f"w{n}-{i}-{uuid.uuid4().hex[:4]}.log" for i in range(n)]
            procs = start_workers(env, logs, queues="resolve", pool="solo")
            wait_until_ready(procs, logs, 120)
            start = time.perf_counter()
            for kwargs in messages:
                app.send_task(RESOLVE_TASK, kwargs=kwargs, queue="resolve")
            ok = 0
            deadline = time.monotonic() + 600
            while ok < total:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{n} workers: only {ok} of {total} resolved in 600 s")
                time.sleep(0.05)
                with engine.connect() as c:
                    ok = int(
                        c.execute(
                            text("SELECT count(*) FROM tokens WHERE metadata_status = 'ok'")
                        ).scalar_one()
                    )
            rate = total / (time.perf_counter() - start)
            best[n] = max(best.get(n, 0.0), rate)
            print(f"  {n} process(es): {rate:7.1f} tokens/s", flush=True)
            stop_workers(procs, grace=30)
            procs = []
        engine.dispose()
        base = best[counts[0]]
        print(f"\nresolve throughput on {cpus} CPUs (best of {args.rounds}):")
        print(f"{'processes':>9} {'tokens/s':>9} {'vs 1':>6} {'per process':>11}")
        for n in counts:
            print(f"{n:>9} {best[n]:>9.1f} {best[n] / base:>5.2f}x {best[n] / n:>11.1f}")
        print(
            f"one process's ceiling at this latency, were it only waiting: "
            f"{RESOLVE_BATCH / (2 * args.latency):.0f} tokens/s per batch in flight"
        )
    finally:
        stop_workers(procs, grace=10)
        gateway.stop()
        node.stop()
        if own_redis is not None:
            own_redis.stop()
        client = redis.Redis.from_url(broker)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"load average at the end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
