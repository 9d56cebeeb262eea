"""Several workers starting together on kombu's SQLAlchemy transport (``CELERY_BROKER_URL=sqla+…``,
which creates its tables on first use) all come up: none dies on the others' tables. (The
embedded default broker, a Redis of our own, is tested in test_embedded_redis.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from store.db import sqlalchemy_url


@pytest.mark.timeout(180)
def test_workers_starting_together_on_a_fresh_embedded_broker(pg_url: str, tmp_path: Path) -> None:
    name = f"broker_{uuid.uuid4().hex[:8]}"
    admin = create_engine(sqlalchemy_url(pg_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    url = sqlalchemy_url(pg_url).replace("/postgres?", f"/{name}?")
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "CELERY_BROKER_URL": "sqla+" + url,
        "NFTWATCH_DATA_DIR": str(tmp_path),
        "NFTWATCH_METRICS_PORT": "0",
    }
    logs = [tmp_path / f"worker{i}.log" for i in range(3)]
    workers = []
    for log in logs:
        with log.open("wb") as out:
            workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "nftwatch.cli",
                        "worker",
                        "--queues",
                        "resolve",
                        "--pool",
                        "solo",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            dead = [w for w in workers if w.poll() is not None]
            assert not dead, logs[workers.index(dead[0])].read_text()[-2000:]
            if all("ready." in log.read_text(errors="replace") for log in logs):
                break
            time.sleep(0.5)
        else:
            pytest.fail("workers did not all become ready")
    finally:
        for w in workers:
            if w.poll() is None:
                os.killpg(w.pid, signal.SIGTERM)
        for w in workers:
            try:
                w.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(w.pid, signal.SIGKILL)
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
