"""The desk API under load: req/s and p50/p95/p99 latency at 1, 10 and 50 concurrent clients on
the token, similar, valuation and stats routes, served as `nftwatch api` serves them now
(worker processes, pools sized to their threads, the guarded protocol) beside the previous way
(one process, 40 threads sharing a pool of 5+5 connections, uvicorn's h11), in one run, on the
same embedded Postgres and data.

The clients are closed-loop keep-alive HTTP/1.1 connections on raw asyncio streams (a few
microseconds of CPU per request, so the client takes little of the machine from the server).

    python bench/bench_api.py [--seconds 4] [--workers 2] [--threads 4] [--tokens 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import hashlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

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


class Server:
    def __init__(self, cfg: ServeConfig) -> None:
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-c", RUNNER, cfg.to_env(), str(self.port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        deadline = time.monotonic() + 60
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


@dataclasses.dataclass
class Result:
    rps: float
    p50: float
    p95: float
    p99: float
    errors: int


async def _client(
    port: int, paths: list[str], until: float, warm: float, lat: list[float], errs: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    rng = random.Random(id(lat) ^ id(reader))
    try:
        while (now := time.perf_counter()) < until:
            path = rng.choice(paths)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\nX-API-Key: {KEY}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            done = time.perf_counter()
            if now >= warm:
                lat.append(done - now)
                if status != 200:
                    errs.append(status)
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        errs.append(-1)
        print(f"  connection lost: {exc!r}", file=sys.stderr)
    finally:
        writer.close()


async def _load(port: int, paths: list[str], clients: int, seconds: float) -> Result:
    start = time.perf_counter()
    warm, until = start + 0.5, start + 0.5 + seconds
    lat: list[float] = []
    errs: list[int] = []
    await asyncio.gather(*(_client(port, paths, until, warm, lat, errs) for _ in range(clients)))
    ms = np.array(lat) * 1e3 if lat else np.array([0.0])
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return Result(len(lat) / seconds, float(p50), float(p95), float(p99), len(errs))


def routes(tokens: int) -> dict[str, list[str]]:
    ids = range(0, tokens, max(1, tokens // 200))
    base = f"/v1/tokens/{CHAIN}/{CONTRACT}"
    return {
        "token": [f"{base}/{i}" for i in ids],
        "similar": [f"{base}/{i}/similar?k=10&same_collection=true" for i in ids],
        "valuation": [f"/v1/valuations/{CHAIN}/{CONTRACT}/{i}" for i in ids],
        "stats": [f"/v1/collections/{CHAIN}/{CONTRACT}/stats"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="measured per level")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=2000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", persistent=False)
        url = pg.start()
        try:
            upgrade(url)
            seed(url, args.tokens)
            common = {
                "database_url": url,
                "key_hashes": ServeConfig.hashes_of([KEY]),
                "log_level": "warning",
            }
            sides = {
                "previous": ServeConfig(
                    **common,
                    workers=1,
                    threads=40,
                    pool_size=5,
                    max_overflow=5,
                    protocol="h11",
                    keep_alive_s=5,
                    limit_concurrency=None,
                ),
                "now": ServeConfig(**common, workers=args.workers, threads=args.threads),
            }
            results: dict[tuple[str, str, int], Result] = {}
            logs = {}
            for side, cfg in sides.items():
                server = Server(cfg)
                try:
                    for route, paths in routes(args.tokens).items():
                        for n in CLIENTS:
                            results[side, route, n] = asyncio.run(
                                _load(server.port, paths, n, args.seconds)
                            )
                finally:
                    logs[side] = server.stop()
        finally:
            pg.stop()

    now_cfg = sides["now"]
    print(
        f"bench_api: {args.tokens} tokens, {args.seconds:g} s per level, {os.cpu_count()} CPUs; "
        f"previous = 1 process x 40 threads, pool 5+5, h11; now = {now_cfg.workers} processes "
        f"x {now_cfg.threads} threads, pool {now_cfg.threads}+2 each, guarded h11"
    )
    head = (
        f"{'route':<10}{'clients':>8} | {'previous req/s':>14}{'p50':>8}{'p95':>8}{'p99':>8}"
        f" | {'now req/s':>10}{'p50':>8}{'p95':>8}{'p99':>8} | {'now/prev':>8}{'errors':>8}"
    )
    print(head)
    print("-" * len(head))
    for route in routes(args.tokens):
        for n in CLIENTS:
            a, b = results["previous", route, n], results["now", route, n]
            print(
                f"{route:<10}{n:>8} | {a.rps:>14.0f}{a.p50:>8.1f}{a.p95:>8.1f}{a.p99:>8.1f}"
                f" | {b.rps:>10.0f}{b.p50:>8.1f}{b.p95:>8.1f}{b.p99:>8.1f}"
                f" | {b.rps / max(a.rps, 1e-9):>8.2f}{f'{a.errors}/{b.errors}':>8}"
            )
    print("latencies in ms; errors: non-200 or lost connections, previous/now")
    for route in routes(args.tokens):
        r10, r50 = results["now", route, 10], results["now", route, 50]
        verdict = "holds" if r50.rps >= r10.rps else "FALLS"
        print(
            f"now, {route}: 50 clients {r50.rps:.0f} req/s vs 10 clients {r10.rps:.0f} "
            f"({verdict}); p99 at 50: {r50.p99:.0f} ms"
        )
    for side, text in logs.items():
        if "Traceback" in text:
            print(f"{side}: the server logged a traceback:\n{text[-2000:]}")


if __name__ == "__main__":
    main()
