"""Soak benchmark: sustained mints on anvil while a real ``nftwatch run`` (follower, dispatcher,
resolve and embed workers) ingests, resolves and embeds them; samples the resident memory of
every process and the follower's lag over time and says whether both stay bounded.

    python bench/bench_soak.py [--rate 200] [--duration 120] [--redis-url URL]

Default: 200 mints/s for 2 minutes (the target soak is 10 minutes: --duration 600). Mints go in
batches of ``rate / 10`` tokens every 100 ms; every token's metadata points at one of a few
images on a local IPFS gateway, so embedding work is small and the load is the listener, the
outbox and the resolve path. Starts its own embedded Postgres and anvil; the broker is the
Redis at --redis-url under a fresh key prefix (deleted afterwards).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psutil
import redis
from sqlalchemy import create_engine, text

from nftwatch import chaintools
from nftwatch.demo_art import generate_collection
from nftwatch.embedded import Anvil, EmbeddedPostgres, free_port
from nftwatch.ipfs_gateway import LocalIpfsGateway
from store.db import upgrade


def _metric(body: str, name: str) -> float | None:
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def _rss_mb(root: psutil.Process) -> dict[str, float]:
    out = {}
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return out
    for p in procs:
        try:
            args = " ".join(p.cmdline())
            name = "run" if p.pid == root.pid else ("embed" if "embed" in args else "resolve")
            out[name] = p.memory_info().rss / 2**20
        except psutil.NoSuchProcess:
            pass
    return out


def _bounded(values: list[float], slack: float) -> bool:
    """The last third's peak is within ``slack`` of the middle third's peak (after warm-up)."""
    n = len(values)
    if n < 6:
        return True
    mid, last = values[n // 3 : 2 * n // 3], values[2 * n // 3 :]
    return max(last) <= max(mid) * (1 + slack) + 1.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=200, help="mints per second")
    ap.add_argument("--duration", type=float, default=120.0, help="seconds of minting")
    ap.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = ap.parse_args()
    total = int(args.rate * args.duration)
    per_batch = max(1, args.rate // 10)
    work = Path(tempfile.mkdtemp(prefix="nftwatch-soak-"))
    pg = EmbeddedPostgres(work / "pg", persistent=False)
    db_url = pg.start()
    upgrade(db_url)
    node = Anvil()
    node.start()
    gateway = LocalIpfsGateway()
    gateway.start()
    prefix = f"soak-{uuid.uuid4().hex[:8]}:"
    svc: subprocess.Popen[bytes] | None = None
    try:
        art = generate_collection("doodles", 8, 3)
        images = gateway.add_directory({f"{i}.png": t.image_png for i, t in enumerate(art)})
        meta = {
            str(i): json.dumps(
                {"name": f"#{i}", "image": f"ipfs://{images}/{i % 8}.png", "attributes": []}
            ).encode()
            for i in range(total + per_batch)
        }
        base = f"ipfs://{gateway.add_directory(meta)}/"
        w3 = chaintools.connect(node.url)
        nft = chaintools.deploy(w3, "DemoNFT", "Soak", "SOAK")
        chaintools.set_base_uri(w3, nft, base)
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "CELERY_BROKER_URL": args.redis_url,
            "NFTWATCH_REDIS_PREFIX": prefix,
            "ETH_RPC_URL": node.url,
            "NFTWATCH_CHAIN_ID": "31337",
            "NFTWATCH_COLLECTIONS": str(nft.address).lower(),
            "IPFS_GATEWAYS": gateway.base_url,
            "NFTWATCH_ALLOW_HOSTS": gateway.netloc,
            "NFTWATCH_EXTRACTORS": "gradient-v1",
            "NFTWATCH_DEVICE": "cpu",
            "NFTWATCH_DATA_DIR": str(work / "data"),
            "NFTWATCH_METRICS_PORT": str(port),
            "NFTWATCH_LOG_LEVEL": "WARNING",
        }
        with (work / "run.log").open("ab") as log:
            svc = subprocess.Popen(
                [sys.executable, "-m", "nftwatch.cli", "run", "--interval", "0.5"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        root = psutil.Process(svc.pid)
        time.sleep(8)  # workers up
        holder = str(w3.eth.accounts[1])
        minted = [0]
        stop = threading.Event()

        def mint() -> None:
            next_at = time.monotonic()
            while not stop.is_set() and time.monotonic() - t0 < args.duration:
                ids = list(range(minted[0], minted[0] + per_batch))
                chaintools.mint_batch(w3, nft, holder, ids)
                minted[0] += per_batch
                next_at += 0.1
                time.sleep(max(0.0, next_at - time.monotonic()))

        engine = create_engine(db_url)
        t0 = time.monotonic()
        minter = threading.Thread(target=mint, daemon=True)
        minter.start()
        rows = []
        print(f"soak: {args.rate} mints/s for {args.duration:.0f} s; sample every {args.sample} s")
        print(f"{'t':>5} {'minted':>7} {'resolved':>8} {'lag blk':>7} {'outbox':>6}  RSS MB")
        while time.monotonic() - t0 < args.duration + 30:
            time.sleep(args.sample)
            body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
            with engine.connect() as c:
                ok = c.execute(
                    text("SELECT count(*) FROM tokens WHERE metadata_status = 'ok'")
                ).scalar()
            rss = _rss_mb(root)
            lag = _metric(body, "nftwatch_lag_blocks") or 0.0
            backlog = _metric(body, "nftwatch_outbox_backlog") or 0.0
            t = time.monotonic() - t0
            rows.append((t, minted[0], ok, lag, backlog, rss))
            rss_s = " ".join(f"{k}={v:.0f}" for k, v in sorted(rss.items()))
            print(f"{t:5.0f} {minted[0]:7d} {ok:8d} {lag:7.0f} {backlog:6.0f}  {rss_s}")
            if minted[0] >= total and ok >= total:
                break
        stop.set()
        elapsed = time.monotonic() - t0
        achieved = minted[0] / min(elapsed, args.duration + 1e-9)
        during = [r for r in rows if r[0] <= args.duration]
        print(f"mints achieved: {minted[0]} ({achieved:.0f}/s of {args.rate}/s asked)")
        print(f"resolved at the end: {rows[-1][2]} of {minted[0]}")
        for name in ("run", "resolve", "embed"):
            series = [r[5].get(name, 0.0) for r in during]
            if series:
                print(
                    f"RSS {name}: first {series[0]:.0f} MB, peak {max(series):.0f} MB, "
                    f"last {series[-1]:.0f} MB; bounded: {_bounded(series, 0.15)}"
                )
        lags = [r[3] for r in during]
        if lags:
            print(
                f"lag blocks: peak {max(lags):.0f}, last {lags[-1]:.0f}; bounded: "
                f"{_bounded(lags, 0.5)}"
            )
        backlogs = [r[4] for r in during]
        if backlogs:
            print(f"outbox backlog: peak {max(backlogs):.0f}; bounded: {_bounded(backlogs, 0.5)}")
        engine.dispose()
    finally:
        if svc is not None and svc.poll() is None:
            svc.send_signal(signal.SIGTERM)
            try:
                svc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(svc.pid, signal.SIGKILL)
        client = redis.Redis.from_url(args.redis_url)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        gateway.stop()
        node.stop()
        pg.stop()


if __name__ == "__main__":
    main()
