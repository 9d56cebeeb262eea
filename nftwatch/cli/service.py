"""``nftwatch run`` and ``nftwatch worker``: the long-running processes that follow the
chain and do its work."""

from __future__ import annotations

from typing import Annotated

import typer

from nftwatch.cli.app import cli
from nftwatch.cli.common import JsonFlag, _print_json, _rpc_map, _settings


@cli.command()
def worker(
    queues: Annotated[str, typer.Option(help="Comma-separated queues.")] = "urgent,resolve,embed",
    pool: Annotated[
        str, typer.Option(help="solo for GPU/embed workers, threads for I/O.")
    ] = "threads",
    concurrency: Annotated[int, typer.Option(min=1)] = 8,
    rpc: Annotated[list[str] | None, typer.Option(help="CHAIN_ID=URL, repeatable.")] = None,
) -> None:
    """Run a Celery worker on the given queues.

    Example: nftwatch worker --queues embed --pool solo
    """
    from nftwatch.runtime import open_resources
    from worker.app import configure, prepare_broker

    s = _settings()
    with open_resources(s) as res:
        rpc_urls = _rpc_map(rpc, s)
        app = configure(res.worker_config(rpc_urls))
        prepare_broker(app)
        args = [
            "worker",
            "-Q",
            queues,
            "--pool",
            pool,
            "--loglevel",
            s.log_level,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        if pool != "solo":
            args += ["--concurrency", str(concurrency)]
        app.worker_main(args)


@cli.command()
def run(
    workers: Annotated[
        bool, typer.Option(help="Also run Celery workers as child processes.")
    ] = True,
    interval: Annotated[float, typer.Option(help="Head polling interval, seconds.")] = 1.0,
) -> None:
    """Follow the chain head and dispatch work (plus workers, unless --no-workers).

    Example: nftwatch run --no-workers (ETH_RPC_URL=wss://node.example/ws)
    """
    from nftwatch.observability.logs import setup_logging
    from nftwatch.runtime import open_resources
    from nftwatch.service import run_service

    s = _settings()
    setup_logging(s.log_level)  # from the first line on: starting the embedded servers included
    with open_resources(s) as res:
        run_service(res, with_workers=workers, poll_interval=interval)


@cli.command("listings-feed")
def listings_feed(
    duration: Annotated[
        float,
        typer.Option(min=0, help="Seconds to follow the stream; 0: one REST catch-up, then exit."),
    ] = 0.0,
    as_json: JsonFlag = False,
) -> None:
    """Store OpenSea's listings of the watched collections (OPENSEA_API_KEY and
    NFTWATCH_OPENSEA_SLUGS=CONTRACT=SLUG,...); new ones are valued on the urgent queue.

    Example: nftwatch listings-feed --duration 600 (nftwatch run follows it for good)
    """
    import threading

    from listeners.feeds.opensea import OpenSeaFeed
    from nftwatch.runtime import open_resources
    from nftwatch.service.listings_feed import feed_config

    s = _settings()
    config = feed_config(s, s.chain_id or 1)
    if config is None:
        raise typer.BadParameter("OPENSEA_API_KEY is not set", param_hint="environment")
    with open_resources(s) as res:
        feed = OpenSeaFeed(config, res.factory)
        try:
            if duration:
                stop = threading.Event()
                threading.Timer(duration, stop.set).start()
                feed.run(stop)
            else:
                feed.catch_up()
        finally:
            feed.close()
    stats = {k: v for k, v in vars(feed.stats).items() if k != "errors"}
    if as_json:
        _print_json({**stats, "errors": list(feed.stats.errors)})
    else:
        typer.echo(", ".join(f"{k} {v}" for k, v in stats.items()))
