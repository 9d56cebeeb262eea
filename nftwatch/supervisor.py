"""Starts and stops the child processes of a service (Celery workers), so that Ctrl-C or SIGTERM
leaves nothing behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path


@dataclass
class Supervisor:
    """Children run in their own process groups; :meth:`stop_all` ends each whole group."""

    log_dir: Path
    children: list[Child] = field(default_factory=list)

    def start_worker(self, name: str, env: dict[str, str], *args: str) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        log = log_path.open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "nftwatch.cli", "worker", *args],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        child = Child(name, process, log_path)
        self.children.append(child)
        return child

    def check(self) -> None:
        """Raise if a child died, naming its log."""
        for child in self.children:
            code = child.process.poll()
            if code is not None:
                raise RuntimeError(f"{child.name} exited with code {code}; see {child.log_path}")

    def stop_all(self, timeout: float = 10.0) -> None:
        for child in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.children:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                child.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
        self.children.clear()
