"""What a worker process needs to know, passed in by the entry point (never read from the
environment here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class WorkerConfig:
    database_url: str
    broker_url: str
    rpc_urls: dict[int, str] = field(default_factory=dict)  # chain id -> JSON-RPC URL
    ipfs_gateways: tuple[str, ...] = ()
    ipfs_api_url: str | None = None
    allow_hosts: tuple[str, ...] = ()
    extractors: tuple[str, ...] = ("gradient-v1", "effnet-lite0-v1")
    device: str = "cpu"
    weights_dir: str | None = None
    redis_key_prefix: str | None = None  # isolates several deployments on one Redis
    resolve_concurrency: int = 16
    max_attempts: int = 8
    # requests per second by host ("*": every other host), shared by all workers on a Redis broker
    rate_limits: dict[str, float] = field(default_factory=dict)
    rate_burst: int = 4

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rpc_urls"] = {str(k): v for k, v in self.rpc_urls.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkerConfig:
        values = dict(data)
        values["rpc_urls"] = {int(k): v for k, v in values.get("rpc_urls", {}).items()}
        for key in ("ipfs_gateways", "allow_hosts", "extractors"):
            values[key] = tuple(values.get(key, ()))
        return cls(**values)
