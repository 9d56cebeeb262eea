"""Fault tests: a real ``nftwatch run`` (follower, dispatcher and supervised Celery workers as
processes) on anvil, a local IPFS gateway, Postgres and Redis, all on loopback, with components
killed or taken away during the run. Each run must end with the database an uninterrupted run
produces: every token resolved once with its on-chain owner and its published metadata, every
mint once, every image stored once and embedded once per extractor with the vector computed
directly from the published image."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session
from web3 import Web3

from nftvision.extractors import get_extractor
from nftwatch.demo import content, world
from nftwatch.localstack import chaintools
from nftwatch.localstack.embedded import Anvil, EmbeddedPostgres, free_port
from nftwatch.localstack.ipfs_gateway import LocalIpfsGateway
from store.db import upgrade
from store.models import Block, Embedding, Outbox, Transfer
from store.vectors import as_floats
from tests.support.db import scalar
from tests.support.workers import assert_tokens_as_published, published
from tokenmeta.media import decode_media

EXTRACTOR = "gradient-v1"
PER_COLLECTION = 4
CHAIN_ID = 31337
DONE_TIMEOUT = 75.0

pytestmark = pytest.mark.timeout(180)


@dataclass
class World:
    anvil: Anvil
    gateway: LocalIpfsGateway
    w3: Any
    deployed: list[world.Deployed]
    holders: list[str]
    rng: random.Random = field(default_factory=lambda: random.Random(11))

    @property
    def tokens(self) -> int:
        return sum(len(d.collection.tokens) for d in self.deployed)

    def mint(self, which: list[world.Deployed] | None = None) -> None:
        world.mint_all(self.w3, which or self.deployed, self.holders, self.rng)


@pytest.fixture
def gateway_port() -> int:
    return free_port()  # a port of its own: a test restarts the gateway on it


def make_scene(
    gateway: LocalIpfsGateway,
    node: Anvil,
    per_collection: int = PER_COLLECTION,
    picked: slice = slice(1, 3),
) -> Iterator[World]:
    """The demo collections ``picked`` (of ``per_collection`` tokens each) published on the
    gateway and deployed on ``node``, not yet minted; the node is stopped after."""
    node.start()
    try:
        collections = content.build_collections(per_collection, seed=5)[picked]
        uris = [content.publish(gateway, c) for c in collections]
        w3 = chaintools.connect(node.url)
        deployed = world.deploy(w3, collections, uris)
        holders = [str(a) for a in list(w3.eth.accounts)[1:5]]
        yield World(node, gateway, w3, deployed, holders)
    finally:
        node.stop()


@pytest.fixture
def scene(gateway: LocalIpfsGateway) -> Iterator[World]:
    """Two collections of four tokens, published on the gateway and deployed, not yet minted."""
    yield from make_scene(gateway, Anvil(chain_id=CHAIN_ID))


@pytest.fixture
def stateful_scene(gateway: LocalIpfsGateway, tmp_path: Path) -> Iterator[World]:
    """The same scene on an anvil that writes its chain to a file when stopped and reads it back
    when started again (same port): a node that goes away and returns with its blocks."""
    state = tmp_path / "anvil-state.json"
    yield from make_scene(gateway, Anvil(chain_id=CHAIN_ID, extra_args=("--state", str(state))))


class Service:
    """``nftwatch run`` as a subprocess in its own session, with its log kept for failures."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.seen_children: set[int] = set()

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "nftwatch.cli", "run", "--interval", "0.25"],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def workers(self) -> dict[str, psutil.Process]:
        """The worker processes by name (resolve, embed), also remembered for the cleanup."""
        assert self.process is not None
        out = {}
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in psutil.Process(self.process.pid).children(recursive=True):
                self.seen_children.add(child.pid)
                with contextlib.suppress(psutil.NoSuchProcess):
                    args = " ".join(child.cmdline())
                    if "--queues" in args:
                        out["embed" if "embed" in args.split("--queues")[1][:16] else "resolve"] = (
                            child
                        )
        return out

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.workers()
        self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def alive_children(self, timeout: float = 20.0) -> list[int]:
        """Remembered children still running after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            alive = [
                p
                for p in self.seen_children
                if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
            ]
            if not alive or time.monotonic() > deadline:
                return alive
            time.sleep(0.2)

    def kill_all(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.signal(signal.SIGKILL)
            self.process.wait()
        for pid in self.alive_children(timeout=10):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for s in started:
        s.kill_all()


def service_env(
    scene: World, db_url: str, broker_url: str, prefix: str, tmp_path: Path
) -> dict[str, str]:
    return {
        "DATABASE_URL": db_url,
        "CELERY_BROKER_URL": broker_url,
        "NFTWATCH_REDIS_PREFIX": f"{prefix}{uuid.uuid4().hex[:6]}:",
        "ETH_RPC_URL": scene.anvil.url,
        "NFTWATCH_CHAIN_ID": str(CHAIN_ID),
        "NFTWATCH_COLLECTIONS": ",".join(d.address for d in scene.deployed),
        "IPFS_GATEWAYS": scene.gateway.base_url,
        "NFTWATCH_ALLOW_HOSTS": scene.gateway.netloc,
        "NFTWATCH_EXTRACTORS": EXTRACTOR,
        "NFTWATCH_DEVICE": "cpu",
        "NFTWATCH_DATA_DIR": str(tmp_path / "data"),
        "NFTWATCH_METRICS_PORT": str(free_port()),
        "NFTWATCH_RESEND_AFTER": "6",
        "NFTWATCH_LOG_LEVEL": "INFO",
    }


def start(services: list[Service], env: dict[str, str], tmp_path: Path) -> Service:
    svc = Service(env, tmp_path / f"run-{len(services)}.log")
    svc.start()
    services.append(svc)
    return svc


def wait_for(
    what: str, check: Callable[[], bool], svc: Service, timeout: float = DONE_TIMEOUT
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; service log:\n{svc.log()}")
        if svc.process is not None and svc.process.poll() is not None:
            pytest.fail(
                f"the service exited ({svc.process.returncode}) waiting for {what}:\n{svc.log()}"
            )
        time.sleep(0.25)


def following(db_url: str) -> Callable[[], bool]:
    return lambda: bool(
        scalar(db_url, f"SELECT count(*) FROM checkpoints WHERE name = 'follow:{CHAIN_ID}'")
    )


def pipeline_done(db_url: str, tokens: int) -> Callable[[], bool]:
    def check() -> bool:
        ok = scalar(db_url, "SELECT count(*) FROM tokens WHERE metadata_status = 'ok'")
        missing = scalar(
            db_url,
            "SELECT count(*) FROM media m WHERE NOT EXISTS (SELECT 1 FROM embeddings e "
            f"WHERE e.image_sha256 = m.sha256 AND e.extractor = '{EXTRACTOR}')",
        )
        media = scalar(db_url, "SELECT count(*) FROM media")
        return ok == tokens and media > 0 and missing == 0

    return check


def assert_as_uninterrupted(db_url: str, scene: World) -> None:
    """The database holds exactly what the chain and the published content say, once."""
    images = {
        hashlib.sha256(t.image_png).hexdigest(): t.image_png
        for _, t in published(scene.deployed).values()
    }
    extractor = get_extractor(EXTRACTOR)
    engine = create_engine(db_url)
    try:
        with Session(engine) as s:
            tokens = assert_tokens_as_published(s, scene.w3, scene.deployed)
            for t in tokens:
                assert t.transfer_count == 0, (t.contract, t.token_id)
            assert all(s.scalars(select(Transfer.is_mint)))
            rows = s.execute(
                select(Embedding.image_sha256, Embedding.extractor, Embedding.vec)
            ).all()
            assert sorted((r[0], r[1]) for r in rows) == sorted((sha, EXTRACTOR) for sha in images)
            shas = [r[0] for r in rows]
            direct = extractor.embed([decode_media(images[sha]).image for sha in shas])
            stored = np.array([as_floats(r[2]) for r in rows], dtype=np.float32)
            np.testing.assert_allclose(stored, direct, atol=2e-2)
            assert s.scalar(select(func.count()).where(Outbox.sent_at.is_(None))) == 0
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------------ the tests


def test_sigterm_exits_cleanly_with_metrics_and_health(
    scene: World,
    db_url: str,
    redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
    services: list[Service],
) -> None:
    env = service_env(scene, db_url, redis_url, redis_prefix, tmp_path)
    svc = start(services, env, tmp_path)
    wait_for("the follower's first poll", following(db_url), svc)
    scene.mint()
    wait_for("the whole pipeline", pipeline_done(db_url, scene.tokens), svc)
    base = f"http://127.0.0.1:{env['NFTWATCH_METRICS_PORT']}"
    health = httpx.get(f"{base}/healthz", timeout=10)
    assert health.status_code == 200 and health.json()["database"] is True
    metrics = httpx.get(f"{base}/metrics", timeout=10).text
    assert "nftwatch_lag_blocks 0.0" in metrics
    assert "nftwatch_outbox_backlog 0.0" in metrics
    assert 'nftwatch_queue_depth{queue="resolve"}' in metrics
    # the embed worker serves its own metrics on the port after the next
    worker_metrics = httpx.get(
        f"http://127.0.0.1:{int(env['NFTWATCH_METRICS_PORT']) + 2}/metrics", timeout=10
    ).text
    assert "nftwatch_embeddings_total" in worker_metrics
    assert len(svc.workers()) == 2
    svc.signal(signal.SIGTERM)
    assert svc.wait(timeout=60) == 0, svc.log()
    assert svc.alive_children() == []
    assert_as_uninterrupted(db_url, scene)


def test_listener_sigkill_then_restart_loses_and_doubles_nothing(
    scene: World,
    db_url: str,
    redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
    services: list[Service],
) -> None:
    env = service_env(scene, db_url, redis_url, redis_prefix, tmp_path)
    svc = start(services, env, tmp_path)
    wait_for("the follower's first poll", following(db_url), svc)
    scene.mint(scene.deployed[:1])
    time.sleep(random.uniform(0.3, 3.0))  # somewhere in ingest, dispatch or the tasks
    svc.workers()
    svc.signal(signal.SIGKILL)
    svc.wait(timeout=10)
    assert svc.alive_children() == []  # the workers followed their supervisor out
    scene.mint(scene.deployed[1:])  # while nothing listens
    svc2 = start(services, env, tmp_path)
    wait_for("the whole pipeline after the restart", pipeline_done(db_url, scene.tokens), svc2)
    assert_as_uninterrupted(db_url, scene)


@pytest.mark.parametrize("victim", ["resolve", "embed"])
def test_worker_sigkill_is_restarted_and_its_work_resent(
    victim: str,
    scene: World,
    db_url: str,
    redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
    services: list[Service],
) -> None:
    env = service_env(scene, db_url, redis_url, redis_prefix, tmp_path)
    svc = start(services, env, tmp_path)
    wait_for("the follower's first poll", following(db_url), svc)
    wait_for("both workers", lambda: len(svc.workers()) == 2, svc)
    scene.gateway.latency = 0.2  # spreads the work out, so the kill lands inside it
    scene.mint()
    if victim == "embed":
        wait_for("the first image", lambda: scalar(db_url, "SELECT count(*) FROM media") > 0, svc)
    else:
        wait_for(
            "the first message", lambda: scalar(db_url, "SELECT count(*) FROM outbox") > 0, svc
        )
    time.sleep(random.uniform(0.0, 1.0))
    before = svc.workers().get(victim)
    assert before is not None, svc.log()
    before.send_signal(signal.SIGKILL)

    def replaced() -> bool:
        now = svc.workers().get(victim)
        return now is not None and now.pid != before.pid

    wait_for(f"a new {victim} worker", replaced, svc)
    scene.gateway.latency = 0.0
    wait_for("the whole pipeline", pipeline_done(db_url, scene.tokens), svc)
    assert_as_uninterrupted(db_url, scene)


def test_every_gateway_down_work_waits_and_completes(
    scene: World,
    db_url: str,
    redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
    services: list[Service],
) -> None:
    env = service_env(scene, db_url, redis_url, redis_prefix, tmp_path)
    svc = start(services, env, tmp_path)
    wait_for("the follower's first poll", following(db_url), svc)
    scene.gateway.stop()
    scene.mint()
    wait_for(
        "every token to wait for a retry",
        lambda: (
            scalar(db_url, "SELECT count(*) FROM tokens WHERE metadata_status = 'retry'")
            == scene.tokens
        ),
        svc,
    )
    assert scalar(db_url, "SELECT count(*) FROM media") == 0
    scene.gateway.start()  # same port
    wait_for("the whole pipeline", pipeline_done(db_url, scene.tokens), svc, timeout=90)
    assert_as_uninterrupted(db_url, scene)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[Callable[[], None]]:
    """A Redis of this test alone, without persistence: a restart loses every message."""
    port = free_port()
    proc: list[subprocess.Popen[bytes]] = []

    def launch() -> None:
        proc.append(
            subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(tmp_path),
                ],
                stdout=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
        import redis

        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=port).ping()
                return
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def restart() -> None:
        proc[-1].kill()
        proc[-1].wait()
        launch()

    launch()
    restart.url = f"redis://127.0.0.1:{port}/0"  # type: ignore[attr-defined]
    yield restart
    for p in proc:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_redis_restart_loses_no_work(
    scene: World, db_url: str, own_redis: Any, tmp_path: Path, services: list[Service]
) -> None:
    env = service_env(scene, db_url, own_redis.url, "faults:", tmp_path)
    svc = start(services, env, tmp_path)
    wait_for("the follower's first poll", following(db_url), svc)
    scene.gateway.latency = 0.3  # keeps messages in flight when Redis goes
    scene.mint()
    wait_for(
        "the first messages sent",
        lambda: scalar(db_url, "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL") > 0,
        svc,
    )
    own_redis()
    scene.gateway.latency = 0.0
    wait_for("the whole pipeline", pipeline_done(db_url, scene.tokens), svc)
    assert_as_uninterrupted(db_url, scene)


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    """A Postgres of this test alone, kept on disk so that it can be stopped and started again
    on the same data directory (and the same socket) without touching the session's server."""
    server = EmbeddedPostgres(tmp_path / "pg", persistent=True)
    upgrade(server.start())
    yield server
    server.stop()


def test_postgres_restart_service_reconnects_and_completes(
    scene: World,
    own_postgres: EmbeddedPostgres,
    redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
    services: list[Service],
) -> None:
    url = own_postgres.url
    env = service_env(scene, url, redis_url, redis_prefix, tmp_path)
    svc = start(services, env, tmp_path)
    wait_for("the follower's first poll", following(url), svc)
    scene.gateway.latency = 0.2  # keeps tasks in flight when the database goes
    scene.mint(scene.deployed[:1])
    wait_for("the first image", lambda: scalar(url, "SELECT count(*) FROM media") > 0, svc)
    own_postgres.stop()  # every connection of the service and its workers is cut
    scene.mint(scene.deployed[1:])  # blocks the follower can only store after the restart
    time.sleep(4)
    own_postgres.start()  # same data directory, same socket: the same URL
    scene.gateway.latency = 0.0
    wait_for("the whole pipeline after the restart", pipeline_done(url, scene.tokens), svc)
    assert_as_uninterrupted(url, scene)


def _hex(value: Any) -> str:
    return "0x" + bytes(value).hex()


def _chain_transfers(scene: World) -> set[tuple[int, str, str, int]]:
    """Every Transfer log of the scene's collections on the node: (block, block hash, tx, index)."""
    logs = scene.w3.eth.get_logs(
        {
            "fromBlock": 0,
            "toBlock": "latest",
            "address": [Web3.to_checksum_address(d.address) for d in scene.deployed],
            "topics": [Web3.keccak(text="Transfer(address,address,uint256)")],
        }
    )
    return {
        (
            int(entry["blockNumber"]),
            _hex(entry["blockHash"]),
            _hex(entry["transactionHash"]),
            int(entry["logIndex"]),
        )
        for entry in logs
    }


def test_anvil_down_30s_follower_catches_up_without_gap(
    stateful_scene: World,
    db_url: str,
    redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
    services: list[Service],
) -> None:
    scene = stateful_scene
    env = service_env(scene, db_url, redis_url, redis_prefix, tmp_path)
    svc = start(services, env, tmp_path)
    wait_for("the follower's first poll", following(db_url), svc)
    scene.mint(scene.deployed[:1])
    first = len(scene.deployed[0].collection.tokens)
    wait_for(
        "the first collection ingested",
        lambda: scalar(db_url, "SELECT count(*) FROM transfers") == first,
        svc,
    )
    head_before = scene.w3.eth.block_number
    scene.anvil.stop()  # writes its chain to the state file
    time.sleep(30)
    scene.anvil.start()  # same port, the chain read back
    assert scene.w3.eth.block_number == head_before
    scene.mint(scene.deployed[1:])
    wait_for(
        "the whole pipeline after the node came back", pipeline_done(db_url, scene.tokens), svc
    )
    assert_as_uninterrupted(db_url, scene)
    # no gap and no double: the stored events are exactly the node's, block by block
    engine = create_engine(db_url)
    try:
        with Session(engine) as s:
            stored = s.execute(
                select(
                    Transfer.block_number, Transfer.block_hash, Transfer.tx_hash, Transfer.log_index
                )
            ).all()
            blocks = dict(s.execute(select(Block.number, Block.hash)).all())
    finally:
        engine.dispose()
    on_chain = _chain_transfers(scene)
    assert len(stored) == len(set(stored)) == len(on_chain)
    assert {(int(b), h.lower(), t.lower(), int(i)) for b, h, t, i in stored} == on_chain
    # every stored block is the node's block at that height, and holds its events
    assert {b for b, *_ in on_chain} <= set(blocks)
    for number, block_hash in blocks.items():
        assert block_hash.lower() == _hex(scene.w3.eth.get_block(number)["hash"]), number
