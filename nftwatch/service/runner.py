"""``nftwatch run``: the long-lived service. The head follower, the outbox dispatcher and the
sweeps run as threads; in embedded mode the Celery workers run as supervised child processes.
SIGTERM or SIGINT stops everything gracefully."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable

from listeners.follower import Follower
from listeners.heads import ws_url_for
from listeners.leader import Leader, lead_then_run
from listeners.rpc import Rpc
from nftwatch.observability.logs import setup_logging
from nftwatch.runtime import Resources, worker_env
from nftwatch.service.listings_feed import feed_config, feed_target
from nftwatch.service.metrics_server import serve_metrics
from nftwatch.service.supervisor import BULK_NICE, Supervisor
from nftwatch.service.sweeps import run_sweeps
from store import tokens
from worker.app import configure, prepare_broker
from worker.dispatcher import celery_sender, run_dispatcher

log = logging.getLogger(__name__)


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
            target=run_sweeps,
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
    listings_feed = feed_config(s, chain_id)
    if listings_feed is not None:
        # off-chain listings (OpenSea): stored and valued on the urgent queue like on-chain offers
        threads.append(
            threading.Thread(
                target=_resilient(
                    "listings-feed", feed_target(listings_feed, res.factory, stop), stop
                ),
                name="listings-feed",
            )
        )
    supervisor = Supervisor(s.data_dir / "logs")
    metrics = serve_metrics(res, chain_id, threads)
    try:
        if with_workers:
            env = {
                **worker_env(cfg),
                "ETH_RPC_URL": s.rpc_url,
                "NFTWATCH_CHAIN_ID": str(chain_id),
            }
            _start_workers(supervisor, env, s.metrics_port, f"--rpc={chain_id}={s.rpc_url}")
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


def _start_workers(
    supervisor: Supervisor, env: dict[str, str], metrics_port: int, rpc_arg: str
) -> None:
    # the desk's requests and new listings get a worker of their own: a backfill's burst of
    # resolve work would otherwise hold every thread they could run on
    supervisor.start_worker(
        "urgent-worker",
        _metrics_env(env, metrics_port, 3),
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
        _metrics_env(env, metrics_port, 1),
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
        _metrics_env(env, metrics_port, 2),
        "--queues",
        "embed",
        "--pool",
        "solo",
        rpc_arg,
        nice=BULK_NICE,
    )


def _metrics_env(env: dict[str, str], port: int, offset: int) -> dict[str, str]:
    return {**env, "NFTWATCH_METRICS_PORT": str(port + offset if port else 0)}
