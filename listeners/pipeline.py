"""Overlap reading and writing: a writer thread records decoded chunks, in order, while the
caller fetches and decodes the next ones.

Recording is mostly waiting on Postgres (the GIL is free meanwhile) and fetching is waiting on the
node, so on a small machine the two halves run side by side. The queue is bounded: a slow database
holds the reader back instead of filling memory. Chunks are written strictly in submission order,
each in its own transaction with its checkpoint, so a crash still resumes after the last chunk
committed.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
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
