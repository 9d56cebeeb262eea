"""Model fits in a child process of their own, so that a refit never slows urgent work.

A fit is seconds to a minute of numpy and Python. Run in a thread of the urgent worker it holds
the GIL against the threads that receive and run valuations: measured on the freshness bench,
listings that arrived during a background refit waited seconds for a thread to start them. In a
spawned child (never forked: the parent has threads, and may hold CUDA) at nice 5, the fit gets
about a quarter of a core the urgent threads also want (the kernel's weights for nice 0 and 5),
and the thread waiting for it releases the GIL.

One child per worker process, started on the first fit and kept for the next; fits queue on it.
A child that dies (killed for memory, say) fails that fit with :class:`FitCrashed` and is
replaced on the next one; :meth:`FitProcess.close` ends it with the worker.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

FIT_NICE = 5  # below urgent work, above the backfill's resolve and embed workers (nice 10)


class FitCrashed(RuntimeError):
    """The fitting process died before it returned (its fit is lost; the next one restarts it)."""


def _lower_priority(increment: int) -> None:
    try:
        os.nice(increment)
    except OSError:  # not permitted here: the fit still runs, at the worker's priority
        log.warning("could not lower the fitting process's priority by %d", increment)


class FitProcess:
    """Runs functions of picklable arguments in one spawned child process, one at a time."""

    def __init__(self, nice: int = FIT_NICE) -> None:
        self.nice = nice
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in the child; blocks this thread (not the GIL) until done."""
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_lower_priority,
                    initargs=(self.nice,),
                )
            executor = self._executor
        try:
            return executor.submit(fn, *args, **kwargs).result()
        except BrokenProcessPool as exc:
            with self._lock:
                if self._executor is executor:
                    self._executor = None
            raise FitCrashed(f"the fitting process died during {fn.__name__}") from exc

    def start(self) -> None:
        """Start the child now (importing numpy takes seconds), so that no fit's time counts it."""
        self.run(os.getpid)

    def close(self) -> None:
        """End the child now, a fit in progress included (its caller gets :class:`FitCrashed`)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is None:
            return
        # the executor has no public way to stop a running call: terminate its process
        processes = list((getattr(executor, "_processes", None) or {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(5)


FITTER = FitProcess()  # one fitting process per worker process, shared by every model cache
