"""API keys created with ``nftwatch keys`` are stored only as hashes, open the API, and stop
working once revoked."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from nftwatch.api import create_app
from nftwatch.cli import cli
from store.db import make_engine, make_sessionmaker

ROUTE = "/v1/valuations/1/0x" + "ab" * 20 + "/1"


def test_stored_keys_open_the_api_until_revoked(db_url: str) -> None:
    runner = CliRunner()
    env = {"DATABASE_URL": db_url}
    created = runner.invoke(cli, ["keys", "create", "desk"], env=env)
    assert created.exit_code == 0, created.output
    key = created.output.strip().splitlines()[-1]

    engine = create_engine(db_url)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT key_sha256 FROM api_keys")).scalars().all()
    engine.dispose()
    assert len(stored) == 1 and key not in stored[0]  # the hash, never the key

    factory = make_sessionmaker(make_engine(db_url))
    client = TestClient(create_app(factory, api_keys=[], key_ttl=0.0))
    assert client.get(ROUTE).status_code == 401
    assert client.get(ROUTE, headers={"X-API-Key": key}).status_code == 404  # in, no valuation
    assert client.get(ROUTE, headers={"X-API-Key": key + "x"}).status_code == 401

    listed = runner.invoke(cli, ["keys", "list", "--json"], env=env)
    assert '"name": "desk"' in listed.output and key not in listed.output
    assert runner.invoke(cli, ["keys", "create", "desk"], env=env).exit_code == 1
    assert runner.invoke(cli, ["keys", "revoke", "desk"], env=env).exit_code == 0
    assert client.get(ROUTE, headers={"X-API-Key": key}).status_code == 401
