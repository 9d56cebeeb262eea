"""The bulk-ingest interpreter settings are scoped: overlapping users share them and the last one
out restores what the first one found."""

from __future__ import annotations

import gc
import sys
import threading

from listeners.pipeline import bulk_tuning


def test_bulk_tuning_applies_and_restores_settings() -> None:
    before = (gc.get_threshold(), sys.getswitchinterval())
    with bulk_tuning(gc_gen0=50_000, switch_interval=0.001):
        assert gc.get_threshold()[0] == 50_000
        assert sys.getswitchinterval() == 0.001
        with bulk_tuning(gc_gen0=70_000):  # nested: the outer settings stay
            assert gc.get_threshold()[0] == 50_000
        assert gc.get_threshold()[0] == 50_000
    assert (gc.get_threshold(), sys.getswitchinterval()) == before


def test_overlapping_threads_restore_once_the_last_one_leaves() -> None:
    before = (gc.get_threshold(), sys.getswitchinterval())
    entered, release = threading.Event(), threading.Event()

    def other() -> None:
        with bulk_tuning():
            entered.set()
            release.wait(5)

    t = threading.Thread(target=other)
    with bulk_tuning():
        t.start()
        assert entered.wait(5)
    # this thread left first: the other one still runs tuned
    assert gc.get_threshold()[0] == 100_000
    release.set()
    t.join(5)
    assert (gc.get_threshold(), sys.getswitchinterval()) == before
