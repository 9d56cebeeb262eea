"""The API served for real on loopback, as `nftwatch api` serves it: uvicorn worker processes
started by :func:`nftwatch.api.serve.serve`, in a child process the test stops with SIGTERM."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from nftwatch.api.serve import ServeConfig
from nftwatch.localstack.embedded import free_port

RUNNER = """
import sys
from nftwatch.api.serve import ServeConfig, serve
serve(ServeConfig.from_env(sys.argv[1]), "127.0.0.1", int(sys.argv[2]))
"""


@dataclass
class LiveApi:
    base: str
    port: int
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def live_api(cfg: ServeConfig, *, startup_s: float = 60.0) -> Iterator[LiveApi]:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "api.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "-c", RUNNER, cfg.to_env(), str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        api = LiveApi(f"http://127.0.0.1:{port}", port, log)
        try:
            deadline = time.monotonic() + startup_s
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"the API exited at start: {api.log_text()[-3000:]}")
                try:
                    if httpx.get(f"{api.base}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the API did not answer: {api.log_text()[-3000:]}")
                time.sleep(0.2)
            yield api
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def config(db_url: str, keys: list[str], **overrides: object) -> ServeConfig:
    base = ServeConfig(
        database_url=db_url,
        key_hashes=ServeConfig.hashes_of(keys),
        workers=2,
        threads=4,
        log_level="info",
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]
