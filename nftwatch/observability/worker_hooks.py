"""Observability of a ``nftwatch worker`` process: structured logs, task metrics, and its own
``/metrics`` + ``/healthz`` server on ``NFTWATCH_METRICS_PORT`` (0: none). Hooked on Celery's
``worker_init`` signal, so it runs in the worker process only."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
from typing import Any

from nftwatch import settings as settings_mod
from nftwatch.observability.logs import setup_logging
from nftwatch.observability.metrics import WorkerMetrics, connect_worker_signals
from nftwatch.observability.server import MetricsServer

log = logging.getLogger(__name__)

_state: dict[str, Any] = {}


_PR_SET_PDEATHSIG = 1


def follow_parent_out() -> None:
    """Under a supervisor, ask Linux for SIGTERM (a warm shutdown) when the supervisor dies, so a
    SIGKILLed ``nftwatch run`` leaves no worker behind."""
    parent = os.environ.get("NFTWATCH_SUPERVISOR_PID")
    if not parent or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != int(parent):  # it died before we asked
        os.kill(os.getpid(), signal.SIGTERM)


def on_worker_init(**_: Any) -> None:
    follow_parent_out()
    s = settings_mod.load()
    setup_logging(s.log_level)
    metrics = WorkerMetrics()
    connect_worker_signals(metrics)
    _state["metrics"] = metrics
    if s.metrics_port:
        server = MetricsServer(metrics.registry, host=s.metrics_host, port=s.metrics_port)
        try:
            server.start()
        except OSError as exc:  # a busy port must not keep the worker from working
            log.warning("worker metrics not served on port %d: %s", s.metrics_port, exc)
        else:
            _state["server"] = server


def install() -> None:
    from celery import signals

    signals.worker_init.connect(on_worker_init, weak=False, dispatch_uid="nftwatch-observe")
