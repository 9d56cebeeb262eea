"""The one exception root of ``nftvision``.

    NftVisionError
    ├── Retryable                  worth trying again later
    └── Permanent                  retrying the same input gives the same answer
        └── MissingWeights         a model's pretrained weights are not available offline

Fetching and decoding a token's media raise ``tokenmeta.errors``; vision raises only these.
Every error has a stable ``code`` (its class name).
"""

from __future__ import annotations


class NftVisionError(Exception):
    """Root of every error raised by nftvision."""

    retryable: bool = False

    @property
    def code(self) -> str:
        return type(self).__name__


class Retryable(NftVisionError):
    retryable = True


class Permanent(NftVisionError):
    retryable = False


class MissingWeights(Permanent):
    pass
