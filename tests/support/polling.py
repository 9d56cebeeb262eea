"""Waiting for a condition, with a deadline that fails the test by name."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(
    what: str, check: Callable[[], bool], timeout: float = 30.0, *, interval: float = 0.1
) -> None:
    """Return once ``check()`` is true; an AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")
