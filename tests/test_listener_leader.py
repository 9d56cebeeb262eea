"""One leader per chain: two real ``nftwatch run`` processes share a database, only one follows;
when it is killed the standby takes over and nothing is ingested twice. And in process: a lock
whose connection dies is leadership lost."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from listeners.leader import Leader, lead_then_run
from nftwatch.localstack import chaintools as ct
from nftwatch.localstack.embedded import Anvil
from tests.support import polling
from tests.support.db import scalar

CHAIN = 31337


wait_for = partial(polling.wait_for, timeout=60.0, interval=0.2)  # processes start slowly


@pytest.fixture
def services(
    tmp_path: Path, anvil: Anvil, db_url: str, redis_url: str, redis_prefix: str
) -> Iterator[Callable[[str], tuple[subprocess.Popen[bytes], Path]]]:
    started: list[subprocess.Popen[bytes]] = []
    env = {
        **os.environ,
        "ETH_RPC_URL": anvil.url,
        "DATABASE_URL": db_url,
        "CELERY_BROKER_URL": redis_url,
        "NFTWATCH_REDIS_PREFIX": f"{redis_prefix}{uuid.uuid4().hex[:6]}:",
        "NFTWATCH_METRICS_PORT": "0",
        "NFTWATCH_DATA_DIR": str(tmp_path / "data"),
        "NFTWATCH_LOG_LEVEL": "INFO",
    }

    def start(name: str) -> tuple[subprocess.Popen[bytes], Path]:
        log_path = tmp_path / f"{name}.log"
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "nftwatch.cli", "run", "--no-workers", "--interval", "0.2"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(proc)
        return proc, log_path

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def test_standby_takes_over_when_the_leader_is_killed(anvil: Anvil, db_url: str, services) -> None:
    w3 = ct.connect(anvil.url)
    a = w3.eth.accounts
    nft = ct.deploy(w3, "DemoNFT", "Lead", "LD")
    (p1, log1), (p2, log2) = services("one"), services("two")

    def roles() -> dict[str, Path]:
        out = {}
        for log in (log1, log2):
            body = log.read_text(errors="replace") if log.exists() else ""
            if "leading (follower starts)" in body:
                out["leader"] = log
            elif "standing by" in body:
                out["standby"] = log
        return out

    wait_for("one leader and one standby", lambda: len(roles()) == 2)
    leader_log = roles()["leader"]
    leader, standby = (p1, p2) if leader_log == log1 else (p2, p1)
    standby_log = log2 if leader_log == log1 else log1
    wait_for("the leader's checkpoint", lambda: scalar(db_url, "SELECT count(*) FROM checkpoints"))

    for token_id in range(1, 6):
        ct.mint(w3, nft, a[1], token_id)
    count = "SELECT count(*) FROM transfers"
    wait_for("the leader ingests 5 mints", lambda: scalar(db_url, count) == 5)
    assert "leading" not in standby_log.read_text(errors="replace")

    os.killpg(leader.pid, signal.SIGKILL)
    leader.wait(timeout=10)
    for token_id in range(6, 11):
        ct.mint(w3, nft, a[2], token_id)
    wait_for("the standby ingests 5 more", lambda: scalar(db_url, count) == 10, timeout=30)
    assert "leading (follower starts)" in standby_log.read_text(errors="replace")
    assert standby.poll() is None
    # each mint once: no event doubled, no token missed
    assert scalar(db_url, "SELECT count(DISTINCT (tx_hash, log_index)) FROM transfers") == 10
    assert scalar(db_url, "SELECT count(DISTINCT token_id) FROM transfers") == 10
    head = w3.eth.block_number
    checkpoint = f"SELECT block_number FROM checkpoints WHERE name = 'follow:{CHAIN}'"
    wait_for("the checkpoint at the head", lambda: scalar(db_url, checkpoint) == head)


def test_leadership_is_lost_with_its_connection(db_url: str) -> None:
    first, second = Leader(db_url, CHAIN, keepalive=0.2), Leader(db_url, CHAIN, retry_interval=0.1)
    other_chain = Leader(db_url, CHAIN + 1)
    try:
        assert first.try_acquire() and not second.try_acquire()
        assert other_chain.try_acquire()  # keyed by chain id
        stop = threading.Event()
        ran: list[str] = []

        def work(term: threading.Event) -> None:
            ran.append("started")
            term.wait(30)
            ran.append("stopped")

        runner = threading.Thread(target=lead_then_run, args=(first, work, stop))
        runner.start()
        wait_for("the work to start", lambda: ran == ["started"])
        # the leader's backend dies (database restart, network cut): the work is told to stop
        killed = scalar(
            db_url,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            f"WHERE application_name = 'nftwatch-leader-{CHAIN}' AND pid <> pg_backend_pid() "
            "AND pid = (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            f"AND objid = {CHAIN} LIMIT 1)",
        )
        assert killed == 1
        runner.join(timeout=10)
        assert ran == ["started", "stopped"] and not first.held
        assert second.acquire(stop)  # the lock is free again
        assert not first.try_acquire()
    finally:
        for leader in (first, second, other_chain):
            leader.close()
