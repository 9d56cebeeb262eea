"""API keys: only their SHA-256 hashes are kept, and every check compares against all of them in
constant time so that neither timing nor a memory dump gives a key away."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence


def key_hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class KeyChecker:
    def __init__(self, api_keys: Sequence[str]) -> None:
        keys = [k for k in api_keys if k]
        self._hashes = tuple(key_hash(k) for k in keys)

    @property
    def configured(self) -> bool:
        return bool(self._hashes)

    def check(self, presented: str | None) -> bool:
        if not presented:
            return False
        digest = key_hash(presented)
        ok = False
        for h in self._hashes:  # no early exit: the time taken does not say which key matched
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
