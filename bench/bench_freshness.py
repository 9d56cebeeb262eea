"""Freshness: seconds from an on-chain listing (``PunkOffered`` on the CryptoPunks-shaped market)
to a stored valuation of that token, while the backfill's resolve/embed work is still queued.

The demo's world on embedded Postgres, anvil and a local IPFS gateway, real Celery workers under
the supervisor, the follower and the dispatcher in threads. Listings are made right after the
backfill, one every ``--gap`` seconds; each is timed from its mined transaction to the first
valuation of that token stored after it. The resolve and embed workers run at ``--bulk-nice``
below the urgent worker (0 puts them level with it).

The same scenario runs twice, side by side: on the broker ``make demo`` uses by default (the
embedded Redis), then on a Redis server of the machine's (``--compare-redis``, default
CELERY_BROKER_URL when it is a Redis URL, else redis://127.0.0.1:6379/0; skipped when nothing
answers there, or with ``--compare-redis none``), under a key prefix of its own that is deleted
afterwards. Prints p50/p95/max of each, their ratio, and p95 against the 2 s target.

    python bench/bench_freshness.py [--listings 60] [--gap 0.3] [--bulk-nice 10]
        [--compare-redis redis://127.0.0.1:6379/0 | none]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import random
import statistics
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import func, select

from listeners.backfill import backfill
from listeners.follower import Follower
from listeners.rpc import Rpc
from nftwatch.demo import content, world
from nftwatch.demo.run import CHAIN_ID, local_worker_config, start_local_stack
from nftwatch.localstack import chaintools
from nftwatch.runtime import worker_env
from nftwatch.service.supervisor import BULK_NICE, Supervisor
from nftwatch.settings import Settings, load, mask_url
from store import tokens
from store.db import ensure_schema, make_engine, make_sessionmaker
from store.models import Outbox, Token, Valuation
from worker.app import VALUE_TASK, configure, is_redis_url, prepare_broker, redis_client_url
from worker.dispatcher import celery_sender, run_dispatcher

TARGET_P95_S = 2.0
DEFAULT_COMPARE = "redis://127.0.0.1:6379/0"


def percentile(xs: list[float], q: float) -> float:
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclasses.dataclass
class Run:
    broker: str
    latencies: list[float]
    listed: int

    def stat(self, name: str) -> float:
        xs = self.latencies
        return {"p50": percentile(xs, 0.5), "p95": percentile(xs, 0.95), "max": max(xs)}[name]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listings", type=int, default=60)
    parser.add_argument("--tokens", type=int, default=80, help="tokens per collection")
    parser.add_argument("--gap", type=float, default=0.3, help="seconds between listings")
    parser.add_argument(
        "--bulk-nice",
        type=int,
        default=BULK_NICE,
        help="niceness of the resolve and embed workers (0: as urgent work)",
    )
    parser.add_argument(
        "--cold", action="store_true", help="no warm-up valuation: include worker start-up"
    )
    parser.add_argument(
        "--compare-redis",
        default=None,
        help="the machine's Redis to measure beside the embedded default ('none': skip); "
        f"default CELERY_BROKER_URL when it is Redis, else {DEFAULT_COMPARE}",
    )
    args = parser.parse_args()
    settings = load()
    compare = comparison_url(args.compare_redis, settings.broker_url)
    runs = [measure(args, settings, None, "embedded Redis (default)")]
    if compare is not None:
        prefix = f"bench-freshness-{uuid.uuid4().hex[:8]}:"
        try:
            runs.append(
                measure(
                    args,
                    dataclasses.replace(settings, redis_key_prefix=prefix),
                    compare,
                    mask_url(compare),
                )
            )
        finally:
            delete_keys(compare, prefix)
    print_side_by_side(runs)


def comparison_url(flag: str | None, configured: str | None) -> str | None:
    """The Redis to measure beside the embedded default, or None (with a line saying why)."""
    if flag is not None and flag.lower() == "none":
        return None
    url = flag or (configured if configured and is_redis_url(configured) else DEFAULT_COMPARE)
    client = redis.Redis.from_url(redis_client_url(url) or url, socket_timeout=2)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        print(f"not compared: no Redis answers at {mask_url(url)} ({exc})")
        return None
    finally:
        client.close()
    return url


def delete_keys(url: str, prefix: str) -> None:
    with redis.Redis.from_url(redis_client_url(url) or url) as client:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)


def measure(args: argparse.Namespace, settings: Settings, broker: str | None, label: str) -> Run:
    """One run of the scenario on ``broker`` (None: the embedded default, as ``make demo``)."""
    print(f"--- broker: {label}")
    work = Path(tempfile.mkdtemp(prefix="bench-freshness-"))
    with contextlib.ExitStack() as stack:
        local = start_local_stack(stack, work / "postgres", broker)
        database_url, broker_url = local.database_url, local.broker_url
        node, gateway = local.node, local.gateway
        ensure_schema(database_url)
        engine = make_engine(database_url)
        stack.callback(engine.dispose)
        factory = make_sessionmaker(engine)
        cfg = local_worker_config(settings, database_url, broker_url, node, gateway, device="cpu")
        app = configure(cfg)
        prepare_broker(app)
        supervisor = Supervisor(work / "logs")
        stack.callback(supervisor.stop_all)
        env = worker_env(cfg, log_level="WARNING")
        rpc_arg = f"--rpc={CHAIN_ID}={node.url}"
        # the urgent queue has a worker of its own, as in production: a backfill never blocks it
        supervisor.start_worker(
            "urgent-worker", env, "--queues", "urgent", "--pool", "threads", "--concurrency",
            "4", rpc_arg,
        )  # fmt: skip
        # bulk work at a lower CPU priority than urgent work (``--bulk-nice``)
        supervisor.start_worker(
            "resolve-worker", env, "--queues", "resolve", "--pool", "threads", "--concurrency",
            "4", rpc_arg, nice=args.bulk_nice,
        )  # fmt: skip
        # on the CPU the backfill's embedding leaves one core to urgent work (torch takes them all)
        embed_env = {**env, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 2) - 1))}
        supervisor.start_worker(
            "embed-worker", embed_env, "--queues", "embed", "--pool", "solo", rpc_arg,
            nice=args.bulk_nice,
        )  # fmt: skip
        stop = threading.Event()
        dispatcher = threading.Thread(
            target=run_dispatcher, args=(factory, celery_sender(app), stop), daemon=True
        )
        dispatcher.start()
        # before the next run reconfigures the app: this run's threads end first
        stack.callback(dispatcher.join, 10)
        stack.callback(stop.set)

        rng = random.Random(11)
        collections = content.build_collections(args.tokens, seed=11)
        base_uris = [content.publish(gateway, c) for c in collections]
        w3 = chaintools.connect(node.url)
        holders = [str(a) for a in list(w3.eth.accounts)[1:9]]
        deployed = world.deploy(w3, collections, base_uris)
        market = chaintools.deploy(w3, "DemoMarket", w3.eth.accounts[0])
        with factory.begin() as s:
            for d in deployed:
                tokens.upsert_collection(s, CHAIN_ID, d.address, d.collection.name, d.standard)
        world.mint_all(w3, deployed, holders, rng)
        world.trade(w3, deployed, market, holders, rng)
        punks = next(d for d in deployed if d.standard == "cryptopunks")
        ids = [t.token_id for t in punks.collection.tokens]
        chosen = rng.sample(ids, k=min(args.listings, len(ids)))
        if not args.cold:  # before the backfill, so that its work is all queued when we list
            warm_up(app, factory, punks.address, next(t for t in ids if t not in chosen))
        rpc = Rpc(node.url)
        stack.callback(rpc.close)
        head = rpc.get_block_number()
        backfill(rpc, factory, CHAIN_ID, 0, head, [d.address for d in deployed])
        follower = Follower(
            rpc, factory, CHAIN_ID, [d.address for d in deployed], confirmations=0,
            start_block=head + 1,
        )  # fmt: skip
        following = threading.Thread(target=follower.run, args=(stop, 0.1), daemon=True)
        following.start()
        stack.callback(following.join, 10)  # before its node and client go
        stack.callback(stop.set)
        with factory() as s:
            total = s.scalar(select(func.count()).select_from(Token)) or 0
            resolved = s.scalar(
                select(func.count()).select_from(Token).where(Token.metadata_status == "ok")
            )
        print(f"backfill recorded {total} tokens; {resolved} resolved when listing starts")

        listed_at: dict[int, float] = {}
        started = time.monotonic()
        for token_id in chosen:
            price = int(Decimal(rng.uniform(0.5, 5)) * 10**18)
            owner = world.owner_of(punks, token_id)
            # the clock starts when the listing is sent: the call returns only after polling for
            # its receipt, by which time the valuation may already be stored
            listed_at[token_id] = time.time()
            chaintools.call(w3, punks.contract, "offerPunkForSale", token_id, price, sender=owner)
            time.sleep(args.gap)
        latencies: dict[int, float] = {}
        steps: dict[int, dict[str, float]] = {}
        methods: Counter[str] = Counter()
        deadline = time.monotonic() + 300
        while len(latencies) < len(listed_at) and time.monotonic() < deadline:
            supervisor.check()
            with factory() as s:
                rows = s.execute(
                    select(Valuation.token_id, Valuation.valued_at, Valuation.inputs).where(
                        Valuation.contract == punks.address
                    )
                ).all()
            # the backfill's own offers were valued before: only a valuation after the listing
            for tid, at, inputs in sorted(rows, key=lambda r: r[1]):
                t = int(tid)
                if t in listed_at and t not in latencies and at.timestamp() > listed_at[t]:
                    latencies[t] = at.timestamp() - listed_at[t]
                    steps[t] = dict(inputs.get("timings_ms") or {})
                    methods[str(inputs.get("method", "?"))] += 1
            time.sleep(0.05)
        with factory() as s:
            outbox = s.execute(
                select(Outbox.payload, Outbox.created_at, Outbox.sent_at).where(
                    Outbox.task == "value", Outbox.queue == "urgent"
                )
            ).all()
            left = s.scalar(
                select(func.count()).select_from(Token).where(Token.metadata_status != "ok")
            )
        stop.set()
    lat = list(latencies.values())
    print(
        f"{len(lat)}/{len(listed_at)} listings valued in "
        f"{time.monotonic() - started:.1f} s; tokens still unresolved at the end: {left}"
    )
    if lat:
        p50, p95 = percentile(lat, 0.5), percentile(lat, 0.95)
        print(
            f"listing -> stored valuation: p50 {p50:.2f} s, p95 {p95:.2f} s, "
            f"max {max(lat):.2f} s, mean {statistics.fmean(lat):.2f} s "
            f"(p95 / {TARGET_P95_S:.0f} s target = {p95 / TARGET_P95_S:.2f})"
        )
        print_breakdown(latencies, steps, listed_at, outbox)
        in_order = [f"{latencies[t]:.1f}" for t in chosen if t in latencies]
        print("latency in listing order (s): " + " ".join(in_order))
        print("valued by: " + ", ".join(f"{m} x{n}" for m, n in methods.most_common()))
    return Run(label, lat, len(listed_at))


def warm_up(app: Any, factory: Any, contract: str, token_id: int) -> None:
    """One urgent valuation of a token never seen, before the clock starts, as a long-running
    worker would have done: its process has imported the model code and loaded the extractor."""
    start = time.monotonic()
    app.send_task(
        VALUE_TASK,
        kwargs={"chain_id": CHAIN_ID, "contract": contract, "token_id": str(token_id)},
        queue="urgent",
    )
    while time.monotonic() - start < 120:
        with factory() as s:
            done = s.scalar(
                select(func.count())
                .select_from(Valuation)
                .where(Valuation.contract == contract, Valuation.token_id == token_id)
            )
        if done:
            break
        time.sleep(0.1)
    print(f"warm-up valuation stored after {time.monotonic() - start:.1f} s")


def print_breakdown(
    latencies: dict[int, float],
    steps: dict[int, dict[str, float]],
    listed_at: dict[int, float],
    outbox: Sequence[Any],
) -> None:
    """Where the time goes, median and p95 in ms: listing -> outbox row (follower), -> sent
    (dispatcher), -> task start (broker and a free worker thread), then each step of the task."""
    first: dict[int, tuple[float, float | None]] = {}
    for payload, created, sent in outbox:
        t = int(payload["token_id"])
        if t in listed_at and created.timestamp() >= listed_at[t] - 1.0 and t not in first:
            first[t] = (created.timestamp(), sent.timestamp() if sent else None)
    stages: dict[str, list[float]] = {"follower": [], "dispatcher": [], "broker+wait": []}
    for t, (created, sent) in first.items():
        if t not in steps or sent is None:
            continue
        start = listed_at[t] + latencies[t] - sum(steps[t].values()) / 1e3
        stages["follower"].append((created - listed_at[t]) * 1e3)
        stages["dispatcher"].append((sent - created) * 1e3)
        stages["broker+wait"].append((start - sent) * 1e3)
    for n in sorted({n for ms in steps.values() for n in ms}):
        stages[f"task.{n}"] = [ms.get(n, 0.0) for ms in steps.values()]
    print("ms per stage (p50 / p95):")
    for n, xs in stages.items():
        if xs:
            print(f"  {n:<18} {percentile(xs, 0.5):8.0f} {percentile(xs, 0.95):8.0f}")


def print_side_by_side(runs: list[Run]) -> None:
    measured = [r for r in runs if r.latencies]
    if not measured:
        return
    width = max(len(r.broker) for r in measured)
    print("\nlisting -> stored valuation, side by side in this run (seconds):")
    print(f"  {'broker':<{width}}  {'valued':>7}  {'p50':>6}  {'p95':>6}  {'max':>6}  p95/target")
    for r in measured:
        print(
            f"  {r.broker:<{width}}  {len(r.latencies):>3}/{r.listed:<3}  "
            + "  ".join(f"{r.stat(k):6.2f}" for k in ("p50", "p95", "max"))
            + f"  {r.stat('p95') / TARGET_P95_S:10.2f}"
        )
    if len(measured) == 2:
        a, b = measured
        ratios = "  ".join(f"{a.stat(k) / b.stat(k):6.2f}" for k in ("p50", "p95", "max"))
        print(f"  {'ratio (first / second)':<{width}}  {'':>7}  {ratios}")


if __name__ == "__main__":
    main()
