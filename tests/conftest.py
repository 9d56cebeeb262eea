"""Shared fixtures: real servers, each throwaway.

- ``pg_url``: Postgres 18 + pgvector from the wheel, in a temporary directory, migrated to head;
  ``db_url`` gives each test an empty schema (every table truncated).
- ``anvil``: a fresh anvil node on a free port.
- ``redis_url``: the machine's Redis (``NFTWATCH_TEST_REDIS_URL``, default 127.0.0.1:6379); every
  test session uses its own key prefix, so it never touches other data there.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text

from nftwatch.embedded import Anvil, EmbeddedPostgres
from store.db import upgrade
from store.models import Base

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg"), persistent=False)
    url = server.start()
    upgrade(url)
    yield url
    server.stop()


@pytest.fixture
def db_url(pg_url: str) -> str:
    """The session's database, emptied for this test."""
    engine = create_engine(pg_url)
    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return pg_url


@pytest.fixture
def anvil() -> Iterator[Anvil]:
    node = Anvil()
    node.start()
    yield node
    node.stop()


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("NFTWATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:  # pragma: no cover - environment problem
        pytest.fail(f"Redis is not answering at {url} ({exc}); `make test` starts one")
    finally:
        client.close()
    return url


@pytest.fixture(scope="session")
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix owned by this test session; its keys are deleted afterwards."""
    prefix = f"nftwatch-test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.fail(f"the shared data folder is missing: {SHARED_DATA}")
    return SHARED_DATA
