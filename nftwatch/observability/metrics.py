"""Prometheus metrics of the service and of the workers.

The service's gauges (lag behind the head, outbox backlog, queue depths) are read at scrape time
by :class:`ServiceCollector`, so they are never stale and cost nothing between scrapes. Workers
count their tasks through Celery's signals (:func:`connect_worker_signals`)."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from store import ops, outbox

log = logging.getLogger(__name__)

QUEUES = ("urgent", "resolve", "embed")


def redis_queue_depths(
    client: Any, prefix: str | None, queues: tuple[str, ...] = QUEUES
) -> dict[str, int]:
    """Messages waiting in each Celery queue on Redis (kombu keeps a queue as a list named by
    the queue, under the deployment's key prefix)."""
    return {q: int(client.llen(f"{prefix or ''}{q}")) for q in queues}


@dataclass(eq=False)  # registries keep collectors in sets
class ServiceCollector(Collector):
    """Reads the follower's position, the node's head, the outbox and the broker's queues."""

    factory: sessionmaker[Session]
    chain_id: int
    head: Callable[[], tuple[int, int]]  # (block number, unix time) of the node's head
    queue_depths: Callable[[], dict[str, int]]
    _events: int = 0
    _counted_to: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    errors: dict[str, int] = field(default_factory=dict)

    def collect(self) -> Iterator[Any]:
        yield from self._chain()
        yield from self._outbox()
        yield from self._queues()
        failed = CounterMetricFamily(
            "nftwatch_collect_errors", "Scrapes that could not read a source", labels=["source"]
        )
        for source, n in sorted(self.errors.items()):
            failed.add_metric([source], n)
        yield failed

    def _fail(self, source: str) -> None:
        self.errors[source] = self.errors.get(source, 0) + 1
        log.warning("metrics: cannot read %s", source, exc_info=True)

    def _chain(self) -> Iterator[Any]:
        try:
            with self.factory() as s:
                cp, cp_time = ops.follow_position(s, self.chain_id)
                events = self._count_events(s, cp)
        except Exception:
            self._fail("database")
            return
        ev = CounterMetricFamily("nftwatch_events", "Transfers and sales ingested by the follower")
        ev.add_metric([], events)
        yield ev
        if cp is None:
            return
        yield GaugeMetricFamily("nftwatch_follow_block", "Last block ingested", value=cp)
        try:
            head, head_time = self.head()
        except Exception:
            self._fail("node")
            return
        yield GaugeMetricFamily("nftwatch_head_block", "The node's head block", value=head)
        yield GaugeMetricFamily(
            "nftwatch_lag_blocks", "Blocks behind the head", value=max(0, head - cp)
        )
        behind = 0.0
        if cp_time is not None and head > cp:
            behind = max(0.0, head_time - cp_time.timestamp())
        yield GaugeMetricFamily(
            "nftwatch_lag_seconds",
            "Chain time between the last ingested block and the head",
            value=behind,
        )

    def _count_events(self, s: Session, cp: int | None) -> int:
        """Adds the events of the blocks ingested since the last scrape (an index range scan)."""
        with self._lock:
            if cp is None:
                return self._events
            if self._counted_to is None:
                self._counted_to = cp  # count from the first scrape on: a rate, not a census
                return self._events
            if cp > self._counted_to:
                self._events += ops.events_between(s, self.chain_id, self._counted_to, cp)
                self._counted_to = cp
            return self._events

    def _outbox(self) -> Iterator[Any]:
        try:
            with self.factory() as s:
                backlog = outbox.unsent_count(s)
        except Exception:
            self._fail("outbox")
            return
        yield GaugeMetricFamily(
            "nftwatch_outbox_backlog", "Outbox rows not yet sent", value=backlog
        )

    def _queues(self) -> Iterator[Any]:
        try:
            depths = self.queue_depths()
        except Exception:
            self._fail("broker")
            return
        g = GaugeMetricFamily(
            "nftwatch_queue_depth", "Messages waiting per queue", labels=["queue"]
        )
        for queue, n in sorted(depths.items()):
            g.add_metric([queue], n)
        yield g


class WorkerMetrics:
    """Task latency, failures by error class, and the work done (embeddings, tokens)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.latency = Histogram(
            "nftwatch_task_seconds",
            "Task run time",
            ["task"],
            registry=self.registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
        )
        self.failures = Counter(
            "nftwatch_task_failures",
            "Tasks that raised, by error class",
            ["task", "error_class"],
            registry=self.registry,
        )
        self.retries = Counter(
            "nftwatch_task_retries", "Task-level retries", ["task"], registry=self.registry
        )
        self.embeddings = Counter(
            "nftwatch_embeddings", "Embeddings stored", registry=self.registry
        )
        self.resolved = Counter(
            "nftwatch_tokens_resolved", "Tokens resolved", registry=self.registry
        )
        self._started: dict[str, float] = {}
        self._lock = threading.Lock()

    def started(self, task_id: str) -> None:
        with self._lock:
            self._started[task_id] = time.perf_counter()

    def finished(self, task_id: str, task: str, retval: Any, state: str | None) -> None:
        with self._lock:
            t0 = self._started.pop(task_id, None)
        if t0 is not None:
            self.latency.labels(task).observe(time.perf_counter() - t0)
        if state == "SUCCESS" and isinstance(retval, int):
            if task.endswith("embed_images"):
                self.embeddings.inc(retval)
            elif task.endswith("resolve_tokens"):
                self.resolved.inc(retval)

    def failed(self, task: str, error: BaseException) -> None:
        self.failures.labels(task, error_class(error)).inc()


def error_class(error: BaseException) -> str:
    """Our errors carry a stable ``code``; anything else is named by its type."""
    code = getattr(error, "code", None)
    return code if isinstance(code, str) and code else type(error).__name__


def connect_worker_signals(metrics: WorkerMetrics) -> None:
    """Count every task this process runs. Idempotent (the handlers carry dispatch ids)."""
    from celery import signals

    def prerun(task_id: str = "", **_: Any) -> None:
        metrics.started(task_id)

    def postrun(
        task_id: str = "", task: Any = None, retval: Any = None, state: Any = None, **_: Any
    ) -> None:
        metrics.finished(task_id, getattr(task, "name", "?"), retval, state)

    def failure(sender: Any = None, exception: BaseException | None = None, **_: Any) -> None:
        if exception is not None:
            metrics.failed(getattr(sender, "name", "?"), exception)

    def retry(sender: Any = None, **_: Any) -> None:
        metrics.retries.labels(getattr(sender, "name", "?")).inc()

    signals.task_prerun.connect(prerun, weak=False, dispatch_uid="nftwatch-metrics-prerun")
    signals.task_postrun.connect(postrun, weak=False, dispatch_uid="nftwatch-metrics-postrun")
    signals.task_failure.connect(failure, weak=False, dispatch_uid="nftwatch-metrics-failure")
    signals.task_retry.connect(retry, weak=False, dispatch_uid="nftwatch-metrics-retry")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
