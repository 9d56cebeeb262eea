"""The one exception root of ``valuation``.

ValuationError
├── Retryable                  worth trying again later
└── Permanent                  retrying the same input gives the same answer
    ├── InvalidSalesData       a sales file that cannot be read as sales (``valuation.sales``)
    └── MissingPunksData       the CryptoPunks traits are not installed (``valuation.punks``)
"""

from __future__ import annotations


class ValuationError(Exception):
    """Root of every error raised by valuation."""

    retryable: bool = False

    @property
    def code(self) -> str:
        return type(self).__name__


class Retryable(ValuationError):
    retryable = True


class Permanent(ValuationError):
    retryable = False
