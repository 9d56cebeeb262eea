"""What the market shows now moves the valuation: the token's ask caps it, an open bid floors it,
and the explanation names both; a crossed book moves nothing."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import select

from store import orders
from store.models import Listing, Valuation
from tests.test_valuation_cache import CHAIN, CONTRACT, _add_sale, _add_tokens, _traits
from valuation.bounds import OpenOrders, apply_orders
from valuation.model import Valuation as ModelValuation
from worker.config import WorkerConfig
from worker.context import WorkerContext
from worker.valuing import ModelCache, _Timer, _value

ZERO = "0x" + "0" * 40
WEI = 10**18
NOW = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)


def quote(price: float = 10.0) -> ModelValuation:
    return ModelValuation(
        token_id=1,
        at=NOW,
        price_eth=price,
        low_eth=price * 0.8,
        high_eth=price * 1.25,
        p_liquid=0.5,
        confidence=0.5,
        model_version="m",
    )


def test_an_ask_caps_and_a_bid_floors_the_estimate_and_both_are_named() -> None:
    capped = apply_orders(quote(), OpenOrders(ask_eth=9.0, ask_venue="opensea"))
    assert (capped.price_eth, capped.low_eth, capped.high_eth) == (9.0, 8.0, 9.0)
    assert capped.explanation["orders"]["moved"] == ["capped at the ask"]
    assert capped.explanation["orders"]["ask_venue"] == "opensea"
    raised = apply_orders(quote(), OpenOrders(bid_eth=11.0))
    assert (raised.price_eth, raised.low_eth, raised.high_eth) == (11.0, 11.0, 12.5)
    inside = apply_orders(quote(), OpenOrders(ask_eth=12.0, bid_eth=9.0))
    assert (inside.price_eth, inside.low_eth, inside.high_eth) == (10.0, 9.0, 12.0)
    assert inside.explanation["orders"]["moved"] == []
    crossed = apply_orders(quote(), OpenOrders(ask_eth=9.0, bid_eth=9.5))
    assert dataclasses.replace(crossed, explanation={}) == quote()
    assert crossed.explanation["orders"]["moved"][0].startswith("none")
    assert apply_orders(quote(), OpenOrders()) == quote()


def test_without_a_model_price_the_orders_alone_give_one() -> None:
    nothing = dataclasses.replace(
        quote(), price_eth=float("nan"), low_eth=float("nan"), high_eth=float("nan")
    )
    v = apply_orders(nothing, OpenOrders(ask_eth=4.0, bid_eth=3.0))
    assert (v.price_eth, v.low_eth, v.high_eth) == (4.0, 3.0, 4.0)


@pytest.fixture
def ctx(db_url: str) -> Iterator[WorkerContext]:
    context = WorkerContext(
        WorkerConfig(database_url=db_url, broker_url="memory://", extractors=("gradient-v1",))
    )
    _add_tokens(context.factory, range(40))
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=300)
    with context.factory.begin() as s:
        for n in range(240):  # every token about 1 ETH, a new sale every 30 hours
            _add_sale(s, n + 1, n % 40, start + dt.timedelta(hours=30 * n), 1.0 + (n % 7) / 100)
    yield context
    context.engine.dispose()


def _listing(s: object, token: int, block: int, kind: str, eth: float | None, account: str) -> None:
    s.add(  # type: ignore[attr-defined]
        Listing(
            chain_id=CHAIN,
            block_number=block,
            block_hash=f"0x{block:064x}",
            tx_hash=f"0x{block + 10**6:064x}",
            log_index=0,
            block_time=dt.datetime.now(dt.UTC),
            contract=CONTRACT,
            token_id=Decimal(token),
            kind=kind,
            price_wei=None if eth is None else Decimal(int(eth * WEI)),
            account=account,
        )
    )


def _valued(ctx: WorkerContext, token: int) -> Valuation:
    traits = {a["trait_type"]: a["value"] for a in _traits(token)}
    vid = _value(ctx, CHAIN, CONTRACT, token, None, traits, "test", _Timer(), ModelCache())
    with ctx.factory() as s:
        return s.scalars(select(Valuation).where(Valuation.id == vid)).one()


def test_the_stored_valuation_follows_the_tokens_live_orders(ctx: WorkerContext) -> None:
    free = _valued(ctx, 4)
    assert free.price_eth is not None and 0.8 < free.price_eth < 1.3
    assert "orders" not in free.explanation

    with ctx.factory.begin() as s:  # a public offer under the estimate, and a private one
        _listing(s, 4, 1000, "offered", 0.5, ZERO)
        _listing(s, 5, 1001, "offered", 0.5, "0x" + "99" * 20)
    capped = _valued(ctx, 4)
    assert capped.price_eth == pytest.approx(0.5) and capped.price_high_eth == pytest.approx(0.5)
    assert capped.explanation["orders"]["ask_venue"] == "on-chain offer"
    assert "orders" not in _valued(ctx, 5).explanation  # offered to one buyer: no public ask

    with ctx.factory.begin() as s:  # withdrawn; a cheaper ask off chain; a bid over the estimate
        _listing(s, 4, 1002, "withdrawn", None, ZERO)
        _listing(s, 6, 1003, "bid", 3.0, "0x" + "77" * 20)
        orders.record(
            s,
            [
                orders.OrderEvent(
                    marketplace="opensea",
                    order_hash="0x" + "ab" * 32,
                    status="active",
                    chain_id=CHAIN,
                    contract=CONTRACT,
                    token_id=4,
                    price_wei=int(0.7 * WEI),
                    currency="ETH",
                    price_eth_wei=int(0.7 * WEI),
                    maker="0x" + "55" * 20,
                    listed_at=dt.datetime.now(dt.UTC),
                    expires_at=None,
                    event_at=dt.datetime.now(dt.UTC),
                )
            ],
        )
    again = _valued(ctx, 4)
    assert again.price_eth == pytest.approx(0.7)
    assert again.explanation["orders"]["ask_venue"] == "opensea"
    bid = _valued(ctx, 6)
    assert bid.price_eth == pytest.approx(3.0) and bid.price_low_eth == pytest.approx(3.0)
    assert bid.explanation["orders"]["moved"] == ["raised to the bid"]
