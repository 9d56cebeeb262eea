"""Thin, idempotent tasks: they take ids, re-read state, call ``nftvision`` and ``store``, and
queue follow-up work through the outbox in the same transaction as their results."""

from __future__ import annotations

from typing import Any

from celery import Task
from celery.signals import worker_shutdown
from sqlalchemy.exc import OperationalError

import listeners.errors as chain_errors
import tokenmeta.errors as fetch_errors
from worker.app import EMBED_TASK, RESOLVE_TASK, VALUE_TASK, app
from worker.context import WorkerContext, context_from
from worker.embedding import embed_stored
from worker.fitting import FITTER
from worker.resolving import resolve_batch

# Only these are worth a task-level retry (the database restarting, a node or gateway down);
# per-token failures are recorded on the token and retried by the sweep instead.
RETRYABLE = (OperationalError, fetch_errors.Retryable, chain_errors.Retryable)


def retry_countdown(backoff: float | None, exc: BaseException | None) -> float | None:
    """The wait before a retry: the task's own backoff, but never less than what the node or
    gateway asked for (``retry_after``, from a 429/503's Retry-After)."""
    asked = getattr(exc, "retry_after", None)
    if asked is None or backoff is None:
        return backoff
    return max(float(backoff), float(asked))


class RetryAfterTask(Task):
    """A task whose automatic retries honour the error's ``retry_after``."""

    def retry(self, *args: Any, exc: BaseException | None = None, **kwargs: Any) -> Any:
        if "countdown" in kwargs:
            kwargs["countdown"] = retry_countdown(kwargs["countdown"], exc)
        return super().retry(*args, exc=exc, **kwargs)


RETRY_POLICY: dict[str, Any] = {
    "base": RetryAfterTask,
    "autoretry_for": RETRYABLE,
    "retry_backoff": 2,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 8,
}


def _ctx() -> WorkerContext:
    return context_from(app.conf.nftwatch)


@worker_shutdown.connect
def _end_fitting(**_: Any) -> None:
    """A fit in progress is not worth a slower shutdown: the next worker fits again."""
    FITTER.close()


@app.task(name=RESOLVE_TASK, bind=True, **RETRY_POLICY)
def resolve_tokens(
    self: Task,
    chain_id: int,
    contract: str,
    token_ids: list[str],
    blocks: dict[str, int] | None = None,
) -> int:
    """Resolve a batch of tokens of one contract (``blocks``: token id -> the event's block,
    where its tokenURI is read); returns how many resolved."""
    at = {int(t): int(b) for t, b in (blocks or {}).items()}
    return resolve_batch(_ctx(), chain_id, contract, [int(t) for t in token_ids], blocks=at)


@app.task(name=EMBED_TASK, bind=True, **RETRY_POLICY)
def embed_images(self: Task, image_sha256s: list[str]) -> int:
    """Embed a batch of stored images with every configured extractor."""
    return embed_batch(_ctx(), image_sha256s)


@app.task(name=VALUE_TASK, bind=True, **RETRY_POLICY)
def value_token(self: Task, chain_id: int, contract: str, token_id: str, **reason: Any) -> int:
    """Value one token now (desk requests and new listings come through the urgent queue)."""
    from worker.valuing import value_now

    return value_now(_ctx(), chain_id, contract, int(token_id), reason=reason.get("reason", ""))


# ------------------------------------------------------------------ the work itself


def embed_batch(ctx: WorkerContext, image_sha256s: list[str]) -> int:
    """Embed stored images with every configured extractor; returns how many vectors it stored."""
    return embed_stored(ctx, ctx.config.extractors, image_sha256s)
