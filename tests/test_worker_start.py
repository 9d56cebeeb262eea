"""Several workers starting together on kombu's SQLAlchemy transport (``CELERY_BROKER_URL=sqla+…``,
which creates its tables on first use) all come up: none dies on the others' tables. (The
embedded default broker, a Redis of our own, is tested in test_embedded_redis.py.)"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from store.db import sqlalchemy_url
from tests.support.workers import start_workers, stop_workers, wait_until_ready


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
    workers = start_workers(env, logs)
    try:
        wait_until_ready(workers, logs, 120, interval=0.5)
    finally:
        stop_workers(workers, grace=30)
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
