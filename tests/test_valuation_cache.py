"""The urgent valuation path reuses one fitted model per collection: a refit only after the
collection's sales or tokens changed (in the background), new sales served by the existing fit,
a token the fit never saw valued by the thin-market method; every valuation records its inputs."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
from sqlalchemy import select

from store.models import Sale, Token, Valuation
from worker.config import WorkerConfig
from worker.context import WorkerContext
from worker.valuing import ModelCache, _Timer, _value

CHAIN = 31337
CONTRACT = "0x" + "ab" * 20
TYPES = ("alien", "ape", "zombie", "human")
HATS = ("cap", "beanie", "none")


def _traits(token_id: int) -> list[dict[str, str]]:
    return [
        {"trait_type": "type", "value": TYPES[token_id % 4]},
        {"trait_type": "hat", "value": HATS[token_id % 3]},
    ]


def _add_tokens(factory: object, ids: range) -> None:
    with factory.begin() as s:  # type: ignore[attr-defined]
        for t in ids:
            s.add(
                Token(
                    chain_id=CHAIN,
                    contract=CONTRACT,
                    token_id=Decimal(t),
                    metadata_status="ok",
                    attributes=_traits(t),
                )
            )


def _add_sale(
    s: object, n: int, token_id: int, when: dt.datetime, eth: float, contract: str = CONTRACT
) -> None:
    s.add(  # type: ignore[attr-defined]
        Sale(
            chain_id=CHAIN,
            block_number=n,
            block_hash=f"0x{n:064x}",
            tx_hash=f"0x{n:064x}",
            log_index=0,
            block_time=when,
            contract=contract,
            token_id=Decimal(token_id),
            # a different pair of wallets each time: the same two trading one token back and
            # forth would be wash-flagged
            seller=f"0x{2 * n:040x}",
            buyer=f"0x{2 * n + 1:040x}",
            price_wei=Decimal(int(eth * 10**18)),
            marketplace="test",
        )
    )


@pytest.fixture
def ctx(db_url: str) -> WorkerContext:
    context = WorkerContext(
        WorkerConfig(database_url=db_url, broker_url="memory://", extractors=("gradient-v1",))
    )
    rng = random.Random(5)
    _add_tokens(context.factory, range(40))
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=300)
    with context.factory.begin() as s:
        for n in range(240):
            token = rng.randrange(40)
            eth = (3.0 if token % 4 == 0 else 1.0) * rng.uniform(0.9, 1.1)
            _add_sale(s, n + 1, token, start + dt.timedelta(days=n * 299 / 240), eth)
    yield context
    context.engine.dispose()


def _inputs(ctx: WorkerContext, valuation_id: int) -> dict[str, object]:
    with ctx.factory() as s:
        row = s.scalars(select(Valuation).where(Valuation.id == valuation_id)).one()
        return dict(row.inputs) | {"model_version": row.model_version}


def _value_token(ctx: WorkerContext, cache: ModelCache, token_id: int) -> dict[str, object]:
    traits = {a["trait_type"]: a["value"] for a in _traits(token_id)}
    vid = _value(ctx, CHAIN, CONTRACT, token_id, None, traits, "test", _Timer(), cache)
    return _inputs(ctx, vid)


def test_the_fit_is_reused_until_sales_change_then_refit_in_the_background(
    ctx: WorkerContext,
) -> None:
    cache = ModelCache(refit_interval_s=0.0, cost_factor=0.0)
    first = _value_token(ctx, cache, 4)
    assert first["method"] == "fitted"
    assert first["model_version"] == first["fit_version"]
    assert first["sales_seen"] == 240
    excluded = first["wash_excluded"]["sales"] if first["wash_excluded"] else 0  # type: ignore[index]
    assert first["training_sales"] + excluded == 240
    again = _value_token(ctx, cache, 5)
    cache.wait()
    assert again["fit_as_of"] == first["fit_as_of"]  # nothing changed: no refit
    assert set(again["timings_ms"]) >= {"stamps", "model", "neighbours", "value"}  # type: ignore[arg-type]

    with ctx.factory.begin() as s:  # a new sale after the fit
        _add_sale(s, 1000, 4, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1), 30.0)
    served = _value_token(ctx, cache, 4)
    # valued at once by the existing fit over the new sales: its own new sale is in the history
    assert served["fit_as_of"] == first["fit_as_of"]
    assert served["sales_seen"] == 241
    assert served["training_sales"] == first["training_sales"]  # the same fit
    cache.wait()
    refit = _value_token(ctx, cache, 4)
    assert refit["fit_as_of"] != first["fit_as_of"]
    assert refit["fit_version"] != first["fit_version"]
    assert refit["training_sales"] == first["training_sales"] + 1
    # nothing after the valuation time: the fit is as of that time or before it
    for v in (first, again, served, refit):
        assert str(v["fit_as_of"]) <= str(v["as_of"])


def test_a_token_the_fit_never_saw_is_valued_by_its_neighbours_meanwhile(
    ctx: WorkerContext,
) -> None:
    cache = ModelCache(refit_interval_s=3600.0)  # no refit during this test
    assert _value_token(ctx, cache, 1)["method"] == "fitted"
    _add_tokens(ctx.factory, range(40, 41))
    new = _value_token(ctx, cache, 40)
    assert new["method"] == "thin: token not in the fit"
    assert new["model_version"] == "thin-market-knn-v1"
    assert new["fit_version"] is not None
    # and a token whose traits changed since the fit is not valued with its old ones
    traits = {"type": "robot", "hat": "cap"}
    vid = _value(ctx, CHAIN, CONTRACT, 2, None, traits, "test", _Timer(), cache)
    assert _inputs(ctx, vid)["method"] == "thin: traits changed since the fit"


def test_too_few_sales_fall_back_to_the_thin_market(db_url: str) -> None:
    context = WorkerContext(
        WorkerConfig(database_url=db_url, broker_url="memory://", extractors=("gradient-v1",))
    )
    _add_tokens(context.factory, range(5))
    with context.factory.begin() as s:
        _add_sale(s, 1, 1, dt.datetime.now(dt.UTC) - dt.timedelta(days=1), 2.0)
    got = _value_token(context, ModelCache(), 3)
    assert str(got["method"]).startswith("thin: no fitted model")
    with context.factory() as s:
        row = s.scalars(select(Valuation)).one()
    assert row.price_eth == pytest.approx(2.0)
    context.engine.dispose()


def test_a_repeated_trait_type_keeps_every_value_in_the_service_valuation(db_url: str) -> None:
    """A punk has several accessories: the fit and the token's own traits keep all of them, the
    same way the backtest reads them, so the token is valued by the fit."""
    from worker.valuing import MODELS, value_now

    contract = "0x" + "cd" * 20
    context = WorkerContext(
        WorkerConfig(database_url=db_url, broker_url="memory://", extractors=("gradient-v1",))
    )

    def accessories(token_id: int) -> list[dict[str, str]]:
        # a gold chain on one token in eight, listed before the earring every token wears
        own = [{"trait_type": "accessory", "value": "gold chain"}] if token_id % 8 == 0 else []
        own.append({"trait_type": "accessory", "value": "earring"})
        return [{"trait_type": "type", "value": TYPES[token_id % 4]}, *own]

    rng = random.Random(7)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=300)
    with context.factory.begin() as s:
        for t in range(40):
            s.add(
                Token(
                    chain_id=CHAIN,
                    contract=contract,
                    token_id=Decimal(t),
                    metadata_status="ok",
                    attributes=accessories(t),
                )
            )
    with context.factory.begin() as s:
        for n in range(240):
            token = rng.randrange(40)
            eth = (3.0 if token % 8 == 0 else 1.0) * rng.uniform(0.9, 1.1)
            sale_at = start + dt.timedelta(days=n * 299 / 240)
            _add_sale(s, n + 1, token, sale_at, eth, contract)
    try:
        double = value_now(context, CHAIN, contract, 8, reason="test")
        single = value_now(context, CHAIN, contract, 3, reason="test")
        # both tokens' traits read as the fit read them: neither is "traits changed"
        assert _inputs(context, double)["method"] == "fitted"
        assert _inputs(context, single)["method"] == "fitted"
        with context.factory() as s:
            row = s.scalars(select(Valuation).where(Valuation.id == double)).one()
        top = {(t["trait"], t["value"]) for t in row.explanation["rarity"]["top_traits"]}
        assert ("accessory:gold chain", "gold chain") in top  # not lost to the last earring
    finally:
        MODELS.wait()
        MODELS.clear()
        context.engine.dispose()
