"""The desk API under load: req/s and p50/p95/p99 latency at 1, 10 and 50 concurrent clients on
the token, similar, valuation and stats routes, served as `nftwatch api` serves them now
(worker processes, pools sized to their threads, the guarded protocol) beside the previous way
(one process, 40 threads sharing a pool of 5+5 connections, uvicorn's h11), in one run, on the
same embedded Postgres and data.

Built for a noisy shared machine: both servers run side by side and every measurement is
interleaved (each round walks every route through 1, 10 and 50 clients, or 50, 10, 1, both
sides at each level, the side that goes first alternating), each after a warm-up. Each figure
is the median over the rounds; the ratios (50/10, now/previous) are the medians of each round's
own, whose two terms were measured seconds apart, so that drift in the machine's other load
cancels. Beside each: the CPU the server's processes and Postgres spent per request (the
figure noise moves least: more CPU per request at 50 clients than at 10 is a real scaling cost,
the same CPU with fewer req/s is the machine's other load) and the cores the rest of the
machine kept busy meanwhile.

The clients are closed-loop keep-alive HTTP/1.1 connections on raw asyncio streams, in load
processes of their own (``--load-procs``), so the bench's bookkeeping never runs on their loop.

    python bench/bench_api.py [--rounds 5] [--seconds 2.5] [--warm 1] [--workers 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import hashlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

import httpx
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nftwatch.api.serve import ServeConfig  # noqa: E402
from nftwatch.localstack.embedded import EmbeddedPostgres, free_port  # noqa: E402
from store import tokens  # noqa: E402
from store.db import make_engine, make_sessionmaker, upgrade  # noqa: E402
from store.vectors import ensure_vector_index, store_embeddings  # noqa: E402
from tests.support.seed import add_sale, add_token, add_valuation  # noqa: E402

KEY = "bench-key-0123456789abcdef"
CHAIN = 1
CONTRACT = "0x" + "ab" * 20
EXTRACTOR = "bench-256d"
DIM = 256
CLIENTS = (1, 10, 50)
RUNNER = """
import sys
from nftwatch.api.serve import ServeConfig, serve
serve(ServeConfig.from_env(sys.argv[1]), "127.0.0.1", int(sys.argv[2]))
"""


def seed(url: str, count: int) -> None:
    """``count`` tokens with an image, a vector and a valuation each; every fourth sold in the
    last 25 days. The rows are the API tests' (tests/support/seed.py) with the bench's values."""
    rng = np.random.default_rng(7)
    engine = make_engine(url)
    now = time.time()
    with make_sessionmaker(engine).begin() as s:
        tokens.upsert_collection(s, CHAIN, CONTRACT, name="Bench")
        embeddings = []
        for i in range(count):
            sha = hashlib.sha256(f"bench {i}".encode()).hexdigest()
            add_token(
                s,
                i,
                CONTRACT,
                chain_id=CHAIN,
                name=f"Bench #{i}",
                image=b"\x89PNG" + i.to_bytes(4, "big"),
                image_sha256=sha,
                size=(1, 1),
                attributes=[{"trait_type": "Hat", "value": str(i % 7)}],
                image_uri=None,
            )
            embeddings.append((sha, rng.standard_normal(DIM).astype(np.float32)))
            if i % 4 == 0:
                at = dt.datetime.fromtimestamp(now - 86400 * (i % 25), tz=dt.UTC)
                add_sale(
                    s,
                    i,
                    1 + i % 10,
                    at,
                    i,
                    contract=CONTRACT,
                    chain_id=CHAIN,
                    first_block=1000,
                    tx_offset=10**6,
                    log_index=0,
                    marketplace="bench",
                )
            add_valuation(
                s,
                i,
                2.0,
                contract=CONTRACT,
                chain_id=CHAIN,
                model_version="bench",
                p_liquid=0.5,
                low=1.5,
                high=2.5,
                confidence=0.5,
                explanation={"method": "bench"},
            )
        store_embeddings(s, EXTRACTOR, "w", "p", embeddings)
    ensure_vector_index(engine, EXTRACTOR, DIM)
    engine.dispose()


# ------------------------------------------------------------------ the load processes


async def _client(
    port: int, paths: list[str], warm: float, until: float, lat: list[float], errs: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    rng = random.Random(os.getpid() ^ id(lat) ^ id(reader))
    try:
        while (sent := time.monotonic()) < until:
            path = rng.choice(paths)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\nX-API-Key: {KEY}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            done = time.monotonic()
            # throughput is what completes within the window, whenever it was sent
            if warm <= done < until:
                lat.append(done - sent)
                if status != 200:
                    errs.append(status)
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        errs.append(-1)
        print(f"  connection lost: {exc!r}", file=sys.stderr)
    finally:
        writer.close()


async def _load(job: dict[str, Any]) -> dict[str, Any]:
    # the window is on the clock every process reads alike (CLOCK_MONOTONIC), so that the bench
    # can read the CPU counters at its two ends
    warm, until = job["warm_at"], job["until"]
    lat: list[float] = []
    errs: list[int] = []
    await asyncio.gather(
        *(_client(job["port"], job["paths"], warm, until, lat, errs) for _ in range(job["clients"]))
    )
    return {"lat_ms": [round(x * 1e3, 3) for x in lat], "errors": len(errs)}


def load_process() -> None:
    """One load process: a job per line on stdin (port, paths, clients, warm-up, seconds), its
    latencies as a line on stdout."""
    for line in sys.stdin:
        print(json.dumps(asyncio.run(_load(json.loads(line)))), flush=True)


class LoadProcs:
    def __init__(self, count: int) -> None:
        self.procs = [
            subprocess.Popen(
                [sys.executable, __file__, "--load-process"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            )
            for _ in range(count)
        ]

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def start(
        self, port: int, paths: list[str], clients: int, warm_at: float, until: float
    ) -> None:
        """``clients`` connections spread over the load processes, counting what completes
        between ``warm_at`` and ``until``."""
        n = len(self.procs)
        shares = [clients // n + (i < clients % n) for i in range(n)]
        self.busy = [p for p, k in zip(self.procs, shares, strict=True) if k]
        for p, k in zip(self.procs, shares, strict=True):
            if k:
                job = {"port": port, "paths": paths, "clients": k, "warm_at": warm_at}
                assert p.stdin is not None
                p.stdin.write(json.dumps({**job, "until": until}) + "\n")
                p.stdin.flush()

    def collect(self) -> tuple[list[float], int]:
        lat: list[float] = []
        errors = 0
        for p in self.busy:
            assert p.stdout is not None
            answer = json.loads(p.stdout.readline())
            lat += answer["lat_ms"]
            errors += answer["errors"]
        return lat, errors

    def close(self) -> None:
        for p in self.procs:
            assert p.stdin is not None
            p.stdin.close()
            p.wait(timeout=30)


# ------------------------------------------------------------------ servers and CPU accounting


class Server:
    def __init__(self, cfg: ServeConfig) -> None:
        self.port = free_port()
        self.log: IO[str] = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-c", RUNNER, cfg.to_env(), str(self.port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        deadline = time.monotonic() + 180  # a loaded machine starts slowly
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(Path(self.log.name).read_text()[-2000:])
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.2)

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        text = Path(self.log.name).read_text()
        os.unlink(self.log.name)
        return text


def _tree_cpu(*roots: int) -> dict[int, float]:
    """CPU seconds of processes and their descendants, by pid: each one's own (user + system)
    and that of its children that have exited (a pool's overflow connection is a Postgres
    backend that lives for one request, counted in the postmaster once it is reaped)."""
    procs = []
    for root in roots:
        try:
            top = psutil.Process(root)
            procs += [top, *top.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    out = {}
    for p in procs:
        try:
            t = p.cpu_times()
            out[p.pid] = t.user + t.system + t.children_user + t.children_system
        except psutil.NoSuchProcess:
            pass
    return out


def _deltas(before: dict[int, float], after: dict[int, float]) -> dict[int, float]:
    # a process born during the measurement (a new Postgres backend) counts in full
    return {pid: t - before.get(pid, 0.0) for pid, t in after.items()}


def _spent(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(_deltas(before, after).values())


def _busy_cores_s() -> float:
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().split()[0])


@dataclasses.dataclass
class Round:
    rps: float
    p50: float
    p95: float
    p99: float
    errors: int
    server_ms: float  # server processes' CPU per request
    pg_ms: float  # Postgres's CPU per request
    load_ms: float  # the load processes' CPU per request
    others: float  # cores the rest of the machine kept busy meanwhile
    busiest: float  # the busiest server process's share of the server's CPU (1.0: one process)


def measure(
    load: LoadProcs,
    server: Server,
    pg_pid: int,
    paths: list[str],
    clients: int,
    warm: float,
    seconds: float,
) -> Round:
    """One level on one side: CPU counters read at the measured window's two ends."""
    # "load": the load processes and this one (which sleeps), not its other children
    roots = {"server": [server.process.pid], "pg": [pg_pid], "load": load.pids}
    warm_at = time.monotonic() + 0.1 + warm  # the jobs reach the load processes first
    until = warm_at + seconds
    load.start(server.port, paths, clients, warm_at, until)
    time.sleep(max(warm_at - time.monotonic(), 0))
    before = {k: _tree_cpu(*pids) for k, pids in roots.items()}
    before["load"][os.getpid()] = sum(os.times()[:2])
    busy0, t0 = _busy_cores_s(), time.monotonic()
    time.sleep(max(until - time.monotonic(), 0))
    after = {k: _tree_cpu(*pids) for k, pids in roots.items()}
    after["load"][os.getpid()] = sum(os.times()[:2])
    busy1, t1 = _busy_cores_s(), time.monotonic()
    lat, errors = load.collect()
    cpu = {k: _spent(before[k], after[k]) for k in roots}
    per_process = list(_deltas(before["server"], after["server"]).values())
    served = max(len(lat), 1)
    ms = np.array(lat) if lat else np.array([0.0])
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return Round(
        rps=len(lat) / seconds,
        p50=float(p50),
        p95=float(p95),
        p99=float(p99),
        errors=errors,
        server_ms=1e3 * cpu["server"] / served,
        pg_ms=1e3 * cpu["pg"] / served,
        load_ms=1e3 * cpu["load"] / served,
        others=max(busy1 - busy0 - sum(cpu.values()), 0.0) / (t1 - t0),
        busiest=max(per_process) / max(cpu["server"], 1e-9) if per_process else 1.0,
    )


# ------------------------------------------------------------------ the run


def routes(count: int) -> dict[str, list[str]]:
    ids = range(0, count, max(1, count // 200))
    base = f"/v1/tokens/{CHAIN}/{CONTRACT}"
    return {
        "token": [f"{base}/{i}" for i in ids],
        "similar": [f"{base}/{i}/similar?k=10&same_collection=true" for i in ids],
        "valuation": [f"/v1/valuations/{CHAIN}/{CONTRACT}/{i}" for i in ids],
        "stats": [f"/v1/collections/{CHAIN}/{CONTRACT}/stats"],
    }


def median_round(rounds: Sequence[Round]) -> Round:
    fields = [f.name for f in dataclasses.fields(Round)]
    values = {f: statistics.median(getattr(r, f) for r in rounds) for f in fields}
    values["errors"] = sum(r.errors for r in rounds)
    return Round(**values)


def report(
    results: dict[tuple[str, str, int], list[Round]],
    names: Iterable[str],
    sides: dict[str, ServeConfig],
    args: argparse.Namespace,
) -> None:
    now = sides["now"]
    print(
        f"bench_api: {args.tokens} tokens, {args.rounds} rounds x {args.seconds:g} s per level "
        f"(after {args.warm:g} s warm-up), {os.cpu_count()} CPUs, {args.load_procs} load "
        f"process(es); previous = 1 process x 40 threads, pool 5+5, h11; now = "
        f"{now.workers} processes x {now.threads} threads, pool {now.threads}+2 each, guarded h11"
    )
    print("medians over the rounds; latencies in ms; cpu = server + Postgres CPU ms per request")
    head = (
        f"{'route':<10}{'clients':>7} | {'prev req/s':>10}{'p50':>7}{'p95':>7}{'p99':>7}"
        f"{'cpu':>10} | {'now req/s':>9}{'p50':>7}{'p95':>7}{'p99':>7}{'cpu':>10}"
        f" | {'now/prev':>8}{'others':>7}{'errors':>8}"
    )
    print(head)
    print("-" * len(head))
    for route in names:
        for n in CLIENTS:
            a = median_round(results["previous", route, n])
            b = median_round(results["now", route, n])
            ratios = [
                x.rps / max(y.rps, 1e-9)
                for x, y in zip(
                    results["now", route, n], results["previous", route, n], strict=True
                )
            ]
            print(
                f"{route:<10}{n:>7} | {a.rps:>10.0f}{a.p50:>7.1f}{a.p95:>7.1f}{a.p99:>7.0f}"
                f"{f'{a.server_ms:.1f}+{a.pg_ms:.1f}':>10}"
                f" | {b.rps:>9.0f}{b.p50:>7.1f}{b.p95:>7.1f}{b.p99:>7.0f}"
                f"{f'{b.server_ms:.1f}+{b.pg_ms:.1f}':>10}"
                f" | {statistics.median(ratios):>8.2f}{(a.others + b.others) / 2:>7.2f}"
                f"{f'{a.errors}/{b.errors}':>8}"
            )
    print(
        "now/prev: median of the rounds' ratios; others: cores busy outside the bench "
        "(mean of both sides); errors: non-200 or lost connections, previous/now, all rounds"
    )
    load_ms = statistics.median(r.load_ms for rs in results.values() for r in rs)
    print(f"load processes: {load_ms:.2f} CPU ms per request (median)")
    for side in sides:
        for route in names:
            r10, r50 = results[side, route, 10], results[side, route, 50]
            per_round = [b.rps / max(a.rps, 1e-9) for a, b in zip(r10, r50, strict=True)]
            ratio = statistics.median(per_round)
            m10, m50 = median_round(r10), median_round(r50)
            cpu10, cpu50 = m10.server_ms + m10.pg_ms, m50.server_ms + m50.pg_ms
            verdict = "holds" if ratio >= 1.0 else "FALLS"
            print(
                f"{side:>8}, {route:<9}: 50/10 = {ratio:.2f} ({verdict}; rounds "
                f"{' '.join(f'{x:.2f}' for x in per_round)}), {m50.rps:.0f} vs {m10.rps:.0f} "
                f"req/s; cpu/request {cpu50:.2f} vs {cpu10:.2f} ms; p99 at 50: {m50.p99:.0f} ms "
                f"(50 closed-loop clients queue {50e3 / max(m50.rps, 1e-9):.0f} ms on average)"
            )
            if sides[side].workers > 1:
                print(
                    "          busiest process's share of the server CPU, 10 -> 50 clients: "
                    + " ".join(
                        f"{a.busiest:.2f}->{b.busiest:.2f}" for a, b in zip(r10, r50, strict=True)
                    )
                )
    _split_effect(results, names, sides)


def _split_effect(
    results: dict[tuple[str, str, int], list[Round]],
    names: Iterable[str],
    sides: dict[str, ServeConfig],
) -> None:
    """Does an uneven split of the connections between the worker processes move the 50/10
    ratio? Over every round of every route: the correlation of log(50/10) with the busiest
    process's share at 10 clients minus that at 50."""
    for side, cfg in sides.items():
        if cfg.workers < 2:
            continue
        xs, ys = [], []
        for route in names:
            for a, b in zip(results[side, route, 10], results[side, route, 50], strict=True):
                xs.append(a.busiest - b.busiest)
                ys.append(float(np.log(max(b.rps, 1e-9) / max(a.rps, 1e-9))))
        if len(xs) > 2 and np.std(xs) > 0 and np.std(ys) > 0:
            r = float(np.corrcoef(xs, ys)[0, 1])
            print(
                f"{side:>8}: correlation of log(50/10) with the busiest share at 10 minus at 50, "
                f"over {len(xs)} rounds: {r:+.2f}"
            )


def interleave(
    load: LoadProcs,
    servers: dict[str, Server],
    pg_pid: int,
    paths: dict[str, list[str]],
    rounds: int,
    warm: float,
    seconds: float,
) -> dict[tuple[str, str, int], list[Round]]:
    """Every (side, route, level) once a round, a route's levels one after another (so that its
    10 and 50 clients are measured seconds apart, and their ratio sees the same machine), the
    sides side by side within a level; which level and which side go first alternate."""
    results: dict[tuple[str, str, int], list[Round]] = {
        (s, r, n): [] for s in servers for r in paths for n in CLIENTS
    }
    order = list(servers)
    # every route at the top level once, unrecorded: pools opened, plans and caches warm
    for side in order:
        for route in paths:
            measure(load, servers[side], pg_pid, paths[route], CLIENTS[-1], 1.0, 0.5)
    for i in range(rounds):
        turn = order[i % len(order) :] + order[: i % len(order)]
        levels = CLIENTS if i % 2 == 0 else CLIENTS[::-1]
        for route in paths:
            for n in levels:
                for side in turn:
                    results[side, route, n].append(
                        measure(load, servers[side], pg_pid, paths[route], n, warm, seconds)
                    )
        print(f"  round {i + 1}/{rounds} done", file=sys.stderr, flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--seconds", type=float, default=2.5, help="measured per level a round")
    parser.add_argument("--warm", type=float, default=1.0, help="warm-up before each")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--threads",
        type=int,
        default=ServeConfig.threads,
        help="per process (nftwatch api's default)",
    )
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--load-procs", type=int, default=1)
    parser.add_argument("--routes", default="token,similar,valuation,stats")
    parser.add_argument("--load-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_process:
        load_process()
        return
    names = [r for r in args.routes.split(",") if r]
    paths = routes(args.tokens)

    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", persistent=False)
        url = pg.start()
        servers: dict[str, Server] = {}
        load = LoadProcs(args.load_procs)
        logs = {}
        try:
            upgrade(url)
            seed(url, args.tokens)
            pg_pid = postmaster_pid(Path(tmp) / "pg")
            base = ServeConfig(url, ServeConfig.hashes_of([KEY]), log_level="warning")
            sides = {
                "previous": dataclasses.replace(
                    base,
                    workers=1,
                    threads=40,
                    pool_size=5,
                    max_overflow=5,
                    protocol="h11",
                    keep_alive_s=5,
                    limit_concurrency=None,
                ),
                "now": dataclasses.replace(base, workers=args.workers, threads=args.threads),
            }
            for side, cfg in sides.items():
                servers[side] = Server(cfg)
            results = interleave(
                load,
                servers,
                pg_pid,
                {r: paths[r] for r in names},
                args.rounds,
                args.warm,
                args.seconds,
            )
        finally:
            load.close()
            for side, server in servers.items():
                logs[side] = server.stop()
            pg.stop()

    report(results, names, sides, args)
    for side, text in logs.items():
        if "Traceback" in text:
            print(f"{side}: the server logged a traceback:\n{text[-2000:]}")


if __name__ == "__main__":
    main()
