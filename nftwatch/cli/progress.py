"""Progress of long commands on stderr, so that ``--json`` output on stdout stays parseable.

On a terminal: a live bar with the count, rates, elapsed time and ETA. Off a terminal (cron,
systemd, a pipe): one plain line at most every ``interval`` seconds and one at the end, since a
redrawn bar there is either invisible or a wall of control characters."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class ProgressReport:
    """``update(done, total, rate="…")`` from the work's own callback; a context manager."""

    def __init__(
        self,
        description: str,
        total: int,
        *,
        stream: TextIO | None = None,
        interval: float = 5.0,
    ) -> None:
        self.description = description
        self.total = total
        self.done = 0
        self.rate = ""
        self._stream = stream or sys.stderr
        self._interval = interval
        self._last_line = -float("inf")
        self._last_done = -1  # the count the last plain line showed
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        if self._stream.isatty():
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(file=self._stream),
                transient=False,
            )

    def __enter__(self) -> ProgressReport:
        if self._bar is not None:
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=self.total, rate="")
        self._started = time.monotonic()
        return self

    def update(self, done: int, total: int | None = None, *, rate: str = "") -> None:
        self.done = done
        self.total = total if total is not None else self.total
        self.rate = rate
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=done, total=self.total, rate=rate)
            return
        now = time.monotonic()
        if now - self._last_line >= self._interval:
            self._last_line = now
            self._line()

    def _line(self) -> None:
        elapsed = time.monotonic() - self._started
        self._last_done = self.done
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        rate = f", {self.rate}" if self.rate else ""
        self._stream.write(
            f"{self.description}: {self.done:,}/{self.total:,}{share}{rate}, {elapsed:.0f}s\n"
        )
        self._stream.flush()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif exc_type is None and self.done != self._last_done:
            self._line()  # the final count, even when the last line was moments ago
