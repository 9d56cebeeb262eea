"""Turns settings into running resources: the database (embedded or configured, always at the
schema head), the broker URL, and the worker configuration handed to Celery."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from nftwatch.embedded import EmbeddedPostgres
from nftwatch.settings import Settings
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
    """kombu's SQLAlchemy transport on our own database: a broker that needs no server."""
    return "sqla+" + database_url


@contextlib.contextmanager
def open_resources(settings: Settings) -> Iterator[Resources]:
    """Start the embedded database when none is configured, migrate, and clean up after."""
    embedded: EmbeddedPostgres | None = None
    if settings.database_url is None:
        embedded = EmbeddedPostgres(settings.data_dir / "postgres")
        database_url = embedded.start()
    else:
        database_url = settings.database_url
    try:
        ensure_schema(database_url)
        engine = make_engine(database_url)
        try:
            yield Resources(
                settings=settings,
                database_url=database_url,
                broker_url=settings.broker_url or embedded_broker_url(database_url),
                engine=engine,
                factory=make_sessionmaker(engine),
            )
        finally:
            engine.dispose()
    finally:
        if embedded is not None:
            embedded.stop()
