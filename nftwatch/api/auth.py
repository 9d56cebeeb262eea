"""API keys: only their SHA-256 hashes are kept, and every check compares against all of them in
constant time so that neither timing nor a memory dump gives a key away."""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)


def key_hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class KeyChecker:
    """Keys from configuration plus, when ``stored`` is given, the active keys stored in the
    database (re-read at most every ``ttl`` seconds, so a revocation takes effect quickly)."""

    def __init__(
        self,
        api_keys: Sequence[str],
        stored: Callable[[], Sequence[bytes]] | None = None,
        ttl: float = 5.0,
        hashes: Sequence[bytes] = (),
    ) -> None:
        # ``hashes``: configured keys already hashed (how a server hands them to its workers)
        self._static = tuple(key_hash(k) for k in api_keys if k) + tuple(hashes)
        self._stored = stored
        self._ttl = ttl
        self._cached: tuple[bytes, ...] = ()
        self._cached_at = -math.inf
        self._lock = threading.Lock()

    def _hashes(self) -> tuple[bytes, ...]:
        if self._stored is not None:
            with self._lock:
                if time.monotonic() - self._cached_at > self._ttl:
                    try:
                        self._cached = tuple(self._stored())
                    except Exception:  # database unreachable: keep what we knew, fail closed
                        log.warning("could not read stored API keys; using the last known")
                    self._cached_at = time.monotonic()
            return self._static + self._cached
        return self._static

    @property
    def configured(self) -> bool:
        return bool(self._static) or bool(self._hashes())

    def check(self, presented: str | None) -> bool:
        if not presented:
            return False
        return self.check_digest(key_hash(presented))

    def check_digest(self, digest: bytes) -> bool:
        """Whether the key with this hash is (still) valid: a long stream asks again."""
        ok = False
        for h in self._hashes():  # no early exit: the time taken does not say which key matched
            ok |= hmac.compare_digest(digest, h)
        return ok


def presented_key(x_api_key: str | None, authorization: str | None) -> str | None:
    """The key from ``X-API-Key``, else from ``Authorization: Bearer <key>``."""
    if x_api_key:
        return x_api_key.strip()
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None
