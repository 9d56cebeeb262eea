"""``nftwatch run``: the long-lived service. The head follower and the outbox dispatcher run as
threads; in embedded mode the Celery workers run as supervised child processes. SIGTERM or
SIGINT stops everything gracefully."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from prometheus_client import CollectorRegistry
from sqlalchemy import and_, bindparam, not_, select, text
from sqlalchemy.orm import Session, sessionmaker

from listeners.follower import Follower
from listeners.heads import ws_url_for
from listeners.leader import Leader, lead_then_run
from listeners.rpc import Rpc
from nftwatch.observability.logs import setup_logging
from nftwatch.observability.metrics import ServiceCollector, redis_queue_depths, sql_queue_depths
from nftwatch.observability.server import MetricsServer
from nftwatch.runtime import Resources, worker_env
from nftwatch.service.supervisor import BULK_NICE, Supervisor
from store import outbox, tokens
from store.models import Token
from worker.app import configure, prepare_broker, redis_client_url
from worker.dispatcher import celery_sender, run_dispatcher

log = logging.getLogger(__name__)

# Sent outbox rows are kept this long (seconds), then deleted by the sweep.
OUTBOX_RETENTION = 30 * 86400.0


def sweep_retries(factory: sessionmaker[Session], now: dt.datetime, limit: int = 500) -> int:
    """Re-queue tokens whose retry time has come (Retryable failures, with backoff)."""
    with factory.begin() as s:
        rows = s.execute(
            select(Token.chain_id, Token.contract, Token.token_id, Token.next_retry_at)
            .where(Token.metadata_status == "retry", Token.next_retry_at <= now)
            .limit(limit)
        ).all()
        for chain_id, contract, token_id, retry_at in rows:
            # keyed by the retry time: attempts restart after a success, the time never repeats
            outbox.enqueue(
                s,
                "resolve",
                "resolve",
                {"chain_id": chain_id, "contract": contract, "token_id": str(token_id)},
                dedupe_key=f"retry:{chain_id}:{contract}:{token_id}:{_stamp(retry_at)}",
            )
    return len(rows)


def _stamp(at: dt.datetime | None) -> str:
    return f"{at.timestamp():.6f}" if at is not None else "-"


# Metadata served over http(s) can change in place; content-addressed URIs (ipfs://, ar://,
# data:, gateway URLs naming a CID) cannot, so only other http(s) URLs (IPNS names included)
# are checked again.
_MUTABLE_URI = and_(
    Token.token_uri.regexp_match(r"^https?://", "i"),
    not_(Token.token_uri.regexp_match(r"/ipfs/|\.ipfs\.|arweave\.net/", "i")),
)


def sweep_stale(
    factory: sessionmaker[Session], now: dt.datetime, ttl: float, limit: int = 500
) -> int:
    """Re-queue resolved tokens whose http(s) metadata is older than ``ttl`` seconds, oldest
    first; once per resolution (the key carries the resolve time)."""
    cutoff = now - dt.timedelta(seconds=ttl)
    with factory.begin() as s:
        rows = s.execute(
            select(Token.chain_id, Token.contract, Token.token_id, Token.resolved_at)
            .where(Token.metadata_status == "ok", Token.resolved_at <= cutoff, _MUTABLE_URI)
            .order_by(Token.resolved_at)
            .limit(limit)
        ).all()
        for chain_id, contract, token_id, resolved_at in rows:
            outbox.enqueue(
                s,
                "resolve",
                "resolve",
                {"chain_id": chain_id, "contract": contract, "token_id": str(token_id)},
                dedupe_key=f"recheck:{chain_id}:{contract}:{token_id}:{_stamp(resolved_at)}",
            )
    return len(rows)


# A sent row whose work is still undone after ``resend_after`` lost its message: Redis restarted
# without persistence, or a worker was SIGKILLed and its acked-late message waits out the
# visibility timeout. Sending it again is safe because every task is idempotent. Only rows sent
# within ``horizon`` are looked at (the partial index ix_outbox_sent): an unfinished row is sent
# again every ``resend_after``, so an older one is finished or out of attempts, and the scan
# stays as cheap after months as on the first day.
_RESEND = text(
    """
    UPDATE outbox o SET sent_at = NULL
    WHERE o.sent_at < :cutoff AND o.sent_at >= :horizon AND o.attempts < :max_attempts AND (
      (o.task = 'resolve' AND EXISTS (
        SELECT 1 FROM tokens t
        WHERE t.chain_id = (o.payload->>'chain_id')::bigint
          AND t.contract = o.payload->>'contract'
          AND t.token_id = (o.payload->>'token_id')::numeric
          AND t.metadata_status = 'pending'))
      OR (o.task = 'embed' AND (
        SELECT count(*) FROM embeddings e
        WHERE e.image_sha256 = o.payload->>'image_sha256' AND e.extractor IN :extractors
      ) < :n_extractors)
    )
    """
).bindparams(bindparam("extractors", expanding=True))


def resend_unfinished(
    factory: sessionmaker[Session],
    now: dt.datetime,
    resend_after: float,
    extractors: tuple[str, ...],
    max_attempts: int = 20,
    horizon: float = 86400.0,
) -> int:
    """Mark unsent again the outbox rows sent more than ``resend_after`` seconds ago (and less
    than ``horizon``, at least four times ``resend_after``) whose work is not done (token still
    pending, image short of an extractor's embedding); the dispatcher sends them again. Returns
    how many."""
    cutoff = now - dt.timedelta(seconds=resend_after)
    oldest = now - dt.timedelta(seconds=max(horizon, 4 * resend_after))
    with factory.begin() as s:
        result = s.execute(
            _RESEND,
            {
                "cutoff": cutoff,
                "horizon": oldest,
                "max_attempts": max_attempts,
                "extractors": list(extractors),
                "n_extractors": len(extractors),
            },
        )
    return int(getattr(result, "rowcount", 0) or 0)


_PRUNE = text(
    """
    DELETE FROM outbox WHERE id IN (
      SELECT id FROM outbox WHERE sent_at IS NOT NULL AND sent_at < :before LIMIT :batch)
    """
)


def prune_sent(
    factory: sessionmaker[Session], now: dt.datetime, retention: float, batch: int = 5000
) -> int:
    """Delete outbox rows sent more than ``retention`` seconds ago, ``batch`` rows a transaction
    (short locks); returns how many. Their work is done or dead-lettered by then; only a
    re-recording of an event that old (a backfill run again over its range) sends its idempotent
    task once more."""
    before = now - dt.timedelta(seconds=retention)
    total = 0
    while True:
        with factory.begin() as s:
            result = s.execute(_PRUNE, {"before": before, "batch": batch})
        deleted = int(getattr(result, "rowcount", 0) or 0)
        total += deleted
        if deleted < batch:
            return total


def _sweeper(
    factory: sessionmaker[Session],
    stop: threading.Event,
    interval: float,
    resend_after: float = 900.0,
    extractors: tuple[str, ...] = (),
    recheck_ttl: float = 86400.0,
    retention: float = OUTBOX_RETENTION,
) -> None:
    while not stop.wait(interval):
        try:
            now = dt.datetime.now(dt.UTC)
            sweep_retries(factory, now)
            sweep_stale(factory, now, recheck_ttl)
            prune_sent(factory, now, retention)
            if extractors:
                resent = resend_unfinished(factory, now, resend_after, extractors)
                if resent:
                    log.warning("re-sending %d outbox rows whose work never finished", resent)
        except Exception:  # the database is restarting: try again next round
            log.exception("retry sweep failed")


def _resilient(name: str, target: Callable[[], None], stop: threading.Event) -> Callable[[], None]:
    """Run ``target`` until ``stop``; an unexpected exception (the database restarting, the node
    gone) is logged and the loop restarted after a pause instead of ending the thread."""

    def loop() -> None:
        pause = 1.0
        while not stop.is_set():
            started = time.monotonic()
            try:
                target()
            except Exception:
                log.exception("%s failed; restarting it", name)
            if time.monotonic() - started > 60:
                pause = 1.0
            stop.wait(pause)
            pause = min(pause * 2, 30.0)

    return loop


def run_service(
    res: Resources,
    *,
    with_workers: bool,
    poll_interval: float = 1.0,
    sweep_interval: float | None = None,
) -> None:
    s = res.settings
    setup_logging(s.log_level)
    if not s.rpc_url:
        raise ValueError("ETH_RPC_URL is not set: nftwatch run needs a node to follow")
    rpc = Rpc(s.rpc_url)
    chain_id = s.chain_id or rpc.chain_id()
    addresses = [a.lower() for a in s.collections] or None
    with res.factory.begin() as session:
        for address in addresses or []:
            tokens.upsert_collection(session, chain_id, address)
    cfg = res.worker_config({chain_id: s.rpc_url})
    app = configure(cfg)
    prepare_broker(app)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    follower = Follower(
        rpc,
        res.factory,
        chain_id,
        addresses,
        confirmations=s.confirmations,
        ws_url=ws_url_for(s.rpc_url),  # new heads wake it; HTTP polling while unavailable
    )
    leader = Leader(res.database_url, chain_id)
    send = celery_sender(app)
    threads: list[threading.Thread] = [
        threading.Thread(
            # one follower per chain: a standby waits here until the leader's lock is free
            target=_resilient(
                "follower",
                lambda: lead_then_run(leader, lambda term: follower.run(term, poll_interval), stop),
                stop,
            ),
            name="follower",
        ),
        threading.Thread(
            target=_resilient("dispatcher", lambda: run_dispatcher(res.factory, send, stop), stop),
            name="dispatcher",
        ),
        threading.Thread(
            target=_sweeper,
            args=(
                res.factory,
                stop,
                sweep_interval or min(30.0, max(1.0, s.resend_after / 3)),
                float(s.resend_after),
                cfg.extractors,
            ),
            name="retry-sweep",
        ),
    ]
    supervisor = Supervisor(s.data_dir / "logs")
    metrics = _metrics_server(res, chain_id, threads)
    try:
        if with_workers:
            env = {
                **worker_env(cfg),
                "ETH_RPC_URL": s.rpc_url,
                "NFTWATCH_CHAIN_ID": str(chain_id),
            }
            rpc_arg = f"--rpc={chain_id}={s.rpc_url}"
            # the desk's requests and new listings get a worker of their own: a backfill's
            # burst of resolve work would otherwise hold every thread they could run on
            supervisor.start_worker(
                "urgent-worker",
                _metrics_env(env, s.metrics_port, 3),
                "--queues",
                "urgent",
                "--pool",
                "threads",
                "--concurrency",
                "4",
                rpc_arg,
            )
            supervisor.start_worker(
                "resolve-worker",
                _metrics_env(env, s.metrics_port, 1),
                "--queues",
                "resolve",
                "--pool",
                "threads",
                "--concurrency",
                "8",
                rpc_arg,
                nice=BULK_NICE,
            )
            supervisor.start_worker(
                "embed-worker",
                _metrics_env(env, s.metrics_port, 2),
                "--queues",
                "embed",
                "--pool",
                "solo",
                rpc_arg,
                nice=BULK_NICE,
            )
        for t in threads:
            t.start()
        log.info(
            "following chain %s from %s",
            chain_id,
            "all contracts" if not addresses else f"{len(addresses)} collections",
        )
        while not stop.wait(2.0):
            for name in supervisor.restart_dead():
                log.error("%s exited; started it again", name)
        log.info("stopping: the follower and dispatcher finish their batch, workers their tasks")
    finally:
        stop.set()
        for t in threads:
            if t.is_alive():
                t.join(timeout=30)
        # acked-late messages of a task cut short go back to the broker, or come back by resend
        supervisor.stop_all(timeout=30)
        if metrics is not None:
            metrics.stop()
        leader.close()
        rpc.close()
        log.info("stopped")


def _metrics_env(env: dict[str, str], port: int, offset: int) -> dict[str, str]:
    return {**env, "NFTWATCH_METRICS_PORT": str(port + offset if port else 0)}


def _metrics_server(
    res: Resources, chain_id: int, threads: list[threading.Thread]
) -> MetricsServer | None:
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
            _queue_depths(res.broker_url, s.redis_key_prefix, res.factory),
        )
    )

    def health() -> tuple[bool, dict[str, Any]]:
        alive = {t.name: t.is_alive() for t in threads}
        try:
            with res.factory() as session:
                session.execute(text("SELECT 1"))
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


def _queue_depths(
    broker_url: str, prefix: str | None, factory: sessionmaker[Session]
) -> Callable[[], dict[str, int]]:
    client_url = redis_client_url(broker_url)  # the embedded broker's unix socket too
    if client_url is not None:
        client = redis.Redis.from_url(client_url, socket_timeout=5)
        return lambda: redis_queue_depths(client, prefix)

    def sql() -> dict[str, int]:
        with factory() as session:
            return sql_queue_depths(session)

    return sql
