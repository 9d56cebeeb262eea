"""What one token's tokenURI read came to, recorded on its row (never raised: a node that fails
the whole request raises :mod:`listeners.errors`, whose ``Retryable`` the tasks retry).

WorkerError
├── Retryable
│   └── TokenURIUnavailable  the node failed that one call without a revert (no reply, or no
│                            state at that block); the sweep reads it again
└── Permanent
    ├── TokenURIReverted     tokenURI/uri reverted (burned or never minted)
    └── BadTokenURIResult    the call returned bytes that are not an ABI string
"""

from __future__ import annotations


class WorkerError(Exception):
    retryable = False

    @property
    def code(self) -> str:
        return type(self).__name__


class Retryable(WorkerError):
    retryable = True


class Permanent(WorkerError):
    retryable = False


class TokenURIUnavailable(Retryable):
    pass


class TokenURIReverted(Permanent):
    pass


class BadTokenURIResult(Permanent):
    pass
