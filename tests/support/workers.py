"""``nftwatch worker`` processes started together, each logging to its own file: started,
waited on until every one says ``ready.``, and stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path


def start_workers(
    env: Mapping[str, str], logs: list[Path], *, queues: str = "resolve", pool: str = "solo"
) -> list[subprocess.Popen[bytes]]:
    """One worker per log file, each in a session of its own (so a signal reaches its children)."""
    command = [sys.executable, "-m", "nftwatch.cli", "worker", "--queues", queues, "--pool", pool]
    workers = []
    for log in logs:
        with log.open("wb") as out:
            workers.append(
                subprocess.Popen(
                    command,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=dict(env),
                    start_new_session=True,
                )
            )
    return workers


def wait_until_ready(
    workers: list[subprocess.Popen[bytes]],
    logs: list[Path],
    timeout: float,
    *,
    interval: float = 0.3,
) -> None:
    """Until every log says ``ready.``; a worker that exits first fails with its log's tail."""
    deadline = time.monotonic() + timeout
    while not all("ready." in log.read_text(errors="replace") for log in logs):
        dead = [w for w in workers if w.poll() is not None]
        assert not dead, logs[workers.index(dead[0])].read_text()[-2000:]
        assert time.monotonic() < deadline, "workers did not all become ready"
        time.sleep(interval)


def stop_workers(workers: list[subprocess.Popen[bytes]], *, grace: float | None = 30.0) -> None:
    """SIGTERM to each one still running, then up to ``grace`` s for each to exit before a
    SIGKILL; ``grace=None``: SIGKILL at once."""
    for w in workers:
        if w.poll() is None:
            os.killpg(w.pid, signal.SIGTERM if grace is not None else signal.SIGKILL)
    if grace is None:
        return
    for w in workers:
        try:
            w.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(w.pid, signal.SIGKILL)
