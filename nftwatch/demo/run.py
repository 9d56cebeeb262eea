"""The demo's orchestration: start every server it needs, tell the on-chain story, run the
pipeline through real Celery workers, and report what was stored and what it means."""

from __future__ import annotations

import contextlib
import random
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.orm import Session, sessionmaker

from listeners.backfill import backfill
from listeners.follower import Follower
from listeners.rpc import Rpc
from nftwatch.demo import content, report, world
from nftwatch.localstack import chaintools
from nftwatch.localstack.embedded import Anvil, EmbeddedPostgres, EmbeddedRedis
from nftwatch.localstack.ipfs_gateway import LocalIpfsGateway
from nftwatch.runtime import worker_env
from nftwatch.service.supervisor import BULK_NICE, Supervisor
from nftwatch.settings import Settings
from store import ops, tokens, valuations
from store.db import ensure_schema, make_engine, make_sessionmaker
from worker.app import configure, prepare_broker
from worker.config import WorkerConfig
from worker.dispatcher import celery_sender, run_dispatcher

CHAIN_ID = 31337
SEED = 7


def run_demo(
    settings: Settings,
    *,
    tokens_per_collection: int = 24,
    out_dir: Path | None = None,
    as_json: bool = False,
    timeout: float = 900.0,
    serve_port: int | None = None,
) -> dict[str, Any]:
    """Start embedded Postgres, embedded Redis as the broker (or CELERY_BROKER_URL when set),
    anvil and a local IPFS gateway, then run the story."""
    _interrupt_on_signals()
    console = Console(stderr=as_json)
    demo_dir = settings.data_dir / "demo"
    out_dir = out_dir or demo_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        console.log(
            "starting embedded Postgres + pgvector, "
            + ("embedded Redis, " if settings.broker_url is None else "")
            + "anvil and a local IPFS gateway"
        )
        local = start_local_stack(stack, demo_dir / "postgres", settings.broker_url)
        summary = run_story(
            database_url=local.database_url,
            broker_url=local.broker_url,
            node=local.node,
            gateway=local.gateway,
            settings=settings,
            tokens_per_collection=tokens_per_collection,
            work_dir=demo_dir,
            out_dir=out_dir,
            console=console,
            timeout=timeout,
            after=_desk_server(serve_port, console, as_json)
            if serve_port is not None
            else _print_summary(console, as_json),
        )
    return summary


def _print_summary(
    console: Console, as_json: bool
) -> Callable[[sessionmaker[Session], dict[str, Any]], None]:
    def show(factory: sessionmaker[Session], summary: dict[str, Any]) -> None:
        if not as_json:
            report.render(summary, console)

    return show


def _desk_server(
    port: int, console: Console, as_json: bool
) -> Callable[[sessionmaker[Session], dict[str, Any]], None]:
    """Print the summary, then serve the API and desk page over the demo's data, with workers
    still running, until Ctrl-C."""

    def serve(factory: sessionmaker[Session], summary: dict[str, Any]) -> None:
        import secrets

        import uvicorn

        from nftwatch.api import create_app

        if not as_json:
            report.render(summary, console)
        key = secrets.token_urlsafe(16)
        console.rule("the loan desk")
        console.print(
            f"desk page: http://127.0.0.1:{port}/   API key: [bold]{key}[/bold]   "
            "(Ctrl-C stops the demo)"
        )
        uvicorn.run(
            create_app(factory, api_keys=[key], chain_id_default=CHAIN_ID),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )

    return serve


def run_story(
    *,
    database_url: str,
    broker_url: str,
    node: Anvil,
    gateway: LocalIpfsGateway,
    settings: Settings,
    tokens_per_collection: int,
    work_dir: Path,
    out_dir: Path,
    console: Console,
    timeout: float = 900.0,
    listed: int = 3,
    after: Callable[[sessionmaker[Session], dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Everything after the servers: workers, dispatcher, the on-chain story, backfill and live
    follow, then the report. Stops what it started, also on Ctrl-C."""
    say = console.log
    ensure_schema(database_url)
    with contextlib.ExitStack() as stack:
        engine = make_engine(database_url)
        stack.callback(engine.dispose)
        factory = make_sessionmaker(engine)
        cfg = local_worker_config(settings, database_url, broker_url, node, gateway)
        app = configure(cfg)
        prepare_broker(app)
        supervisor = Supervisor(work_dir / "logs")
        stack.callback(supervisor.stop_all)
        env = worker_env(cfg, log_level="WARNING")
        rpc_arg = f"--rpc={CHAIN_ID}={node.url}"
        # urgent work (new listings) on a worker of its own, as in `nftwatch run`
        supervisor.start_worker(
            "urgent-worker", env, "--queues", "urgent", "--pool", "threads", "--concurrency",
            "2", rpc_arg,
        )  # fmt: skip
        supervisor.start_worker(
            "resolve-worker", env, "--queues", "resolve", "--pool", "threads", "--concurrency",
            "4", rpc_arg, nice=BULK_NICE,
        )  # fmt: skip
        supervisor.start_worker(
            "embed-worker", env, "--queues", "embed", "--pool", "solo", rpc_arg, nice=BULK_NICE
        )
        say(f"Celery workers started (logs in {supervisor.log_dir})")

        stop = threading.Event()
        stack.callback(stop.set)
        dispatcher = threading.Thread(
            target=run_dispatcher,
            args=(factory, celery_sender(app), stop),
            daemon=True,
            name="dispatcher",
        )
        dispatcher.start()

        # ---- the on-chain story
        rng = random.Random(SEED)
        say(f"generating {tokens_per_collection} tokens in each of five collection styles")
        collections = content.build_collections(tokens_per_collection, seed=SEED)
        base_uris = [content.publish(gateway, c) for c in collections]
        w3 = chaintools.connect(node.url)
        accounts: list[Any] = list(w3.eth.accounts)
        holders = [str(account) for account in accounts[1:9]]
        say(
            "deploying our contracts (OpenZeppelin ERC-721, CryptoPunks market, Seaport-shaped "
            "market) and minting"
        )
        deployed = world.deploy(w3, collections, base_uris)
        market = chaintools.deploy(w3, "DemoMarket", w3.eth.accounts[0])
        with factory.begin() as s:
            for d in deployed:
                tokens.upsert_collection(s, CHAIN_ID, d.address, d.collection.name, d.standard)
        minted = world.mint_all(w3, deployed, holders, rng)
        say(f"minted {minted} tokens; trading (sales and transfers)")
        stats = world.trade(w3, deployed, market, holders, rng)
        addresses = [d.address for d in deployed]

        # ---- history by backfill, then the live follower for what comes next
        rpc = Rpc(node.url)
        stack.callback(rpc.close)
        head = rpc.get_block_number()
        say(f"backfilling blocks 0..{head}")
        backfill(rpc, factory, CHAIN_ID, 0, head, addresses)
        follower = Follower(
            rpc, factory, CHAIN_ID, addresses, confirmations=0, start_block=head + 1
        )
        follower_thread = threading.Thread(
            target=follower.run, args=(stop, 0.25), daemon=True, name="follower"
        )
        follower_thread.start()
        total_tokens = sum(len(c.tokens) for c in collections)
        _wait_for_pipeline(factory, total_tokens, len(cfg.extractors), supervisor, console, timeout)

        # Listed once the history is embedded, so that every listing's valuation has visual
        # comparables to show (a listing during the backfill burst may find none embedded yet).
        punks = next(d for d in deployed if d.standard == "cryptopunks")
        listings = world.list_punks(w3, punks, rng, count=listed)
        say(
            f"listed {len(listings)} punks on the market contract: the follower picks them up "
            "live and the desk values them on the urgent queue"
        )
        _wait_for(
            lambda: _listing_valuations(factory, listings) == len(listings),
            supervisor,
            timeout=120,
            what="valuations of the new listings",
        )

        summary = report.build(
            factory,
            chain_id=CHAIN_ID,
            collections={d.address: d.collection.name for d in deployed},
            extractors=list(cfg.extractors),
            trade_stats=stats,
            listings=listings,
            out_dir=out_dir,
            worker_config=cfg,
        )
        if after is not None:
            after(factory, summary)
        stop.set()
        follower_thread.join(timeout=5)
        dispatcher.join(timeout=5)
    return summary


def local_worker_config(
    settings: Settings,
    database_url: str,
    broker_url: str,
    node: Anvil,
    gateway: LocalIpfsGateway,
    *,
    device: str | None = None,
) -> WorkerConfig:
    """Workers for a local chain and gateway: the gateway is the only IPFS source and the only
    host the SSRF guard lets through."""
    return WorkerConfig(
        database_url=database_url,
        broker_url=broker_url,
        rpc_urls={CHAIN_ID: node.url},
        ipfs_gateways=(gateway.base_url,),
        allow_hosts=(gateway.netloc,),
        extractors=settings.extractors,
        device=device or settings.device,
        weights_dir=str(settings.weights_dir) if settings.weights_dir else None,
        redis_key_prefix=settings.redis_key_prefix,
    )


def _interrupt_on_signals() -> None:
    """Ctrl-C and SIGTERM both unwind through the clean-up below, even where the parent shell
    started us with SIGINT ignored (a background job)."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, interrupt)
        signal.signal(signal.SIGTERM, interrupt)


@contextlib.contextmanager
def _fresh_server(kind: type[EmbeddedPostgres | EmbeddedRedis], path: Path) -> Iterator[str]:
    """The demo's own database or broker, empty each run: a server a killed run left behind
    is adopted, then shut down and its data deleted, so nothing stale reaches this run."""
    if path.exists():
        leftover = kind(path, persistent=False)
        with contextlib.suppress(Exception):
            leftover.start()
        leftover.stop()
        shutil.rmtree(path, ignore_errors=True)
    server = kind(path, persistent=False)
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


@dataclass(frozen=True)
class LocalStack:
    database_url: str
    broker_url: str
    node: Anvil
    gateway: LocalIpfsGateway


def start_local_stack(
    stack: contextlib.ExitStack,
    postgres_dir: Path,
    broker_url: str | None,
    redis_dir: Path | None = None,
) -> LocalStack:
    """A new embedded Postgres in ``postgres_dir``, anvil and a local IPFS gateway, each stopped
    by ``stack``; the broker is ``broker_url``, or else a new embedded Redis in ``redis_dir``
    (default: beside ``postgres_dir``)."""
    database_url = stack.enter_context(_fresh_server(EmbeddedPostgres, postgres_dir))
    if broker_url is None:
        broker_url = stack.enter_context(
            _fresh_server(EmbeddedRedis, redis_dir or postgres_dir.parent / "redis")
        )
    node = Anvil(chain_id=CHAIN_ID)
    node.start()
    stack.callback(node.stop)
    gateway = LocalIpfsGateway()
    gateway.start()
    stack.callback(gateway.stop)
    return LocalStack(database_url, broker_url, node, gateway)


def _counts(factory: sessionmaker[Session], extractors: int) -> tuple[int, int, int]:
    with factory() as s:
        done, images, vectors = ops.pipeline_progress(s)
    return done, images * extractors, vectors


def _wait_for_pipeline(
    factory: sessionmaker[Session],
    total: int,
    extractors: int,
    supervisor: Supervisor,
    console: Console,
    timeout: float,
) -> None:
    columns = (
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        resolving = progress.add_task("tokens resolved", total=total)
        embedding = progress.add_task("vectors stored", total=total * extractors)
        deadline = time.monotonic() + timeout
        while True:
            supervisor.check()
            done, wanted, vectors = _counts(factory, extractors)
            progress.update(resolving, completed=done)
            progress.update(embedding, completed=vectors, total=max(wanted, 1))
            if done >= total and vectors >= wanted:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"pipeline incomplete after {timeout:.0f}s: {done}/{total} "
                    f"tokens resolved, {vectors}/{wanted} vectors"
                )
            time.sleep(0.5)


def _listing_valuations(
    factory: sessionmaker[Session], listings: list[tuple[str, int, int]]
) -> int:
    with factory() as s:
        return sum(
            1
            for contract, token_id, _ in listings
            if valuations.latest_valuation(s, CHAIN_ID, contract, token_id) is not None
        )


def _wait_for(
    check: Callable[[], bool], supervisor: Supervisor, *, timeout: float, what: str
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        supervisor.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.25)
