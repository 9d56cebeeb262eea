"""The HTTP API: a thin FastAPI face over ``store`` for the loan desk (``/v1``, API keys)."""

from nftwatch.api.app import create_app

__all__ = ["create_app"]
