"""Nothing on the serving path is CryptoPunks-shaped: a second collection built from the real
Moonbirds images and metadata, minted on anvil by our DemoNFT, traded through our Seaport-shaped
DemoMarket, recorded by the listener, resolved from our IPFS gateway, embedded and valued on the
urgent path, gets a fit of its own from its own attributes (trait premia that separate a
Crescent body from the others), its own daily index, and a listed token is capped at its ask."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from web3 import Web3

from listeners.backfill import backfill
from listeners.rpc import Rpc
from nftwatch.api import create_app
from nftwatch.localstack import chaintools as ct
from nftwatch.localstack.embedded import Anvil
from nftwatch.localstack.ipfs_gateway import LocalIpfsGateway
from store import orders
from store.models import Sale, Token, Valuation
from tests.support.seed import marketplace_ask
from worker.config import WorkerConfig
from worker.context import WorkerContext
from worker.embedding import embed_stored
from worker.resolving import resolve_batch
from worker.valuing import MODELS, value_now

CHAIN = 31337
ETH = 10**18
KEY = "generic-collection-key"
TOKENS = 40  # the first 40 Moonbirds of the folder
PREMIUM = ("Body", "Crescent")  # the trait our market pays twice as much for
SALES = 150
DAY = 86_400


def body(meta: dict[str, Any]) -> str | None:
    return next((a["value"] for a in meta["attributes"] if a["trait_type"] == "Body"), None)


@pytest.fixture
def moonbirds(shared_data: Path) -> dict[int, dict[str, Any]]:
    folder = shared_data / "moonbirds-10k"
    ids = sorted(int(p.stem) for p in folder.glob("*.json"))[:TOKENS]
    return {i: json.loads((folder / f"{i}.json").read_text()) for i in ids}


@pytest.fixture
def ctx(db_url: str, anvil: Anvil, gateway: LocalIpfsGateway) -> Iterator[WorkerContext]:
    context = WorkerContext(
        WorkerConfig(
            database_url=db_url,
            broker_url="memory://",
            rpc_urls={CHAIN: anvil.url},
            ipfs_gateways=(gateway.base_url,),
            allow_hosts=(gateway.netloc,),
            extractors=("gradient-v1",),
        )
    )
    MODELS.clear()  # anvil deploys at the same address in every test: no fit carries over
    yield context
    MODELS.wait()
    MODELS.clear()
    context.engine.dispose()


def publish(gateway: LocalIpfsGateway, shared_data: Path, meta: dict[int, dict[str, Any]]) -> str:
    """The images, then the metadata pointing at them, as IPFS directories; the base URI."""
    folder = shared_data / "moonbirds-10k"
    images = gateway.add_directory({f"{i}.png": (folder / f"{i}.png").read_bytes() for i in meta})
    files = {
        str(i): json.dumps({**m, "image": f"ipfs://{images}/{i}.png"}).encode()
        for i, m in meta.items()
    }
    return f"ipfs://{gateway.add_directory(files)}/"


def trade(
    w3: Web3, meta: dict[int, dict[str, Any]], unsold: set[int]
) -> tuple[Any, list[tuple[int, int]]]:
    """Mint every token and sell them through DemoMarket a day and a half apart, each from its
    holder to an account that did not just sell it (no round trip, no churn): a Crescent for
    twice the price of another token, on a market that drifts up a third. Returns the NFT and
    the sales (token, wei)."""
    accounts = list(w3.eth.accounts)
    nft = ct.deploy(w3, "DemoNFT", "Moonbirds", "MOONBIRD")
    market = ct.deploy(w3, "DemoMarket", accounts[9])
    owner = {i: accounts[1 + k % 8] for k, i in enumerate(meta)}
    for holder in set(owner.values()):
        ct.mint_batch(w3, nft, holder, [i for i in meta if owner[i] == holder])
    rng = random.Random(7)
    tradable = [i for i in meta if i not in unsold]
    previous: dict[int, str] = {}
    start = int(w3.eth.get_block("latest")["timestamp"]) + DAY
    sold = []
    for n in range(SALES):
        token = tradable[(n * 7) % len(tradable)]
        seller = owner[token]
        buyer = rng.choice([a for a in accounts[1:9] if a not in (seller, previous.get(token))])
        drift = 1 + n / (3 * SALES)
        premium = 2.0 if body(meta[token]) == PREMIUM[1] else 1.0
        wei = int(ETH * drift * premium * rng.uniform(0.95, 1.05))
        w3.provider.make_request("evm_setNextBlockTimestamp", [start + n * 3 * DAY // 2])
        ct.sell(w3, market, nft, seller, buyer, token, wei)
        previous[token], owner[token] = seller, buyer
        sold.append((token, wei))
    return nft, sold


@pytest.mark.timeout(600)
def test_a_second_collection_gets_its_own_fit_from_its_own_traits(
    ctx: WorkerContext,
    anvil: Anvil,
    gateway: LocalIpfsGateway,
    shared_data: Path,
    moonbirds: dict[int, dict[str, Any]],
) -> None:
    crescents = [i for i, m in moonbirds.items() if body(m) == PREMIUM[1]]
    others = [i for i, m in moonbirds.items() if body(m) != PREMIUM[1]]
    assert len(crescents) >= 5 and len(others) >= 5
    unsold = {crescents[-1], others[-1]}  # valued from the traits and comparables alone
    w3 = ct.connect(anvil.url)
    base = publish(gateway, shared_data, moonbirds)
    nft, sold = trade(w3, moonbirds, unsold)
    ct.set_base_uri(w3, nft, base)
    contract = str(nft.address).lower()

    with Rpc(anvil.url) as rpc:  # recorded as the listener records any ERC-721 and market
        backfill(rpc, ctx.factory, CHAIN, 0, w3.eth.block_number, None)
    resolve_batch(ctx, CHAIN, contract, sorted(moonbirds))
    with ctx.factory() as s:
        rows = s.scalars(select(Token).where(Token.contract == contract)).all()
        assert {r.metadata_status for r in rows} == {"ok"} and len(rows) == TOKENS
        assert all(r.image_sha256 for r in rows)
        stored = s.scalars(select(Sale).where(Sale.contract == contract)).all()
        assert sorted((int(x.token_id), int(x.price_wei)) for x in stored) == sorted(sold)
        shas = [str(r.image_sha256) for r in rows]
    embed_stored(ctx, ["gradient-v1"], shas)

    def valued(token: int) -> Valuation:
        vid = value_now(ctx, CHAIN, contract, token, reason="test")
        with ctx.factory() as s:
            return s.scalars(select(Valuation).where(Valuation.id == vid)).one()

    crescent, other = valued(crescents[-1]), valued(others[-1])
    for v in (crescent, other):
        assert v.inputs["method"] == "fitted" and v.inputs["training_sales"] == SALES
        assert v.explanation["rarity"]["of"] == TOKENS  # the fit's tokens are these Moonbirds
        assert v.explanation["visual_neighbours"]  # by their own images
    # the fit learnt this collection's premium from its own attributes
    assert crescent.explanation["trait_premium"] - other.explanation["trait_premium"] > 0.3
    assert crescent.price_eth is not None and other.price_eth is not None
    assert crescent.price_eth > 1.6 * other.price_eth  # sold at twice the price
    features = {d["feature"] for d in crescent.explanation["drivers"]}
    assert "body=crescent" in features  # trait names as valuation.rarity keys them

    # a listing (as the marketplace feed records it) under the estimate caps it
    ask = round(other.price_eth * 0.7, 6)
    with ctx.factory.begin() as s:
        orders.record(s, [marketplace_ask(others[-1], ask, contract=contract, chain_id=CHAIN)])
    listed = valued(others[-1])
    assert listed.price_eth == pytest.approx(ask) and listed.price_high_eth == pytest.approx(ask)
    assert listed.explanation["orders"]["moved"] == ["capped at the ask"]
    # ... and, as the collection's floor now, caps a token priced at the collection's level
    assert valued(others[0]).explanation["market_asks"]["floor_token_id"] == str(others[-1])

    app = create_app(ctx.factory, api_keys=[KEY])
    with TestClient(app, headers={"X-API-Key": KEY}) as client:
        index = client.get(f"/v1/collections/{CHAIN}/{contract}/index?days=3650").json()
    assert index["trait_adjusted"] is True and index["sales_read"] == SALES
    assert sum(p["sales"] for p in index["points"]) <= SALES and len(index["points"]) > 30
