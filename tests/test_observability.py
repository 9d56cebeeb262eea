"""Metrics, health and logs: what the collector reads from a real database and Redis, what the
HTTP server answers, and that logs are JSON off a terminal with credentials masked."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import uuid

import httpx
import pytest
import redis
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import create_engine

from nftwatch.observability.logs import setup_logging
from nftwatch.observability.metrics import (
    ServiceCollector,
    WorkerMetrics,
    error_class,
    redis_queue_depths,
)
from nftwatch.observability.server import MetricsServer
from store import outbox
from store.chain import set_checkpoint
from store.db import make_sessionmaker
from store.models import Block
from tokenmeta.errors import TokenMetaError

CHAIN = 1


@pytest.fixture
def root_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


def test_json_lines_off_a_terminal_with_secrets_masked(root_logging: None) -> None:
    out = io.StringIO()
    setup_logging("INFO", out)
    log = logging.getLogger("nftwatch.test")
    secret = "https://mainnet.infura.io/v3/0123456789abcdef0123456789abcdef"
    log.info("following %s", secret)
    try:
        raise ConnectionError(f"cannot reach redis://user:hunter2@db:6379/0 or {secret}")
    except ConnectionError:
        log.exception("broker down")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["level"] for line in lines] == ["INFO", "ERROR"]
    assert lines[0]["msg"] == "following https://mainnet.infura.io/v3/***"
    assert "hunter2" not in out.getvalue() and "0123456789abcdef" not in out.getvalue()
    assert "ConnectionError" in lines[1]["exc"]


def test_human_text_on_a_terminal(root_logging: None) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    setup_logging("WARNING", out)
    logging.getLogger("x").info("hidden")
    logging.getLogger("x").warning("rpc http://u:pw@h:1/ gone")
    text = out.getvalue()
    assert "hidden" not in text
    assert "WARNING" in text and "http://u:***@h:1/" in text and not text.startswith("{")


def test_service_collector_reads_lag_events_backlog_and_queues(
    db_url: str, redis_url: str, redis_prefix: str
) -> None:
    engine = create_engine(db_url)
    factory = make_sessionmaker(engine)
    t0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    with factory.begin() as s:
        for n in (10, 11):
            s.add(
                Block(
                    chain_id=CHAIN,
                    number=n,
                    hash=f"0x{n:064x}",
                    parent_hash=f"0x{n - 1:064x}",
                    timestamp=t0 + dt.timedelta(seconds=12 * (n - 10)),
                )
            )
        set_checkpoint(s, f"follow:{CHAIN}", CHAIN, 11, f"0x{11:064x}")
        for i in range(3):
            outbox.enqueue(s, "resolve", "resolve", {"i": i}, dedupe_key=f"k{i}")
    prefix = f"{redis_prefix}{uuid.uuid4().hex[:6]}:"
    client = redis.Redis.from_url(redis_url)
    client.rpush(f"{prefix}embed", "a", "b")
    head_time = int((t0 + dt.timedelta(seconds=12 * 4)).timestamp())  # block 14
    registry = CollectorRegistry()
    registry.register(
        ServiceCollector(
            factory, CHAIN, lambda: (14, head_time), lambda: redis_queue_depths(client, prefix)
        )
    )
    text = generate_latest(registry).decode()
    assert "nftwatch_lag_blocks 3.0" in text
    assert "nftwatch_lag_seconds 36.0" in text
    assert "nftwatch_outbox_backlog 3.0" in text
    assert 'nftwatch_queue_depth{queue="embed"} 2.0' in text
    assert 'nftwatch_queue_depth{queue="resolve"} 0.0' in text
    client.delete(f"{prefix}embed")
    client.close()
    engine.dispose()


def test_worker_metrics_count_latency_failures_by_class_and_embeddings() -> None:
    m = WorkerMetrics()
    m.started("a")
    m.finished("a", "nftwatch.embed_images", 5, "SUCCESS")
    m.started("b")
    m.finished("b", "nftwatch.resolve_tokens", 16, "SUCCESS")
    m.failed("nftwatch.resolve_tokens", TimeoutError())
    text = generate_latest(m.registry).decode()
    assert "nftwatch_embeddings_total 5.0" in text
    assert "nftwatch_tokens_resolved_total 16.0" in text
    assert 'nftwatch_task_seconds_count{task="nftwatch.embed_images"} 1.0' in text
    assert 'error_class="TimeoutError"' in text

    class Coded(TokenMetaError):
        code = "gateway_timeout"

    assert error_class(Coded("x")) == "gateway_timeout"
    assert error_class(ValueError()) == "ValueError"


def test_health_server_answers_503_when_unhealthy_and_serves_metrics() -> None:
    state = {"ok": True}
    m = WorkerMetrics()
    server = MetricsServer(
        m.registry, lambda: (state["ok"], {"threads": {"follower": state["ok"]}})
    )
    port = server.start()
    try:
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/healthz").json() == {
            "status": "ok",
            "threads": {"follower": True},
        }
        state["ok"] = False
        r = httpx.get(f"{base}/healthz")
        assert r.status_code == 503 and r.json()["status"] == "unhealthy"
        assert "nftwatch_task_seconds" in httpx.get(f"{base}/metrics").text
        assert httpx.get(f"{base}/nope").status_code == 404
    finally:
        server.stop()
