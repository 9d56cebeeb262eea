"""Ctrl-C during ``nftwatch demo`` stops everything it started: no worker, anvil or Postgres
process is left behind, and a second run starts cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest


def _processes_mentioning(text: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if text in cmdline:
            found.append(proc)
    return found


def _wait_for_line(log: Path, needle: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            pytest.fail(f"demo exited early:\n{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.2)
    pytest.fail(f"demo never printed {needle!r}:\n{log.read_text(errors='replace')[-2000:]}")


@pytest.mark.timeout(300)
def test_ctrl_c_stops_everything_the_demo_started(tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    env = {**os.environ, "NFTWATCH_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    with log.open("wb") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "nftwatch.cli", "demo", "--tokens-per-collection", "4"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        _wait_for_line(log, "backfilling", demo, timeout=180)
        children = psutil.Process(demo.pid).children(recursive=True)
        assert len(children) >= 3  # anvil and two Celery workers at least
        data_dir = str(tmp_path / "data")
        assert _processes_mentioning(data_dir)  # the embedded Postgres

        os.kill(demo.pid, signal.SIGINT)
        assert demo.wait(timeout=60) != 0

        _gone, alive = psutil.wait_procs(children, timeout=20)
        assert not alive, [p.cmdline() for p in alive]
        deadline = time.monotonic() + 20
        while _processes_mentioning(data_dir) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _processes_mentioning(data_dir)
    finally:
        if demo.poll() is None:
            demo.kill()
