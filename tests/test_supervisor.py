"""The supervisor's children: a bulk worker started below normal CPU priority keeps it, across
a restart too, and is the worker itself (nice execs it), so stopping it leaves nothing behind."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from nftwatch.service.supervisor import Child, Supervisor
from store.db import sqlalchemy_url


def worker_niceness(child: Child) -> int:
    """The niceness of the child once it runs the worker itself (nice(1) sets it, then execs).
    Between fork and exec, /proc briefly shows an empty command line: wait through it."""
    process = psutil.Process(child.process.pid)
    deadline = time.monotonic() + 20
    while not (cmdline := process.cmdline()) or Path(cmdline[0]).name == "nice":
        assert child.process.poll() is None, child.log_path.read_text()  # it died: show why
        assert time.monotonic() < deadline, cmdline
        time.sleep(0.05)
    assert cmdline[1:3] == ["-m", "nftwatch.cli"]  # the worker, not a wrapper
    return int(process.nice())


@pytest.mark.timeout(120)
def test_a_niced_worker_keeps_its_priority_across_a_restart(
    pg_url: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    env = {
        "DATABASE_URL": sqlalchemy_url(pg_url),
        "CELERY_BROKER_URL": redis_url,
        "NFTWATCH_REDIS_PREFIX": f"{redis_prefix}supervisor:",
        "NFTWATCH_DATA_DIR": str(tmp_path),
        "NFTWATCH_METRICS_PORT": "0",
    }
    supervisor = Supervisor(tmp_path / "logs")
    try:
        bulk = supervisor.start_worker("bulk", env, "--queues", "resolve", "--pool", "solo", nice=7)
        plain = supervisor.start_worker("plain", env, "--queues", "urgent", "--pool", "solo")
        for child, niceness in ((bulk, 7), (plain, os.nice(0))):
            assert worker_niceness(child) == niceness
        first = bulk.process.pid
        os.kill(first, signal.SIGKILL)
        bulk.process.wait(timeout=10)
        assert supervisor.restart_dead() == ["bulk"]
        assert bulk.process.pid != first and worker_niceness(bulk) == 7
    finally:
        supervisor.stop_all()
    time.sleep(0.2)
    for child in supervisor.children:
        assert child.process.poll() is not None
