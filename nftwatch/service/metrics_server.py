"""The service's metrics and health endpoint: the follower's lag, the outbox and the broker's
queue depths, read at scrape time."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session, sessionmaker

from listeners.rpc import Rpc
from nftwatch.observability.metrics import ServiceCollector, redis_queue_depths
from nftwatch.observability.server import MetricsServer
from nftwatch.runtime import Resources
from store import ops
from worker.app import redis_client_url

log = logging.getLogger(__name__)


def serve_metrics(
    res: Resources, chain_id: int, threads: list[threading.Thread]
) -> MetricsServer | None:
    """Start serving on the configured port; None when none is, or it is busy."""
    s = res.settings
    if not s.metrics_port:
        return None
    assert s.rpc_url is not None
    head_rpc = Rpc(s.rpc_url, timeout=5.0)

    def head() -> tuple[int, int]:
        number = head_rpc.get_block_number()
        block = head_rpc.get_block(number)
        return number, block.timestamp if block is not None else int(time.time())

    registry = CollectorRegistry()
    registry.register(
        ServiceCollector(
            res.factory,
            chain_id,
            head,
            queue_depths(res.broker_url, s.redis_key_prefix, res.factory),
        )
    )

    def health() -> tuple[bool, dict[str, Any]]:
        alive = {t.name: t.is_alive() for t in threads}
        try:
            # the engine pings a pooled connection as it hands it out (pool_pre_ping)
            with res.engine.connect():
                pass
            database = True
        except Exception:
            database = False
        return all(alive.values()) and database, {"threads": alive, "database": database}

    server = MetricsServer(registry, health, host=s.metrics_host, port=s.metrics_port)
    try:
        server.start()
    except OSError as exc:  # a busy port must not keep the service from running
        log.warning("metrics not served on port %d: %s", s.metrics_port, exc)
        return None
    return server


def queue_depths(
    broker_url: str, prefix: str | None, factory: sessionmaker[Session]
) -> Callable[[], dict[str, int]]:
    """Messages waiting per queue, read from Redis or from kombu's SQL tables."""
    client_url = redis_client_url(broker_url)  # the embedded broker's unix socket too
    if client_url is not None:
        client = redis.Redis.from_url(client_url, socket_timeout=5)
        return lambda: redis_queue_depths(client, prefix)

    def sql() -> dict[str, int]:
        with factory() as session:
            return ops.kombu_queue_depths(session)

    return sql
