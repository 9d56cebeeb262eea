"""Retry timing: exponential backoff with full jitter, honouring a server's Retry-After."""

from __future__ import annotations

import datetime as dt
import random

BASE_SECONDS = 30.0
CAP_SECONDS = 6 * 3600.0


def next_retry(
    attempts: int,
    *,
    now: dt.datetime,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> dt.datetime:
    """When to try again after ``attempts`` failures (1 = the first failure)."""
    ceiling = min(CAP_SECONDS, BASE_SECONDS * 2 ** max(0, attempts - 1))
    delay = (rng or random).uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return now + dt.timedelta(seconds=delay)
