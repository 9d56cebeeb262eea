"""Workers on several hosts, rehearsed on one: ``nftwatch run --no-workers`` (follower, dispatcher,
resend sweep) plus two resolve and two embed workers, each its own ``nftwatch worker --pool solo``
process as separate services would run them, all on one Redis, one Postgres, anvil and a loopback
IPFS gateway. The work is shared between the peers, nothing is lost or done twice (the outbox
against the stored rows and the gateway's request count), and a worker SIGKILLed in the middle
of a batch, and never restarted (its host is gone), loses nothing: its peer does the work."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from nftvision.extractors import get_extractor
from nftwatch.localstack.embedded import Anvil
from nftwatch.localstack.ipfs_gateway import LocalIpfsGateway
from store.models import Embedding, Outbox
from store.vectors import as_floats
from tests.support.db import scalar
from tests.support.workers import (
    assert_tokens_as_published,
    published,
    start_workers,
    stop_workers,
    wait_until_ready,
)
from tests.test_faults import CHAIN_ID, Service, World, make_scene, service_env, wait_for
from tokenmeta.media import decode_media

PER_COLLECTION = 12  # four collections: at least four resolve messages, several embed ones
EXTRACTORS = ("gradient-v1", "effnet-lite0-v1")  # the CNN's first batch loads it: seconds long
DONE_TIMEOUT = 120.0

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def scene(gateway: LocalIpfsGateway) -> Iterator[World]:
    """Four collections of twelve tokens, published on the gateway and deployed, not minted."""
    yield from make_scene(gateway, Anvil(chain_id=CHAIN_ID), PER_COLLECTION, slice(1, 5))


class Dispatcher(Service):
    """``nftwatch run --no-workers``: the follower, the dispatcher and the sweeps, no worker."""

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "nftwatch.cli", "run", "--no-workers", "--interval", "0.25"],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )


class Fleet:
    """The dispatcher's service and four worker processes, each with its own log."""

    def __init__(self, env: dict[str, str], tmp_path: Path, services: list[Service]) -> None:
        self.svc = Dispatcher(env, tmp_path / "run.log")
        self.svc.start()
        services.append(self.svc)
        worker_env = {**os.environ, **env, "NFTWATCH_METRICS_PORT": "0"}
        self.logs = {
            name: tmp_path / f"{name}.log"
            for name in ("resolve-a", "resolve-b", "embed-a", "embed-b")
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        for name, log in self.logs.items():
            queue = name.split("-")[0]
            (proc,) = start_workers(worker_env, [log], queues=queue, pool="solo")
            self.procs[name] = proc
        wait_until_ready(list(self.procs.values()), list(self.logs.values()), 120)

    def log(self, name: str) -> str:
        return self.logs[name].read_text(errors="replace")

    def tasks(self, name: str) -> tuple[set[str], set[str]]:
        """Task ids the worker received and those it finished."""
        text = self.log(name)
        got = set(re.findall(r"Task nftwatch\.\w+\[([0-9a-f-]+)\] received", text))
        done = set(re.findall(r"Task nftwatch\.\w+\[([0-9a-f-]+)\] succeeded", text))
        return got, done

    def results(self, name: str) -> int:
        """The sum of what the worker's finished tasks returned (tokens resolved, vectors
        stored)."""
        found = re.findall(
            r"Task nftwatch\.\w+\[[0-9a-f-]+\] succeeded in [0-9.e-]+s: (\d+)", self.log(name)
        )
        return sum(int(n) for n in found)

    def quiet(self) -> bool:
        """Every live worker has finished each task it took (late no-op resends included)."""
        for name, proc in self.procs.items():
            got, finished = self.tasks(name)
            if proc.poll() is None and got != finished:
                return False
        return True

    def stop(self) -> None:
        stop_workers(list(self.procs.values()), grace=30)

    def all_logs(self) -> str:
        return "\n".join(f"--- {n}\n{self.log(n)[-3000:]}" for n in self.logs)


@pytest.fixture
def fleet_env(
    scene: World, db_url: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> dict[str, str]:
    env = service_env(scene, db_url, redis_url, redis_prefix, tmp_path)
    env["NFTWATCH_EXTRACTORS"] = ",".join(EXTRACTORS)
    return env


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for s in started:
        s.kill_all()


@contextlib.contextmanager
def run_fleet(env: dict[str, str], tmp_path: Path, services: list[Service]) -> Iterator[Fleet]:
    fleet = Fleet(env, tmp_path, services)
    try:
        yield fleet
    finally:
        fleet.stop()


def done(db_url: str, tokens: int) -> Callable[[], bool]:
    def check() -> bool:
        ok = scalar(db_url, "SELECT count(*) FROM tokens WHERE metadata_status = 'ok'")
        pairs = scalar(db_url, "SELECT count(*) FROM embeddings")
        media = scalar(db_url, "SELECT count(*) FROM media")
        return ok == tokens and media > 0 and pairs == media * len(EXTRACTORS)

    return check


def assert_exactly_once(db_url: str, scene: World) -> None:
    """The outbox against the stored rows: a resolve row per minted token and an embed row per
    image, every one sent, each matched by exactly its stored result, nothing stored without one;
    the tokens equal the chain and the published content, the vectors a direct embedding."""
    expected = published(scene.deployed)
    images = {hashlib.sha256(t.image_png).hexdigest(): t.image_png for _, t in expected.values()}
    engine = create_engine(db_url)
    try:
        with Session(engine) as s:
            assert s.scalar(select(func.count()).where(Outbox.sent_at.is_(None))) == 0
            rows = s.execute(select(Outbox.task, Outbox.payload)).all()
            resolve = [(p["contract"], int(p["token_id"])) for task, p in rows if task == "resolve"]
            embed = [p["image_sha256"] for task, p in rows if task == "embed"]
            assert sorted(resolve) == sorted(expected)  # one row per token, none twice
            assert sorted(embed) == sorted(images)
            assert_tokens_as_published(s, scene.w3, scene.deployed)
            stored = s.execute(
                select(Embedding.image_sha256, Embedding.extractor, Embedding.vec)
            ).all()
            assert sorted((r[0], r[1]) for r in stored) == sorted(
                (sha, x) for sha in images for x in EXTRACTORS
            )
            for name in EXTRACTORS:
                mine = [r for r in stored if r[1] == name]
                direct = get_extractor(name).embed([decode_media(images[r[0]]).image for r in mine])
                got = np.array([as_floats(r[2]) for r in mine], dtype=np.float32)
                np.testing.assert_allclose(got, direct, atol=2e-2)
    finally:
        engine.dispose()


def test_two_resolve_and_two_embed_workers_share_the_work_once(
    scene: World, db_url: str, fleet_env: dict[str, str], tmp_path: Path, services: list[Service]
) -> None:
    scene.gateway.latency = 0.2  # every batch takes a while, so one worker cannot take them all
    # no resend sweep within the test (the CNN's first load alone may take a minute on a busy
    # machine): every message is sent once, so any work done twice is the workers' doing
    fleet_env["NFTWATCH_RESEND_AFTER"] = "600"
    with run_fleet(fleet_env, tmp_path, services) as fleet:
        before = scene.gateway.requests
        scene.mint()
        wait_for("the whole pipeline", done(db_url, scene.tokens), fleet.svc, DONE_TIMEOUT)
        wait_for("the workers to go idle", fleet.quiet, fleet.svc)
        for name in fleet.logs:  # each peer did part of the work
            assert fleet.tasks(name)[0], f"{name} was given no work:\n{fleet.all_logs()}"
        resolved = [fleet.tasks(n)[1] for n in ("resolve-a", "resolve-b")]
        assert not resolved[0] & resolved[1]  # no message went to both
        # what the tasks did, summed over the peers: each token resolved once, each vector
        # computed once (a double would count twice even though the upsert hides it)
        assert fleet.results("resolve-a") + fleet.results("resolve-b") == scene.tokens
        images = scalar(db_url, "SELECT count(*) FROM media")
        embedded = fleet.results("embed-a") + fleet.results("embed-b")
        per = scalar(
            db_url,
            "SELECT string_agg(extractor || '=' || n, ',') FROM "
            "(SELECT extractor, count(*) n FROM embeddings GROUP BY 1) x",
        )
        assert embedded == images * len(EXTRACTORS), (per, fleet.all_logs())
        # no token fetched twice: its metadata and its image, once each
        assert scene.gateway.requests - before == 2 * scene.tokens, fleet.all_logs()
        assert_exactly_once(db_url, scene)


@pytest.mark.parametrize("victim", ["resolve-a", "embed-a"])
def test_a_worker_killed_mid_batch_loses_nothing_its_peer_does_the_work(
    victim: str,
    scene: World,
    db_url: str,
    fleet_env: dict[str, str],
    tmp_path: Path,
    services: list[Service],
) -> None:
    # long batches, so that the kill lands inside one: a second per gateway request for the
    # resolve worker; the embed worker's first batch loads the CNN
    scene.gateway.latency = 1.0 if victim.startswith("resolve") else 0.05
    with run_fleet(fleet_env, tmp_path, services) as fleet:
        scene.mint()

        def busy() -> bool:
            got, finished = fleet.tasks(victim)
            return bool(got - finished)

        wait_for(f"{victim} to start a batch", busy, fleet.svc, DONE_TIMEOUT)
        time.sleep(0.1)
        os.killpg(fleet.procs[victim].pid, signal.SIGKILL)
        fleet.procs[victim].wait(timeout=10)
        got, finished = fleet.tasks(victim)
        assert got - finished, "the kill did not land inside a batch"
        scene.gateway.latency = 0.0
        # the unfinished rows are sent again after NFTWATCH_RESEND_AFTER; the peer takes them
        wait_for("the whole pipeline", done(db_url, scene.tokens), fleet.svc, DONE_TIMEOUT)
        wait_for("the workers to go idle", fleet.quiet, fleet.svc)
        peer = victim.replace("-a", "-b")
        assert fleet.tasks(peer)[1], fleet.all_logs()
        assert_exactly_once(db_url, scene)
