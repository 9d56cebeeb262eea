"""The outbox dispatcher against the real Redis broker: rows become Celery messages, are marked
sent only once the broker accepted them, and a failed send loses nothing."""

from __future__ import annotations

import json
import uuid

import pytest
import redis
from sqlalchemy import select

from store import outbox
from store.db import make_engine, make_sessionmaker
from store.models import Outbox
from worker.app import EMBED_TASK, RESOLVE_TASK, VALUE_TASK, configure
from worker.config import WorkerConfig
from worker.dispatcher import RESOLVE_BATCH, celery_sender, dispatch_once, plan_messages


def _queue_messages(client: redis.Redis, key: str) -> list[dict]:
    return [json.loads(raw) for raw in client.lrange(key, 0, -1)]


@pytest.fixture
def celery_redis(db_url: str, redis_url: str, redis_prefix: str):
    prefix = f"{redis_prefix}{uuid.uuid4().hex[:6]}:"
    app = configure(
        WorkerConfig(database_url=db_url, broker_url=redis_url, redis_key_prefix=prefix)
    )
    client = redis.Redis.from_url(redis_url)
    yield app, client, prefix
    client.close()


def _fill_outbox(factory, tokens: int) -> None:
    with factory.begin() as s:
        for i in range(tokens):
            outbox.enqueue(
                s,
                "resolve",
                "resolve",
                {
                    "chain_id": 1,
                    "contract": "0x" + "aa" * 20,
                    "token_id": str(i),
                    "block_number": 5,
                },
                dedupe_key=f"resolve:1:aa:{i}",
            )
        # re-recording the same event adds nothing
        outbox.enqueue(
            s,
            "resolve",
            "resolve",
            {"chain_id": 1, "contract": "0x" + "aa" * 20, "token_id": "0", "block_number": 5},
            dedupe_key="resolve:1:aa:0",
        )
        outbox.enqueue(s, "embed", "embed", {"image_sha256": "ab" * 32}, dedupe_key="embed:ab")
        outbox.enqueue(
            s,
            "value",
            "urgent",
            {"chain_id": 1, "contract": "0x" + "aa" * 20, "token_id": "7", "reason": "listing"},
            dedupe_key="value:1:x",
        )


def test_outbox_rows_become_batched_messages_on_redis(db_url: str, celery_redis) -> None:
    app, client, prefix = celery_redis
    engine = make_engine(db_url)
    factory = make_sessionmaker(engine)
    _fill_outbox(factory, tokens=RESOLVE_BATCH + 4)

    sent = dispatch_once(factory, celery_sender(app))

    assert sent == RESOLVE_BATCH + 4 + 2
    resolve = _queue_messages(client, f"{prefix}resolve")
    assert [m["headers"]["task"] for m in resolve] == [RESOLVE_TASK, RESOLVE_TASK]
    assert [m["headers"]["task"] for m in _queue_messages(client, f"{prefix}embed")] == [EMBED_TASK]
    assert [m["headers"]["task"] for m in _queue_messages(client, f"{prefix}urgent")] == [
        VALUE_TASK
    ]
    with factory() as s:
        assert s.scalar(select(Outbox).where(Outbox.sent_at.is_(None))) is None
    assert dispatch_once(factory, celery_sender(app)) == 0  # nothing is sent twice
    engine.dispose()


def test_a_failed_send_leaves_every_row_unsent(db_url: str, celery_redis) -> None:
    app, _client, _prefix = celery_redis
    engine = make_engine(db_url)
    factory = make_sessionmaker(engine)
    _fill_outbox(factory, tokens=3)
    real = celery_sender(app)
    calls = []

    def flaky(name, kwargs, queue):
        calls.append(name)
        if len(calls) == 2:
            raise ConnectionError("broker went away")
        real(name, kwargs, queue)

    with pytest.raises(ConnectionError):
        dispatch_once(factory, flaky)
    with factory() as s:
        assert outbox.unsent_count(s) == 5
    # the retry re-sends everything; duplicates are harmless because tasks are idempotent
    assert dispatch_once(factory, real) == 5
    with factory() as s:
        assert outbox.unsent_count(s) == 0
    engine.dispose()


def test_plan_groups_resolve_rows_by_contract_and_dedupes_ids() -> None:
    rows = [
        outbox.OutboxRow(
            i, "resolve", "resolve", {"chain_id": 1, "contract": c, "token_id": str(t)}
        )
        for i, (c, t) in enumerate([("0xa", 1), ("0xb", 1), ("0xa", 2), ("0xa", 1)])
    ]
    plan = plan_messages(rows)
    assert sorted((kw["contract"], kw["token_ids"]) for _, kw, _ in plan) == [
        ("0xa", ["1", "2"]),
        ("0xb", ["1"]),
    ]
