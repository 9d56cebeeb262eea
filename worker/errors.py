"""The exception root of ``worker``.

WorkerError
├── Retryable
│   └── RPCUnavailable       the node timed out, refused or answered 5xx/429
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


class RPCUnavailable(Retryable):
    pass


class TokenURIReverted(Permanent):
    pass


class BadTokenURIResult(Permanent):
    pass
