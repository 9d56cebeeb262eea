"""``nftwatch api``: serve the HTTP API."""

from __future__ import annotations

from typing import Annotated

import typer

from nftwatch.cli.app import cli
from nftwatch.cli.common import _node_chain_id, _settings


@cli.command()
def api(
    host: Annotated[str | None, typer.Option(help="Default: NFTWATCH_API_HOST.")] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Default: NFTWATCH_API_PORT.")
    ] = None,
    insecure_no_auth: Annotated[
        bool, typer.Option("--insecure-no-auth", help="Serve /v1 without API keys.")
    ] = False,
    workers: Annotated[
        int, typer.Option(min=1, max=64, envvar="NFTWATCH_API_WORKERS", help="Processes.")
    ] = 2,
    threads: Annotated[
        int,
        typer.Option(
            min=1,
            max=256,
            envvar="NFTWATCH_API_THREADS",
            help="Requests on the database at once per process (its pool's size).",
        ),
    ] = 2,  # ServeConfig.threads: why so few, see there
    header_timeout: Annotated[
        float,
        typer.Option(
            min=0.5, envvar="NFTWATCH_API_HEADER_TIMEOUT", help="Seconds to send headers."
        ),
    ] = 10.0,
    keep_alive: Annotated[
        int,
        typer.Option(min=1, envvar="NFTWATCH_API_KEEP_ALIVE", help="Idle seconds kept open."),
    ] = 20,
    valuation_rate: Annotated[
        str,
        typer.Option(envvar="NFTWATCH_API_VALUATION_RATE", help="Valuation requests per key."),
    ] = "30/minute",
    stream_rate: Annotated[
        str, typer.Option(envvar="NFTWATCH_API_STREAM_RATE", help="Stream opens per key.")
    ] = "20/minute",
    rpc_chain: Annotated[
        list[int] | None,
        typer.Option(help="A chain the workers have an RPC for (repeatable; ETH_RPC_URL's too)."),
    ] = None,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs); keys from `nftwatch keys create` or
    NFTWATCH_API_KEYS.

    Example: nftwatch keys create desk && nftwatch api --port 8080 --workers 4
    """
    from nftwatch.api import create_app
    from nftwatch.api.ratelimit import storage_uri_for
    from nftwatch.api.serve import ServeConfig, serve
    from nftwatch.runtime import open_resources

    s = _settings()
    # the chains a valuation may be asked on; None (not checked) when the node cannot say
    chains: set[int] | None = set(rpc_chain or [])
    if s.rpc_url and chains is not None:
        try:
            chains.add(s.chain_id or _node_chain_id(s))
        except Exception as exc:  # the node is down: serve anyway, without the check
            typer.echo(f"warning: chain id of ETH_RPC_URL unknown ({exc})", err=True)
            chains = None
    with open_resources(s) as res:
        # keys come from the environment and from `nftwatch keys create` (stored hashed);
        # create_app refuses to start when neither has one, unless anonymous use is asked for
        # (checked here, once, before any worker process starts)
        create_app(res.factory, api_keys=s.api_keys, allow_anonymous=insecure_no_auth)
        if insecure_no_auth:
            typer.echo("warning: --insecure-no-auth: /v1 is open while no key exists", err=True)
        prefix = (s.redis_key_prefix or "nftwatch") + ":ratelimit"
        cfg = ServeConfig(
            database_url=res.database_url,
            key_hashes=ServeConfig.hashes_of(s.api_keys),
            allow_anonymous=insecure_no_auth,
            chain_id_default=s.chain_id,
            rpc_chains=None if chains is None else tuple(sorted(chains)),
            workers=workers,
            threads=threads,
            header_timeout_s=header_timeout,
            keep_alive_s=keep_alive,
            valuation_rate=valuation_rate,
            stream_rate=stream_rate,
            rate_limit_storage=storage_uri_for(res.broker_url),
            rate_limit_prefix=prefix,
            log_level=s.log_level,
        )
        serve(cfg, host or s.api_host, port or s.api_port)
