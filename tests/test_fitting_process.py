"""Model fits run in a spawned child process at a lower CPU priority: a child that dies fails
only its fit (the previous model keeps serving, the next fit starts a new child), and closing
the worker ends a fit in progress instead of waiting for it."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from typing import Any

import pytest

from tests.test_valuation_cache import CHAIN, CONTRACT, _add_sale, _value_token, ctx  # noqa: F401
from worker.context import WorkerContext
from worker.fitting import FitCrashed, FitProcess
from worker.valuing import ModelCache


@pytest.fixture
def fitter() -> Any:
    process = FitProcess(nice=3)
    yield process
    process.close()


def test_a_fit_runs_in_a_child_process_at_lower_priority(fitter: FitProcess) -> None:
    child = fitter.run(os.getpid)
    assert child != os.getpid()
    assert fitter.run(os.nice, 0) == os.nice(0) + 3
    assert fitter.run(os.getpid) == child  # the child is kept for the next fit


def test_a_dead_child_fails_its_fit_and_the_next_fit_gets_a_new_one(fitter: FitProcess) -> None:
    first = fitter.run(os.getpid)
    with pytest.raises(FitCrashed, match="died during _exit"):
        fitter.run(os._exit, 1)
    second = fitter.run(os.getpid)
    assert second not in (first, os.getpid())


def test_closing_ends_a_fit_in_progress(fitter: FitProcess) -> None:
    fitter.run(os.getpid)  # started
    outcome: list[BaseException | None] = []

    def long_fit() -> None:
        try:
            fitter.run(time.sleep, 600)
            outcome.append(None)
        except BaseException as exc:  # recorded for the assertion
            outcome.append(exc)

    thread = threading.Thread(target=long_fit)
    thread.start()
    time.sleep(0.5)  # the sleep is running in the child
    fitter.close()
    thread.join(60)  # a hang would be the fit's whole 600 s
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], FitCrashed)
    assert fitter.run(os.getpid) != os.getpid()  # and it starts again when asked


class _DiesOnRefit(FitProcess):
    """The first fit runs; every later one kills its child, as the kernel's OOM killer would."""

    def __init__(self) -> None:
        super().__init__()
        self.fits = 0

    def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if fn is os.getpid:  # start(): the child is up
            return super().run(fn)
        self.fits += 1
        if self.fits == 1:
            return super().run(fn, *args, **kwargs)
        return super().run(os._exit, 9)


def test_a_refit_whose_process_dies_keeps_the_previous_model_serving(
    ctx: WorkerContext,  # noqa: F811
) -> None:
    fitter = _DiesOnRefit()
    try:
        cache = ModelCache(refit_interval_s=0.0, cost_factor=0.0, fitter=fitter)
        first = _value_token(ctx, cache, 4)
        assert first["method"] == "fitted"
        with ctx.factory.begin() as s:  # a new sale makes the fit stale: a refit starts
            _add_sale(s, 1000, 4, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1), 30.0)
        _value_token(ctx, cache, 4)
        cache.wait()
        assert fitter.fits == 2
        after = _value_token(ctx, cache, 4)
        assert after["method"] == "fitted"
        assert after["fit_version"] == first["fit_version"]  # the previous fit, still serving
        assert after["sales_seen"] == 241  # over the new sales all the same
        entry = cache._entries[(CHAIN, CONTRACT)]
        assert entry.error is not None and "died" in entry.error
    finally:
        fitter.close()
