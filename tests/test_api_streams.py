"""The listing stream on the live server (worker processes, real Postgres): a revoked key's
open stream ends; a bad cursor or Last-Event-ID is refused, never echoed back; opening
streams is rate-limited per key."""

from __future__ import annotations

import json
import secrets

import httpx
import pytest

from nftwatch.api.auth import key_hash
from store import keys
from store.db import make_engine, make_sessionmaker
from tests.support.api import config, live_api

STATIC_KEY = "static-desk-key-0123456789"


def store_key(db_url: str, name: str) -> str:
    key = secrets.token_urlsafe(24)
    engine = make_engine(db_url)
    with make_sessionmaker(engine).begin() as s:
        keys.add_api_key(s, name, key_hash(key).hex())
    engine.dispose()
    return key


def revoke(db_url: str, name: str) -> None:
    engine = make_engine(db_url)
    with make_sessionmaker(engine).begin() as s:
        assert keys.revoke_api_key(s, name)
    engine.dispose()


def test_revoking_a_key_ends_its_open_stream(db_url: str) -> None:
    key = store_key(db_url, "desk")
    with live_api(config(db_url, [STATIC_KEY])) as api:
        headers = {"X-API-Key": key}
        url = f"{api.base}/v1/listings/stream?duration=600"
        events: list[tuple[str, str]] = []
        # a stream asked to last ten minutes; the read timeout only bounds a silent server
        with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(5, read=60)) as r:
            assert r.status_code == 200, r.read()
            kind = None
            for line in r.iter_lines():
                if line.startswith("id: ") and not events:
                    events.append(("open", line[4:]))
                    revoke(db_url, "desk")  # while the stream is open
                elif line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind:
                    events.append((kind, line[6:]))
        assert events[0][0] == "open"
        assert events[-1] == ("end", json.dumps({"reason": "key revoked"}))
        # and it cannot come back: the reconnect is refused
        again = httpx.get(url, headers=headers, timeout=10)
        assert again.status_code == 401
        # the configured key's streams are untouched by another key's revocation
        short = f"{api.base}/v1/listings/stream?duration=1"
        with httpx.stream("GET", short, headers={"X-API-Key": STATIC_KEY}, timeout=30) as r:
            body = r.read().decode()
        assert r.status_code == 200 and '"reason": "duration"' in body


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ("cursor", "9223372036854775808-0-0"),
        ("cursor", "1-2147483648-0"),
        ("cursor", "1-0-9223372036854775808"),
        ("cursor", "1" * 5000 + "-0-0"),
        ("cursor", "1-\x00-0"),
        ("Last-Event-ID", "9223372036854775808-0-0"),
        ("Last-Event-ID", "garbage"),
    ],
)
def test_stream_refuses_a_bad_cursor_with_422_and_sends_no_id(
    db_url: str, where: str, value: str
) -> None:
    from fastapi.testclient import TestClient

    from nftwatch.api import create_app

    engine = make_engine(db_url)
    app = create_app(make_sessionmaker(engine), api_keys=[STATIC_KEY])
    with TestClient(app, headers={"X-API-Key": STATIC_KEY}) as client:
        if where == "cursor":
            r = client.get("/v1/listings/stream", params={"cursor": value, "duration": 1})
        else:
            r = client.get("/v1/listings/stream?duration=1", headers={"Last-Event-ID": value})
    engine.dispose()
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert "id:" not in r.text
    detail = json.dumps(r.json()["detail"])
    assert "cursor" in detail or "Last-Event-ID" in detail


def test_stream_opens_are_rate_limited_per_key(
    db_url: str, redis_url: str, redis_prefix: str
) -> None:
    """Counted in Redis (under this session's prefix), so both worker processes share one
    count."""
    prefix = f"{redis_prefix}ratelimit-{secrets.token_hex(4)}"
    cfg = config(
        db_url,
        [STATIC_KEY, "other-key-0123456789"],
        stream_rate="3/minute",
        rate_limit_storage=redis_url,
        rate_limit_prefix=prefix,
    )
    with live_api(cfg) as api:
        url = f"{api.base}/v1/listings/stream?duration=1"
        codes = []
        with httpx.Client(timeout=30) as client:
            for _ in range(5):
                # a fresh connection each time: the requests reach both worker processes
                r = client.get(url, headers={"X-API-Key": STATIC_KEY, "Connection": "close"})
                codes.append(r.status_code)
            refused = client.get(url, headers={"X-API-Key": STATIC_KEY})
            other = client.get(url, headers={"X-API-Key": "other-key-0123456789"})
        assert codes == [200, 200, 200, 429, 429]
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert "rate limit" in refused.json()["detail"]
        assert other.status_code == 200  # per key
