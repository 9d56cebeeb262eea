"""``nftwatch run``: the long-lived service. The head follower and the outbox dispatcher run as
threads; in embedded mode the Celery workers run as supervised child processes. SIGTERM or
SIGINT stops everything gracefully."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from listeners.follower import Follower
from listeners.rpc import Rpc
from nftwatch.runtime import Resources
from nftwatch.supervisor import Supervisor
from store import queries
from store.models import Token
from worker.app import configure, prepare_broker
from worker.dispatcher import celery_sender, run_dispatcher

log = logging.getLogger(__name__)


def sweep_retries(factory: sessionmaker[Session], now: dt.datetime, limit: int = 500) -> int:
    """Re-queue tokens whose retry time has come (Retryable failures, with backoff)."""
    with factory.begin() as s:
        rows = s.execute(
            select(Token.chain_id, Token.contract, Token.token_id, Token.attempts)
            .where(Token.metadata_status == "retry", Token.next_retry_at <= now)
            .limit(limit)
        ).all()
        for chain_id, contract, token_id, attempts in rows:
            queries.enqueue(
                s,
                "resolve",
                "resolve",
                {"chain_id": chain_id, "contract": contract, "token_id": str(token_id)},
                dedupe_key=f"retry:{chain_id}:{contract}:{token_id}:{attempts}",
            )
    return len(rows)


def _sweeper(factory: sessionmaker[Session], stop: threading.Event, interval: float) -> None:
    while not stop.wait(interval):
        try:
            sweep_retries(factory, dt.datetime.now(dt.UTC))
        except Exception:  # the database is restarting: try again next round
            log.exception("retry sweep failed")


def run_service(res: Resources, *, with_workers: bool, poll_interval: float = 1.0) -> None:
    s = res.settings
    if not s.rpc_url:
        raise ValueError("ETH_RPC_URL is not set: nftwatch run needs a node to follow")
    rpc = Rpc(s.rpc_url)
    chain_id = s.chain_id or rpc.chain_id()
    addresses = [a.lower() for a in s.collections] or None
    with res.factory.begin() as session:
        for address in addresses or []:
            queries.upsert_collection(session, chain_id, address)
    cfg = res.worker_config({chain_id: s.rpc_url})
    app = configure(cfg)
    prepare_broker(app)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    follower = Follower(rpc, res.factory, chain_id, addresses, confirmations=s.confirmations)
    threads: list[threading.Thread] = [
        threading.Thread(target=follower.run, args=(stop, poll_interval), name="follower"),
        threading.Thread(
            target=run_dispatcher, args=(res.factory, celery_sender(app), stop), name="dispatcher"
        ),
        threading.Thread(target=_sweeper, args=(res.factory, stop, 30.0), name="retry-sweep"),
    ]
    supervisor = Supervisor(s.data_dir / "logs")
    try:
        if with_workers:
            env = _env(cfg, chain_id, s.rpc_url)
            rpc_arg = f"--rpc={chain_id}={s.rpc_url}"
            supervisor.start_worker(
                "resolve-worker",
                env,
                "--queues",
                "urgent,resolve",
                "--pool",
                "threads",
                "--concurrency",
                "8",
                rpc_arg,
            )
            supervisor.start_worker(
                "embed-worker", env, "--queues", "embed", "--pool", "solo", rpc_arg
            )
        for t in threads:
            t.start()
        log.info(
            "following chain %s from %s",
            chain_id,
            "all contracts" if not addresses else f"{len(addresses)} collections",
        )
        while not stop.wait(2.0):
            supervisor.check()
    finally:
        stop.set()
        for t in threads:
            if t.is_alive():
                t.join(timeout=10)
        supervisor.stop_all()
        rpc.close()


def _env(cfg: Any, chain_id: int, rpc_url: str) -> dict[str, str]:
    env = {
        "DATABASE_URL": cfg.database_url,
        "CELERY_BROKER_URL": cfg.broker_url,
        "ETH_RPC_URL": rpc_url,
        "NFTWATCH_CHAIN_ID": str(chain_id),
    }
    if cfg.ipfs_gateways:
        env["IPFS_GATEWAYS"] = ",".join(cfg.ipfs_gateways)
    if cfg.allow_hosts:
        env["NFTWATCH_ALLOW_HOSTS"] = ",".join(cfg.allow_hosts)
    return env
