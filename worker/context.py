"""Per-process resources of a worker, built lazily from the app's configuration: one engine,
one session factory, and each model loaded once."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from store.db import make_engine, make_sessionmaker
from store.vectors import ensure_vector_index
from worker.config import WorkerConfig


@dataclass
class WorkerContext:
    config: WorkerConfig
    _extractors: dict[str, Any] = field(default_factory=dict)
    _indexed: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.config.database_url, pool_size=4)

    @cached_property
    def factory(self) -> sessionmaker[Session]:
        return make_sessionmaker(self.engine)

    @cached_property
    def rpc_client(self) -> httpx.Client:
        """One pooled, thread-safe HTTP client for every JSON-RPC read of this process."""
        return httpx.Client(timeout=20.0, limits=httpx.Limits(max_connections=32))

    def rpc_url(self, chain_id: int) -> str:
        try:
            return self.config.rpc_urls[chain_id]
        except KeyError:
            raise LookupError(f"no RPC URL configured for chain {chain_id}") from None

    def extractor(self, name: str) -> Any:
        """Load an extractor once per process (the embed queue runs one solo process per
        device, so the model stays resident)."""
        with self._lock:
            if name not in self._extractors:
                from nftvision.extractors import get_extractor

                weights_dir = Path(self.config.weights_dir) if self.config.weights_dir else None
                self._extractors[name] = get_extractor(
                    name, device=self.config.device, weights_dir=weights_dir
                )
            return self._extractors[name]

    def ensure_index(self, name: str, dim: int) -> None:
        if name not in self._indexed:
            ensure_vector_index(self.engine, name, dim)
            self._indexed.add(name)


_context: WorkerContext | None = None
_context_lock = threading.Lock()


def context_from(conf: dict[str, Any]) -> WorkerContext:
    global _context
    with _context_lock:
        if _context is None:
            _context = WorkerContext(WorkerConfig.from_dict(conf))
        return _context


def reset_context() -> None:
    global _context
    with _context_lock:
        _context = None
