"""The resolve task's outcomes on real components: anvil with our contracts, the listener's
backfill filling tokens and outbox, the dispatcher's message plan, ``resolve_batch`` on a
WorkerContext over Postgres, our IPFS gateway and an HTTP origin, Redis for shared rate limits.
Also the retry and re-check sweeps and the ``failures`` / ``retry`` commands."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner
from web3 import Web3

from listeners.backfill import backfill
from listeners.rpc import Rpc
from nftwatch.cli import cli
from nftwatch.localstack import chaintools as ct
from nftwatch.localstack.embedded import Anvil
from nftwatch.localstack.ipfs_gateway import LocalIpfsGateway
from nftwatch.service import sweep_retries, sweep_stale
from store.models import Collection, FetchFailure, Media, Outbox, Token
from tests.support.media import png
from tests.support.servers import OriginServer, static, status_with_retry_after
from worker.app import RESOLVE_TASK
from worker.config import WorkerConfig
from worker.context import WorkerContext
from worker.dispatcher import dispatch_once
from worker.resolving import resolve_batch

CHAIN = 31337
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64


@dataclass
class World:
    anvil: Anvil
    w3: Web3
    ctx: WorkerContext
    gateway: LocalIpfsGateway
    origin: OriginServer
    scanned: int = 0

    def session(self) -> Session:
        return self.ctx.factory()

    def backfill(self) -> None:
        """Record the new blocks as the listener does (tokens rows and outbox work)."""
        head = self.w3.eth.block_number
        with Rpc(self.anvil.url) as rpc:
            backfill(rpc, self.ctx.factory, CHAIN, self.scanned, head, None)
        self.scanned = head + 1

    def drain(self, ctx: WorkerContext | None = None) -> list[dict[str, Any]]:
        """Send the outbox as the dispatcher does, running resolve messages as a worker would."""
        sent: list[tuple[str, dict[str, Any], str]] = []
        while dispatch_once(self.ctx.factory, lambda n, kw, q: sent.append((n, kw, q))):
            pass
        resolves = [kw for name, kw, _ in sent if name == RESOLVE_TASK]
        for kw in resolves:
            ids = [int(t) for t in kw["token_ids"]]
            resolve_batch(ctx or self.ctx, kw["chain_id"], kw["contract"], ids)
        return resolves

    def token(self, contract: str, token_id: int) -> Token:
        with self.session() as s:
            row = s.get(Token, (CHAIN, contract.lower(), token_id))
            assert row is not None
            return row

    def failures(self, contract: str, token_id: int) -> list[FetchFailure]:
        with self.session() as s:
            return list(
                s.scalars(
                    select(FetchFailure)
                    .where(FetchFailure.contract == contract, FetchFailure.token_id == token_id)
                    .order_by(FetchFailure.id)
                )
            )


def config(db_url: str, anvil: Anvil, gw: LocalIpfsGateway, origin: OriginServer, **kw: Any) -> Any:
    return WorkerConfig(
        database_url=db_url,
        broker_url=kw.pop("broker_url", "memory://"),
        rpc_urls={CHAIN: anvil.url},
        ipfs_gateways=(gw.base_url,),
        allow_hosts=(gw.netloc, origin.netloc),
        extractors=("gradient-v1",),
        **kw,
    )


@pytest.fixture
def world(
    db_url: str, anvil: Anvil, gateway: LocalIpfsGateway, origin: OriginServer
) -> Iterator[World]:
    ctx = WorkerContext(config(db_url, anvil, gateway, origin))
    yield World(anvil, ct.connect(anvil.url), ctx, gateway, origin)
    ctx.engine.dispose()


def holder(w3: Web3) -> str:
    return str(list(w3.eth.accounts)[1])


def meta(name: str, image: str | None) -> bytes:
    body: dict[str, Any] = {"name": name, "attributes": [{"trait_type": "n", "value": name}]}
    if image is not None:
        body["image"] = image
    return json.dumps(body).encode()


def collection(world: World, files: dict[str, bytes], ids: list[int]) -> str:
    """A DemoNFT whose base URI is an IPFS directory of ``files``, with ``ids`` minted."""
    w3 = world.w3
    nft = ct.deploy(w3, "DemoNFT", "Demo", "DMO")
    ct.set_base_uri(w3, nft, f"ipfs://{world.gateway.add_directory(files)}/")
    ct.mint_batch(w3, nft, holder(w3), ids)
    return str(nft.address).lower()


def count(world: World, model: Any, *where: Any) -> int:
    with world.session() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


# ---------------------------------------------------------------------------------------------


def test_success_shared_image_and_reverting_token(world: World) -> None:
    w3, gw = world.w3, world.gateway
    red, blue = png(color=(255, 0, 0, 255)), png(color=(0, 0, 255, 255))
    red_uri, blue_uri = f"ipfs://{gw.add_bytes(red)}", f"ipfs://{gw.add_bytes(blue)}"
    files = {"1": meta("one", red_uri), "2": meta("two", red_uri), "3": meta("three", blue_uri)}
    files["4"] = meta("four", blue_uri)
    contract = collection(world, files, [1, 2, 3, 4])
    nft = ct.at(w3, "DemoNFT", contract)
    burn_block = int(ct.burn(w3, nft, holder(w3), 4)["blockNumber"])
    world.backfill()
    with world.session() as s:  # no collection row: the worker asks ERC-165
        assert s.scalar(select(Collection.standard).where(Collection.address == contract)) is None

    world.drain()

    rows = {t: world.token(contract, t) for t in (1, 2, 3, 4)}
    assert [rows[t].metadata_status for t in (1, 2, 3)] == ["ok"] * 3
    assert rows[1].metadata_json == json.loads(files["1"])
    assert rows[1].token_uri == f"{_base(world, contract)}1"
    assert rows[1].image_sha256 == rows[2].image_sha256 != rows[3].image_sha256
    assert rows[1].attempts == 0 and rows[1].error_class is None
    assert count(world, Media) == 2  # identical bytes stored once
    embed_keys = count(world, Outbox, Outbox.task == "embed")
    assert embed_keys == 2  # and embedded once
    with world.session() as s:
        assert s.scalar(select(Collection.standard).where(Collection.address == contract)) == (
            "erc721"
        )

    burned = rows[4]
    assert (burned.metadata_status, burned.error_class) == ("failed", "TokenURIReverted")
    assert burned.attempts == 1 and burned.next_retry_at is None
    [failure] = world.failures(contract, 4)
    assert (failure.stage, failure.retryable, failure.exhausted) == ("token_uri", False, True)

    # idempotent: the same batch again stores nothing new
    resolve_batch(world.ctx, CHAIN, contract, [1, 2, 3])
    assert count(world, Media) == 2
    assert count(world, Outbox, Outbox.task == "embed") == 2

    # read at the event's block, the burned token still has its tokenURI
    resolve_batch(world.ctx, CHAIN, contract, [4], blocks={4: burn_block - 1})
    burned = world.token(contract, 4)
    assert (burned.metadata_status, burned.image_sha256) == ("ok", rows[3].image_sha256)


def _base(world: World, contract: str) -> str:
    uri = ct.at(world.w3, "DemoNFT", contract).functions.tokenURI(1).call()
    return str(uri)[:-1]


def test_gateway_504_retry_after_then_the_sweep_recovers(world: World) -> None:
    gw = world.gateway
    contract = collection(world, {"1": meta("one", None)}, [1])
    world.backfill()
    gw.fail_next(1, 504, {"Retry-After": "120"})
    before = dt.datetime.now(dt.UTC)

    world.drain()

    row = world.token(contract, 1)
    assert row.metadata_status == "retry"
    assert row.error_class in ("UpstreamUnavailable", "AllGatewaysFailed")
    assert row.attempts == 1
    assert row.next_retry_at is not None
    assert row.next_retry_at >= before + dt.timedelta(seconds=120)
    [failure] = world.failures(contract, 1)
    assert (failure.stage, failure.retryable, failure.exhausted) == ("metadata", True, False)

    # not due yet: nothing queued; due: queued once
    assert sweep_retries(world.ctx.factory, dt.datetime.now(dt.UTC)) == 0
    due = row.next_retry_at + dt.timedelta(seconds=1)
    assert sweep_retries(world.ctx.factory, due) == 1
    sweep_retries(world.ctx.factory, due)
    assert count(world, Outbox, Outbox.dedupe_key.like("retry:%")) == 1

    assert len(world.drain()) == 1
    row = world.token(contract, 1)
    assert (row.metadata_status, row.attempts, row.next_retry_at) == ("ok", 0, None)
    assert row.metadata_json == {"name": "one", "attributes": [{"trait_type": "n", "value": "one"}]}


def test_exhausted_attempts_are_dead_letters_and_retry_redrives_them(
    world: World, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.ctx = WorkerContext(
        config(db_url, world.anvil, world.gateway, world.origin, max_attempts=2)
    )
    files = {"1": meta("one", None), "2": meta("two", None)}
    contract = collection(world, files, [1, 2])
    world.backfill()
    world.gateway.fail_next(2, 503, {"Retry-After": "60"})
    world.drain()
    assert [world.token(contract, t).metadata_status for t in (1, 2)] == ["retry", "retry"]
    due = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    assert sweep_retries(world.ctx.factory, due) == 2
    world.gateway.fail_next(2, 503, {"Retry-After": "60"})
    world.drain()
    for t in (1, 2):
        row = world.token(contract, t)
        assert (row.metadata_status, row.attempts, row.next_retry_at) == ("failed", 2, None)
        assert [f.exhausted for f in world.failures(contract, t)] == [False, True]
        assert [f.attempts for f in world.failures(contract, t)] == [1, 2]
    # 3 has no file in the directory: NotFound is permanent at once
    ct.mint(world.w3, ct.at(world.w3, "DemoNFT", contract), holder(world.w3), 3)
    world.backfill()
    world.drain()
    assert world.token(contract, 3).metadata_status == "failed"

    monkeypatch.setenv("DATABASE_URL", db_url)
    runner = CliRunner()
    listed = runner.invoke(cli, ["failures", "--json", "--limit", "10"])
    assert listed.exit_code == 0, listed.output
    letters = {int(d["token_id"]): d for d in json.loads(listed.output)}
    assert set(letters) == {1, 2, 3}
    assert letters[1]["error_class"] in ("UpstreamUnavailable", "AllGatewaysFailed")
    assert (letters[1]["attempts"], letters[1]["stage"]) == (2, "metadata")
    assert letters[3]["error_class"] == "NotFound"
    assert "attempts=2" in runner.invoke(cli, ["failures"]).output
    assert len(json.loads(runner.invoke(cli, ["failures", "--json", "--limit", "1"]).output)) == 1

    one = runner.invoke(cli, ["retry", contract, "1"])
    assert one.exit_code == 0 and "queued 1 token " in one.output
    assert world.token(contract, 1).metadata_status == "pending"
    assert runner.invoke(cli, ["retry", contract, "77"]).exit_code == 1
    assert runner.invoke(cli, ["retry"]).exit_code != 0

    world.drain()  # the gateway is healthy again
    row = world.token(contract, 1)
    assert (row.metadata_status, row.attempts) == ("ok", 0)
    left = json.loads(runner.invoke(cli, ["failures", "--json"]).output)
    assert {int(d["token_id"]) for d in left} == {2, 3}

    everything = runner.invoke(cli, ["retry", "--all"])
    assert "queued 2 tokens" in everything.output
    world.drain()
    assert world.token(contract, 2).metadata_status == "ok"
    assert world.token(contract, 3).metadata_status == "failed"  # still not there


def test_image_failures_keep_the_metadata(world: World) -> None:
    gw, origin = world.gateway, world.origin
    missing = "ipfs://bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
    origin.routes["/busy.png"] = status_with_retry_after(503, "300")
    origin.routes["/clip.png"] = static(MP4, "image/png")  # the Content-Type lies
    files = {
        "1": meta("gone", missing),
        "2": meta("busy", origin.url("/busy.png")),
        "3": meta("video", origin.url("/clip.png")),
        "4": meta("fine", f"ipfs://{gw.add_bytes(png())}"),
    }
    contract = collection(world, files, [1, 2, 3, 4])
    world.backfill()
    before = dt.datetime.now(dt.UTC)
    world.drain()

    rows = {t: world.token(contract, t) for t in (1, 2, 3, 4)}
    for t in (1, 2, 3):
        assert rows[t].metadata_json == json.loads(files[str(t)])
        assert rows[t].image_sha256 is None
        assert rows[t].image_uri is not None
        [failure] = world.failures(contract, t)
        assert failure.stage == "image"
    assert (rows[1].metadata_status, rows[1].error_class) == ("ok", "NotFound")
    assert (rows[2].metadata_status, rows[2].error_class) == ("retry", "UpstreamUnavailable")
    assert rows[2].next_retry_at is not None
    assert rows[2].next_retry_at >= before + dt.timedelta(seconds=300)
    assert (rows[3].metadata_status, rows[3].error_class) == ("ok", "UnsupportedMedia")
    assert (rows[4].metadata_status, rows[4].error_class) == ("ok", None)
    assert rows[4].image_sha256 is not None

    origin.routes["/busy.png"] = static(png(color=(0, 200, 0, 255)), "image/png")
    assert rows[2].next_retry_at is not None
    sweep_retries(world.ctx.factory, rows[2].next_retry_at + dt.timedelta(seconds=1))
    world.drain()
    row = world.token(contract, 2)
    assert (row.metadata_status, row.error_class) == ("ok", None)
    assert row.image_sha256 is not None


def test_eip4906_refresh_refetches_an_ok_token(world: World) -> None:
    gw, w3 = world.gateway, world.w3
    contract = collection(world, {"1": meta("v1", None), "2": meta("v1", None)}, [1, 2])
    world.backfill()
    world.drain()
    assert world.token(contract, 1).metadata_json == json.loads(meta("v1", None))

    new_image = png(color=(9, 9, 9, 255))
    files = {"1": meta("v2", f"ipfs://{gw.add_bytes(new_image)}"), "2": meta("v2", None)}
    ct.set_base_uri(w3, ct.at(w3, "DemoNFT", contract), f"ipfs://{gw.add_directory(files)}/")
    refreshes = count(world, Outbox, Outbox.dedupe_key.like("refresh:%"))
    world.backfill()  # BatchMetadataUpdate: refresh work for every known token
    refreshed = world.drain()
    assert sorted(t for kw in refreshed for t in kw["token_ids"]) == ["1", "2"]
    assert count(world, Outbox, Outbox.dedupe_key.like("refresh:%")) == refreshes + 2
    row = world.token(contract, 1)
    assert row.metadata_json == json.loads(files["1"])
    assert row.image_sha256 is not None
    assert world.token(contract, 2).metadata_json == json.loads(files["2"])


def test_http_metadata_rechecked_after_ttl_ipfs_never(world: World) -> None:
    w3, gw, origin = world.w3, world.gateway, world.origin
    origin.routes["/meta/1"] = static(meta("first", None), "application/json")
    web = ct.deploy(w3, "DemoNFT", "Web", "WEB")
    ct.set_base_uri(w3, web, origin.url("/meta/"))
    ct.mint(w3, web, holder(w3), 1)
    pinned = ct.deploy(w3, "DemoNFT", "Pinned", "PIN")  # a gateway URL naming a CID
    ct.set_base_uri(w3, pinned, f"{gw.base_url}/ipfs/{gw.add_directory({'1': meta('p', None)})}/")
    ct.mint(w3, pinned, holder(w3), 1)
    ipfs = collection(world, {"1": meta("i", None)}, [1])
    world.backfill()
    world.drain()
    web_addr, pinned_addr = str(web.address).lower(), str(pinned.address).lower()
    assert {world.token(c, 1).metadata_status for c in (web_addr, pinned_addr, ipfs)} == {"ok"}

    ttl = 3600.0
    assert sweep_stale(world.ctx.factory, dt.datetime.now(dt.UTC), ttl) == 0
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ttl + 1)
    assert sweep_stale(world.ctx.factory, later, ttl) == 1
    origin.routes["/meta/1"] = static(meta("second", None), "application/json")
    rechecked = world.drain()
    assert [(kw["contract"], kw["token_ids"]) for kw in rechecked] == [(web_addr, ["1"])]
    assert world.token(web_addr, 1).metadata_json == json.loads(meta("second", None))


def test_rate_limits_are_shared_by_workers_through_redis(
    world: World, db_url: str, redis_url: str, redis_prefix: str
) -> None:
    files = {"1": meta("one", None), "2": meta("two", None)}
    contract = collection(world, files, [1, 2])
    world.backfill()
    prefix = f"{redis_prefix}{uuid.uuid4().hex[:6]}:"
    # one request a minute to any host: the second worker's request has no slot within reach
    limits: dict[str, Any] = {"rate_limits": {"*": 1 / 60}, "rate_burst": 1}
    limits["redis_key_prefix"] = prefix
    args = (db_url, world.anvil, world.gateway, world.origin)
    first = WorkerContext(config(*args, broker_url=redis_url, **limits))
    second = WorkerContext(config(*args, broker_url=redis_url, **limits))
    before = dt.datetime.now(dt.UTC)
    assert resolve_batch(first, CHAIN, contract, [1]) == 1
    assert resolve_batch(second, CHAIN, contract, [2]) == 0
    row = world.token(contract, 2)
    assert (row.metadata_status, row.error_class) == ("retry", "RateLimited")
    assert row.next_retry_at is not None
    assert row.next_retry_at >= before + dt.timedelta(seconds=50)
    client = redis.Redis.from_url(redis_url)
    assert client.exists(f"{prefix}nftwatch:ratelimit:127.0.0.1") == 1
    client.close()

    # without a Redis broker each worker only limits itself
    with world.session() as s, s.begin():
        s.execute(update(Token).values(metadata_status="pending", attempts=0))
    lone = {k: v for k, v in limits.items() if k != "redis_key_prefix"}
    for _ in range(2):
        local = WorkerContext(config(*args, **lone))
        assert resolve_batch(local, CHAIN, contract, [1, 2][_ : _ + 1]) == 1
        local.engine.dispose()
    first.engine.dispose()
    second.engine.dispose()
