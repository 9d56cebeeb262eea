"""The Celery application and its hardening.

Queues: ``resolve`` (I/O bound, many threads), ``embed`` (one solo process per GPU or the CPU),
``urgent`` (desk requests and new listings, ahead of any backfill)."""

from __future__ import annotations

import time

from celery import Celery
from kombu import pools as kombu_pools

from store.locks import broker_setup_lock
from worker.config import WorkerConfig

RESOLVE_TASK = "nftwatch.resolve_tokens"
EMBED_TASK = "nftwatch.embed_images"
VALUE_TASK = "nftwatch.value_token"

QUEUES = ("urgent", "resolve", "embed")

app = Celery("nftwatch", include=["worker.tasks"])


# kombu's Redis URLs: TCP, TLS, and a unix socket (the embedded default's)
REDIS_SCHEMES = ("redis://", "rediss://", "redis+socket://")


def is_redis_url(broker_url: str) -> bool:
    return broker_url.startswith(REDIS_SCHEMES)


def redis_client_url(broker_url: str) -> str | None:
    """The redis-py URL of a Redis broker (kombu's ``redis+socket:///path`` is redis-py's
    ``unix:///path``); None for any other transport."""
    if broker_url.startswith("redis+socket://"):
        return "unix://" + broker_url.removeprefix("redis+socket://")
    return broker_url if is_redis_url(broker_url) else None


def configure(cfg: WorkerConfig) -> Celery:
    """Point the app at its broker and hand the tasks their configuration."""
    _drop_connection_pools()
    transport_options: dict[str, object] = {}
    if is_redis_url(cfg.broker_url):
        # longer than the longest task, so an acked-late message is not redelivered while it runs
        transport_options["visibility_timeout"] = 3600
        if cfg.redis_key_prefix:
            transport_options["global_keyprefix"] = cfg.redis_key_prefix
    app.conf.update(
        broker_url=cfg.broker_url,
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport_options,
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue="resolve",
        task_time_limit=900,
        task_soft_time_limit=840,
        task_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        nftwatch=cfg.to_dict(),
    )
    return app


def _drop_connection_pools() -> None:
    """Forget pooled broker connections and producers, so that a reconfigured app (a second
    demo run or test in one process) publishes with its new URL and key prefix. Celery does the
    same after a fork."""
    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None
    kombu_pools.reset()


def _open_channel(celery: Celery, *, sql_tables: bool = False) -> None:
    with celery.connection_for_write() as conn:
        conn.ensure_connection(max_retries=3)
        channel = conn.default_channel
        # the SQL transport creates its tables with its first session and a row per queue on
        # first use: workers consuming together would race to insert the same one (kombu_queue's
        # unique name), so this process declares them all first (which opens the session)
        if sql_tables:
            for queue in QUEUES:
                channel.queue_declare(queue=queue)


def prepare_broker(celery: Celery) -> None:
    """Open one channel before any worker starts: kombu's SQLAlchemy transport creates its
    tables on first use, and workers starting together would race to do it."""
    url = str(celery.conf.broker_url or "")
    for attempt in range(3):
        try:
            if url.startswith("sqla+"):  # one process at a time creates the tables
                with broker_setup_lock(url.removeprefix("sqla+")):
                    _open_channel(celery, sql_tables=True)
            else:
                _open_channel(celery)
            return
        except Exception as exc:  # another process created the tables first: they exist now
            if "already exists" not in str(exc) or attempt == 2:
                raise
            time.sleep(0.2)
