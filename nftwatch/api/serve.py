"""Serving the API: uvicorn with several worker processes, each with its own database pool
sized to the requests it runs at once, timeouts against slow clients, and a log line for every
closed connection.

uvicorn starts each worker process afresh (spawn) and builds the app there by calling
:func:`app_from_environment`, which reads the :class:`ServeConfig` the parent wrote into the
environment (``NFTWATCH_API_SERVE``, JSON). The parent has already started any embedded
database and migrated it, so a worker only connects. Keys travel as their SHA-256 only."""

from __future__ import annotations

import copy
import dataclasses
import fcntl
import json
import logging
import os
import socket
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from fastapi import FastAPI
from uvicorn.supervisors import multiprocess

from nftwatch.api.auth import key_hash

ENV = "NFTWATCH_API_SERVE"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeConfig:
    database_url: str
    key_hashes: tuple[str, ...] = ()  # hex SHA-256 of the configured keys
    allow_anonymous: bool = False
    chain_id_default: int | None = None
    rpc_chains: tuple[int, ...] | None = None
    workers: int = 2
    # requests one worker runs at once, each on a pooled connection of its own; few, because
    # its threads share one GIL: at 50 clients 8 threads spent 11 % more CPU a request than at
    # 10, 2 threads 2 % (bench/bench_api.py); more processes, not threads, use more cores
    threads: int = 2
    pool_size: int | None = None  # None: threads (+2 overflow for the key reads and health)
    max_overflow: int | None = None
    header_timeout_s: float = 10.0
    keep_alive_s: int = 20
    limit_concurrency: int | None = 512  # connections per worker before 503s
    valuation_rate: str = "30/minute"
    stream_rate: str = "20/minute"
    rate_limit_storage: str = "memory://"
    rate_limit_prefix: str = "nftwatch-ratelimit"
    log_level: str = "info"
    protocol: str = "guarded"  # guarded (header timeout, close logging) | h11 (uvicorn's own)
    # seconds a worker may take to answer the supervisor's ping, from its start on: uvicorn's
    # 5 s is shorter than a spawn and its imports take on a busy host, where it then kills and
    # restarts every worker for ever; a worker that is really hung is found this much later
    worker_healthcheck_s: int = 60
    # several workers: a listening socket each (SO_REUSEPORT), so the kernel balances them
    own_sockets: bool = True

    @staticmethod
    def hashes_of(keys: Sequence[str]) -> tuple[str, ...]:
        return tuple(key_hash(k).hex() for k in keys if k)

    def to_env(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_env(cls, raw: str) -> ServeConfig:
        values = json.loads(raw)
        values["key_hashes"] = tuple(values.get("key_hashes") or ())
        if values.get("rpc_chains") is not None:
            values["rpc_chains"] = tuple(values["rpc_chains"])
        return cls(**values)


def build_app(cfg: ServeConfig) -> FastAPI:
    """The app one worker process serves, with its own engine."""
    from sqlalchemy import create_engine

    from nftwatch.api import create_app, protocol
    from nftwatch.api.ratelimit import RateLimits
    from store.db import make_sessionmaker, sqlalchemy_url

    protocol.configure(cfg.header_timeout_s)
    pool = cfg.pool_size if cfg.pool_size is not None else cfg.threads
    overflow = cfg.max_overflow if cfg.max_overflow is not None else 2
    engine = create_engine(
        sqlalchemy_url(cfg.database_url),
        pool_size=pool,
        max_overflow=overflow,
        pool_timeout=10,  # then 503 with Retry-After, not a request that hangs
        pool_pre_ping=True,
    )
    return create_app(
        make_sessionmaker(engine),
        api_keys=[],
        key_hashes=[bytes.fromhex(h) for h in cfg.key_hashes],
        chain_id_default=cfg.chain_id_default,
        allow_anonymous=cfg.allow_anonymous,
        rpc_chains=cfg.rpc_chains,
        rate_limits=RateLimits(
            valuation_requests=cfg.valuation_rate,
            stream_opens=cfg.stream_rate,
            storage_uri=cfg.rate_limit_storage,
            key_prefix=cfg.rate_limit_prefix,
        ),
        threads=cfg.threads,
    )


def app_from_environment() -> FastAPI:
    """uvicorn's app factory in every worker process."""
    raw = os.environ.get(ENV)
    if not raw:
        raise RuntimeError(f"{ENV} is not set: start the API with `nftwatch api`")
    return build_app(ServeConfig.from_env(raw))


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging, with the connection log and the API's own lines beside its own."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    for name in ("nftwatch.api", "nftwatch.api.connections"):
        config["loggers"][name] = {"handlers": ["default"], "level": level.upper()}
    config["loggers"]["nftwatch.api.connections"]["propagate"] = False
    config["loggers"]["nftwatch.api"]["propagate"] = False
    return config


def serve(cfg: ServeConfig, host: str, port: int) -> None:
    """Run the server in the foreground until it is stopped (SIGINT/SIGTERM)."""
    import uvicorn

    os.environ[ENV] = cfg.to_env()  # for the worker processes, which read it at start
    http: Any = "h11"
    if cfg.protocol == "guarded":
        from nftwatch.api.protocol import GuardedH11Protocol, configure

        configure(cfg.header_timeout_s)
        http = GuardedH11Protocol
    options: dict[str, Any] = {
        "factory": True,
        "host": host,
        "port": port,
        "workers": cfg.workers,
        "http": http,
        "timeout_keep_alive": cfg.keep_alive_s,
        "limit_concurrency": cfg.limit_concurrency,
        "timeout_graceful_shutdown": 10,
        "timeout_worker_healthcheck": cfg.worker_healthcheck_s,
        "log_level": cfg.log_level.lower(),
        "log_config": log_config(cfg.log_level),
        "access_log": False,
        "lifespan": "on",
    }
    factory = "nftwatch.api.serve:app_from_environment"
    if cfg.workers > 1 and cfg.own_sockets and hasattr(socket, "SO_REUSEPORT"):
        _serve_on_own_sockets(uvicorn.Config(factory, **options), host, port)
    else:
        uvicorn.run(factory, **options)


# ------------------------------------------------------------ one listening socket per worker
#
# On one shared listening socket, asyncio accepts every pending connection on one wake-up, so
# clients that connect together land on one worker and stay there while kept alive (measured:
# 50 connections split 50/0, 28/22, 43/7 between two workers); that worker is one core (its
# GIL) while the others idle. With a socket per worker bound with SO_REUSEPORT the kernel
# spreads connections over them by address. The sockets are made and held by the supervisor:
# a worker that dies leaves its socket listening, and its connections wait in the backlog for
# the worker that replaces it.

_HELD: list[IO[str]] = []  # this worker's claim on its socket, held while it lives


def _reuseport_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sockets: list[socket.socket] = []
    for _ in range(count):
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        address = sock.getsockname()  # port 0: the others join the port the first one got
        sock.set_inheritable(True)
        sockets.append(sock)
    return sockets


def _claim_path(supervisor: int, index: int) -> Path:
    return Path(tempfile.gettempdir()) / f"nftwatch-api-{supervisor}-{index}.lock"


def _claim(count: int) -> int | None:
    """The index of a socket no live worker of this supervisor listens on (a lock on a file
    per socket, which the kernel releases when its worker dies); None when all are taken."""
    for index in range(count):
        handle = _claim_path(os.getppid(), index).open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _HELD.append(handle)
        return index
    return None


class OwnSocketProcess(multiprocess.Process):
    """A uvicorn worker that listens on one of the supervisor's sockets only."""

    def target(self, sockets: list[socket.socket] | None = None) -> None:
        index = _claim(len(sockets)) if sockets else None
        super().target(sockets if index is None or sockets is None else [sockets[index]])


def _serve_on_own_sockets(config: Any, host: str, port: int) -> None:
    sockets = _reuseport_sockets(host, port, config.workers)
    bound = sockets[0].getsockname()
    log.info("serving on %s:%s, one socket per worker (%d)", bound[0], bound[1], len(sockets))
    # the supervisor builds its workers, and their replacements, from this name
    multiprocess.Process = OwnSocketProcess  # type: ignore[misc]
    try:
        multiprocess.Multiprocess(config, sockets=sockets).run()
    finally:
        for index in range(len(sockets)):
            _claim_path(os.getpid(), index).unlink(missing_ok=True)
        for sock in sockets:
            sock.close()
