"""A task's automatic retry waits at least as long as the node or gateway asked."""

from __future__ import annotations

from listeners.errors import RpcUnavailable
from tokenmeta.errors import RateLimited
from worker.tasks import RETRY_POLICY, RETRYABLE, RetryAfterTask, retry_countdown


def test_a_longer_retry_after_replaces_the_backoff() -> None:
    assert retry_countdown(2.0, RpcUnavailable("429", retry_after=30.0)) == 30.0
    assert retry_countdown(4.0, RateLimited("429", retry_after=7.0)) == 7.0


def test_the_backoff_stands_when_it_is_longer_or_nothing_was_asked() -> None:
    assert retry_countdown(60.0, RpcUnavailable("429", retry_after=30.0)) == 60.0
    assert retry_countdown(3.0, RpcUnavailable("502")) == 3.0
    assert retry_countdown(3.0, ValueError("no retry_after")) == 3.0
    assert retry_countdown(None, RpcUnavailable("429", retry_after=5.0)) is None


def test_node_and_gateway_errors_are_retried_by_tasks_that_honour_retry_after() -> None:
    assert issubclass(RpcUnavailable, RETRYABLE)
    assert issubclass(RateLimited, RETRYABLE)
    assert RETRY_POLICY["base"] is RetryAfterTask
