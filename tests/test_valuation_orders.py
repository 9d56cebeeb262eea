"""What the market shows now moves the valuation: the token's ask caps it, an open bid floors it,
and the explanation names both; a crossed book moves nothing. The rest of the book counts too:
comparables listed under their last sales lower it, the collection's floor ask caps a token at
the collection's level."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from store import orders
from store.models import Valuation
from tests.support.seed import ZERO, add_order, marketplace_ask
from tests.test_valuation_cache import CHAIN, CONTRACT, _add_sale, _add_tokens, _traits
from valuation.bounds import ListedAsk, MarketAsks, OpenOrders, apply_market, apply_orders
from valuation.model import Valuation as ModelValuation
from worker.config import WorkerConfig
from worker.context import WorkerContext
from worker.valuing import ModelCache, _Timer, _value

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
        add_order(s, 4, 1000, "offered", 0.5, ZERO, contract=CONTRACT, chain_id=CHAIN)
        add_order(s, 5, 1001, "offered", 0.5, "0x" + "99" * 20, contract=CONTRACT, chain_id=CHAIN)
    capped = _valued(ctx, 4)
    assert capped.price_eth == pytest.approx(0.5) and capped.price_high_eth == pytest.approx(0.5)
    assert capped.explanation["orders"]["ask_venue"] == "on-chain offer"
    assert "orders" not in _valued(ctx, 5).explanation  # offered to one buyer: no public ask

    with ctx.factory.begin() as s:  # withdrawn; a cheaper ask off chain; a bid over the estimate
        add_order(s, 4, 1002, "withdrawn", None, ZERO, contract=CONTRACT, chain_id=CHAIN)
        add_order(s, 6, 1003, "bid", 3.0, "0x" + "77" * 20, contract=CONTRACT, chain_id=CHAIN)
        orders.record(s, [marketplace_ask(4, 0.7, contract=CONTRACT, chain_id=CHAIN)])
    again = _valued(ctx, 4)
    assert again.price_eth == pytest.approx(0.7)
    assert again.explanation["orders"]["ask_venue"] == "opensea"
    bid = _valued(ctx, 6)
    assert bid.price_eth == pytest.approx(3.0) and bid.price_low_eth == pytest.approx(3.0)
    assert bid.explanation["orders"]["moved"] == ["raised to the bid"]


# ------------------------------------------------------------------ the rest of the book


def quote_with(comparables: list[dict[str, object]], level: float = 10.0) -> ModelValuation:
    return dataclasses.replace(
        quote(), explanation={"market": {"level_eth": level}, "comparables": comparables}
    )


def test_comparables_listed_under_their_last_sales_lower_the_estimate_and_are_named() -> None:
    comps: list[dict[str, object]] = [
        {"token_id": t, "similarity": 1.0, "last_sale_eth": 10.0} for t in (2, 3, 4, 5)
    ]
    listed = {2: ListedAsk(2, 5.0, "opensea"), 3: ListedAsk(3, 20.0, "on-chain offer")}
    v = apply_market(quote_with(comps, level=5.0), MarketAsks(asks=listed))
    # one of four listed at half its last sale (the other above it: no news): log(0.5) / 4
    assert v.price_eth == pytest.approx(10.0 * 0.5**0.25)
    assert v.low_eth == pytest.approx(8.0 * 0.5**0.25)
    note = v.explanation["market_asks"]
    assert note["comparables_listed"] == 2 and note["moved"][0].startswith("lowered 16 %")
    cited = {c["token_id"]: c for c in v.explanation["comparables"]}
    assert (cited[2]["ask_eth"], cited[2]["ask_venue"]) == (5.0, "opensea")
    assert cited[3]["ask_eth"] == 20.0 and "ask_eth" not in cited[4]
    # the estimate sits 0.5 ** 0.25 * 2 = +68 % above the level: not at the level, no floor cap
    assert note["at_collection_level"] is False


def test_the_floor_ask_caps_a_token_at_the_collection_level_not_a_premium_one() -> None:
    floor = MarketAsks(floor=ListedAsk(77, 7.0, "opensea"))
    at_level = apply_market(quote_with([], level=10.0), floor)
    assert (at_level.price_eth, at_level.low_eth, at_level.high_eth) == (7.0, 7.0, 7.0)
    note = at_level.explanation["market_asks"]
    assert note["moved"] == ["capped at the collection's floor ask (token 77)"]
    assert (note["floor_ask_eth"], note["floor_token_id"], note["floor_venue"]) == (
        7.0,
        "77",
        "opensea",
    )
    premium = apply_market(quote_with([], level=4.0), floor)  # 2.5x the level: its traits
    assert premium.price_eth == 10.0 and premium.explanation["market_asks"]["moved"] == []
    above = apply_market(quote_with([], level=10.0), MarketAsks(floor=ListedAsk(77, 11.0, "x")))
    assert (above.price_eth, above.high_eth) == (10.0, 11.0)  # the top is cut to the floor
    assert apply_market(quote(), MarketAsks()) == quote()


@pytest.fixture
def premium_ctx(db_url: str) -> Iterator[WorkerContext]:
    """Aliens (every fourth token) sell at 3 ETH, the others at 1 ETH."""
    context = WorkerContext(
        WorkerConfig(database_url=db_url, broker_url="memory://", extractors=("gradient-v1",))
    )
    _add_tokens(context.factory, range(40))
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=300)
    with context.factory.begin() as s:
        for n in range(240):
            token = (n * 7) % 40
            eth = (3.0 if token % 4 == 0 else 1.0) * (1.0 + (n % 7) / 100)
            _add_sale(s, n + 1, token, start + dt.timedelta(hours=30 * n), eth)
    yield context
    context.engine.dispose()


def test_the_stored_valuation_reads_the_floor_and_the_comparables_asks(
    premium_ctx: WorkerContext,
) -> None:
    ctx = premium_ctx
    alien, ape = _valued(ctx, 4), _valued(ctx, 5)
    assert alien.price_eth is not None and ape.price_eth is not None
    assert alien.price_eth > 2 * ape.price_eth
    assert "market_asks" not in alien.explanation  # nothing is listed

    # the two aliens most like token 4 (same hat) listed at two thirds of their last sales
    with ctx.factory.begin() as s:
        add_order(s, 16, 2000, "offered", 2.0, ZERO, contract=CONTRACT, chain_id=CHAIN)
        add_order(s, 28, 2001, "offered", 2.0, ZERO, contract=CONTRACT, chain_id=CHAIN)
    lowered = _valued(ctx, 4)
    note = lowered.explanation["market_asks"]
    listed = [c for c in lowered.explanation["comparables"] if "ask_eth" in c]
    assert {c["token_id"] for c in listed} == {16, 28} and note["comparables_listed"] == 2
    assert note["comparables_shift"] < -0.05
    assert lowered.price_eth == pytest.approx(
        alien.price_eth * math.exp(note["comparables_shift"]), rel=1e-3
    )
    assert note["at_collection_level"] is False  # an alien: the 2 ETH floor does not cap it
    assert _valued(ctx, 5).price_eth == pytest.approx(ape.price_eth)  # 2 ETH is above an ape

    with ctx.factory.begin() as s:  # an ape listed under the apes' level: the new floor
        add_order(s, 9, 2002, "offered", 0.6, ZERO, contract=CONTRACT, chain_id=CHAIN)
    capped = _valued(ctx, 5)
    assert capped.price_eth == pytest.approx(0.6) and capped.price_high_eth == pytest.approx(0.6)
    floor = capped.explanation["market_asks"]
    assert floor["floor_token_id"] == "9" and floor["at_collection_level"] is True
    assert "capped at the collection's floor ask (token 9)" in floor["moved"]
    assert _valued(ctx, 4).price_eth > 1.0  # the alien still is not
    # the floor's own valuation is bounded by its own ask, not by itself as the floor
    own = _valued(ctx, 9)
    assert own.explanation["market_asks"]["floor_token_id"] in {"16", "28"}
    assert own.explanation["orders"]["ask_eth"] == pytest.approx(0.6)
