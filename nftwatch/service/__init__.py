"""``nftwatch run``, the long-lived service: :func:`run_service` starts it; the sweeps it runs
are public for the tests that drive them one round at a time."""

from nftwatch.service.runner import run_service
from nftwatch.service.sweeps import prune_sent, resend_unfinished, sweep_retries, sweep_stale

__all__ = ["prune_sent", "resend_unfinished", "run_service", "sweep_retries", "sweep_stale"]
