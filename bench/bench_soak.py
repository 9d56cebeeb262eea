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
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psutil
import redis
from sqlalchemy import create_engine, text

from nftwatch.demo.art import generate_collection
from nftwatch.localstack import chaintools
from nftwatch.localstack.embedded import Anvil, EmbeddedPostgres, free_port
from nftwatch.localstack.ipfs_gateway import LocalIpfsGateway
from store.db import upgrade
from tokenmeta.cid import CID, DAG_PB, decode_directory


class IndexedGateway(LocalIpfsGateway):
    """The local gateway with each directory's links decoded once. The soak's metadata is one
    flat directory of every token (``rate * duration`` entries); decoding it on every request
    costs O(entries) of pure Python under the GIL (about 0.1 s at 24,000 entries), so at high
    mint rates the gateway fell behind, clients timed out (broken pipes) and tokens went into
    retry backoff. Blocks are content-addressed and immutable, so the memo is always right."""

    def __init__(self) -> None:
        super().__init__()
        self._links: dict[bytes, dict[str, CID]] = {}

    def resolve_path(self, cid: CID, path: str) -> tuple[CID, bytes] | None:
        found = self.get_block(cid)
        for part in (p for p in path.split("/") if p):
            if found is None or found[0].codec != DAG_PB:
                return None
            links = self._links.get(found[0].digest)
            if links is None:
                links = {link.name: link.cid for link in decode_directory(found[1])}
                self._links[found[0].digest] = links
            child = links.get(part)
            if child is None:
                return None
            found = self.get_block(child)
        return found


def _metric(body: str, name: str) -> float | None:
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


@dataclass
class Sample:
    t: float
    minted: int
    resolved: int
    retry: int
    lag: float
    outbox: float
    queue: float
    rss: dict[str, float]


def _rss_mb(root: psutil.Process) -> dict[str, float]:
    out: dict[str, float] = {}
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
    ap.add_argument("--drain", type=float, default=30.0, help="seconds to watch after minting")
    ap.add_argument(
        "--plain-gateway",
        action="store_true",
        help="the gateway decoding the metadata directory on every request (the old stall)",
    )
    args = ap.parse_args()
    total = int(args.rate * args.duration)
    per_batch = max(1, args.rate // 10)
    work = Path(tempfile.mkdtemp(prefix="nftwatch-soak-"))
    pg = EmbeddedPostgres(work / "pg", persistent=False)
    db_url = pg.start()
    upgrade(db_url)
    node = Anvil()
    node.start()
    gateway = LocalIpfsGateway() if args.plain_gateway else IndexedGateway()
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
        holder = str(list(w3.eth.accounts)[1])
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
        rows: list[Sample] = []
        print(f"soak: {args.rate} mints/s for {args.duration:.0f} s; sample every {args.sample} s")
        print(
            f"{'t':>5} {'minted':>7} {'mint/s':>6} {'resolved':>8} {'res/s':>5} {'behind':>6} "
            f"{'retry':>5} {'queue':>5} {'lag blk':>7} {'outbox':>6}  RSS MB"
        )
        while time.monotonic() - t0 < args.duration + args.drain:
            time.sleep(args.sample)
            body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
            with engine.connect() as c:
                counts: dict[str, int] = dict(
                    c.execute(text("SELECT metadata_status, count(*) FROM tokens GROUP BY 1")).all()
                )
            prev = rows[-1] if rows else Sample(0.0, 0, 0, 0, 0.0, 0.0, 0.0, {})
            row = Sample(
                t=time.monotonic() - t0,
                minted=minted[0],
                resolved=int(counts.get("ok", 0)),
                retry=int(counts.get("retry", 0)),
                lag=_metric(body, "nftwatch_lag_blocks") or 0.0,
                outbox=_metric(body, "nftwatch_outbox_backlog") or 0.0,
                queue=_metric(body, 'nftwatch_queue_depth{queue="resolve"}') or 0.0,
                rss=_rss_mb(root),
            )
            rows.append(row)
            dt_s = max(1e-9, row.t - prev.t)
            rss_s = " ".join(f"{k}={v:.0f}" for k, v in sorted(row.rss.items()))
            print(
                f"{row.t:5.0f} {row.minted:7d} {(row.minted - prev.minted) / dt_s:6.0f} "
                f"{row.resolved:8d} {(row.resolved - prev.resolved) / dt_s:5.0f} "
                f"{row.minted - row.resolved:6d} {row.retry:5d} {row.queue:5.0f} {row.lag:7.0f} "
                f"{row.outbox:6.0f}  {rss_s}",
                flush=True,
            )
            if minted[0] >= total and row.resolved >= minted[0]:
                break
        stop.set()
        during = [r for r in rows if r.t <= args.duration]
        minting = min(rows[-1].t, args.duration)
        print(f"mints achieved: {minted[0]} ({minted[0] / minting:.0f}/s of {args.rate}/s asked)")
        last = rows[-1]
        print(
            f"resolved: {during[-1].resolved} while minting ({during[-1].resolved / minting:.0f}/s)"
            f", {last.resolved} of {minted[0]} at {last.t:.0f} s; {last.retry} waiting to retry"
        )
        for name in ("run", "resolve", "embed"):
            series = [r.rss.get(name, 0.0) for r in during]
            if series:
                print(
                    f"RSS {name}: first {series[0]:.0f} MB, peak {max(series):.0f} MB, "
                    f"last {series[-1]:.0f} MB; bounded: {_bounded(series, 0.15)}"
                )
        lags = [r.lag for r in during]
        print(
            f"lag blocks: peak {max(lags):.0f}, last {lags[-1]:.0f}; bounded: {_bounded(lags, 0.5)}"
        )
        behind = [float(r.minted - r.resolved) for r in during]
        print(
            f"tokens minted but not resolved: peak {max(behind):.0f}, last {behind[-1]:.0f}; "
            f"bounded: {_bounded(behind, 0.1)}"
        )
        outbox = [r.outbox for r in during]
        print(f"outbox backlog: peak {max(outbox):.0f}; bounded: {_bounded(outbox, 0.5)}")
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
