"""Operations: workers started by any ``nftwatch`` command log structured lines and serve
their metrics (the hook fires only in a Celery worker process)."""

from __future__ import annotations

from nftwatch.observability import worker_hooks

worker_hooks.install()
