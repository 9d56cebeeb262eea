"""Overlap reading and writing: a writer thread records decoded chunks, in order, while the
caller fetches and decodes the next ones.

Recording is mostly waiting on Postgres (the GIL is free meanwhile) and fetching is waiting on the
node, so on a small machine the two halves run side by side. The queue is bounded: a slow database
holds the reader back instead of filling memory. Chunks are written strictly in submission order,
each in its own transaction with its checkpoint, so a crash still resumes after the last chunk
committed.
"""

from __future__ import annotations

import gc
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType

from sqlalchemy.orm import Session, sessionmaker

Job = Callable[[Session], None]


class Writer:
    """``submit(job)`` runs ``job(session)`` inside ``session_factory.begin()`` on the writer
    thread. A failed job stops the writer; its exception is raised by the next ``submit`` or by
    ``close``."""

    def __init__(self, session_factory: sessionmaker[Session], depth: int = 2) -> None:
        self._sessions = session_factory
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="chain-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if self._error is not None:
                continue  # drain: the reader learns of the failure on its next submit
            try:
                with self._sessions.begin() as s:
                    job(s)
            except BaseException as exc:  # handed to the reader thread
                self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, job: Job) -> None:
        self._raise()
        self._queue.put(job)

    def close(self) -> None:
        """Wait for every submitted job; raise the first failure."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._raise()

    def __enter__(self) -> Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
        else:
            # the reader failed: let queued chunks finish (each is consistent on its own)
            self._queue.put(None)
            self._thread.join()


_tuning_lock = threading.Lock()
_tuning_users = 0
_saved_gc: tuple[int, int, int] = gc.get_threshold()
_saved_switch = sys.getswitchinterval()


@contextmanager
def bulk_tuning(gc_gen0: int = 100_000, switch_interval: float = 0.0005) -> Iterator[None]:
    """Interpreter settings for a bulk ingest (a reading thread that decodes and a writer thread
    that mostly waits on Postgres), restored afterwards. Both are process-wide: overlapping uses
    (threads, nesting) share them, and the last one out restores what the first one in found.

    - The cyclic garbage collector's youngest generation runs every ``gc_gen0`` allocations
      instead of every 700. Each chunk allocates some 10^5 events, token deltas and rows that all
      live until the chunk is committed; with the default threshold the collector runs every few
      hundred of them and walks the survivors again at each generation: a third of the decoding
      time and a quarter of the reading thread's CPU on the ingest benchmark. The ingest creates
      no reference cycles, so the only cost is that other code's rare cycles are freed later.
    - The GIL switch interval drops from 5 ms to ``switch_interval``: each time Postgres answers,
      the writer thread needs the GIL back, and while the reading thread decodes it waited up to
      the whole interval for it, after every statement and every COPY buffer (the first chunk's
      write took half as long again as the others on the ingest benchmark)."""
    global _tuning_users, _saved_gc, _saved_switch
    with _tuning_lock:
        if _tuning_users == 0:
            _saved_gc = gc.get_threshold()
            _saved_switch = sys.getswitchinterval()
            gc.set_threshold(max(gc_gen0, _saved_gc[0]), *_saved_gc[1:])
            sys.setswitchinterval(min(switch_interval, _saved_switch))
        _tuning_users += 1
    try:
        yield
    finally:
        with _tuning_lock:
            _tuning_users -= 1
            if _tuning_users == 0:
                gc.set_threshold(*_saved_gc)
                sys.setswitchinterval(_saved_switch)
