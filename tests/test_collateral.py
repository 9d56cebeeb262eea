"""The collateral value and its guards, from a stored valuation's figures and explanation."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from valuation.collateral import LendingPolicy, collateral

AT = datetime(2024, 5, 1, tzinfo=UTC)


def evidence(days_ago: list[float], *, sales_30d: int = 40, level: float = 10.0) -> dict[str, Any]:
    return {
        "market": {"sales_30d": sales_30d, "level_eth": level},
        "comparables": [
            {"token_id": i, "last_sale_time": (AT - timedelta(days=d)).isoformat()}
            for i, d in enumerate(days_ago)
        ],
    }


def test_the_haircut_grows_as_liquidity_falls_and_a_well_evidenced_value_is_lendable() -> None:
    liquid = collateral(
        price_eth=10.0, low_eth=8.0, p_liquid=1.0, valued_at=AT, explanation=evidence([3, 9, 20])
    )
    illiquid = collateral(
        price_eth=10.0, low_eth=8.0, p_liquid=0.0, valued_at=AT, explanation=evidence([3, 9, 20])
    )
    assert liquid.value_eth == pytest.approx(8.0 * 0.9)
    assert illiquid.value_eth == pytest.approx(8.0 * 0.6)
    assert liquid.lendable and liquid.flags == ()
    assert liquid.newest_evidence_age_days == 3.0 and liquid.comparables == 3
    assert liquid.level_deviation == 0.0 and liquid.sales_30d == 40


def test_each_guard_raises_its_flag() -> None:
    def flags(**kw: Any) -> tuple[str, ...]:
        args: dict[str, Any] = {
            "price_eth": 10.0,
            "low_eth": 8.0,
            "p_liquid": 0.5,
            "valued_at": AT,
            "explanation": evidence([3, 9, 20]),
        }
        return collateral(**{**args, **kw}).flags

    assert flags() == ()
    assert flags(explanation=evidence([100, 120, 200])) == ("stale",)
    assert flags(explanation=evidence([3])) == ("thin",)
    assert flags(explanation=evidence([3, 9, 20], sales_30d=2)) == ("thin",)
    assert flags(explanation=evidence([3, 9, 20], level=2.0)) == ("off_market",)
    assert flags(price_eth=math.nan, low_eth=math.nan) == ("no_estimate",)
    # no dated evidence at all: nothing says the price is current
    assert flags(explanation={"market": {"sales_30d": 40}}) == ("thin", "stale")


def test_visual_neighbours_and_own_trades_count_as_evidence() -> None:
    explanation = {
        "visual_neighbours": [
            {"last_sale_eth": 1.0, "last_sale_time": (AT - timedelta(days=5)).isoformat()},
            {"last_sale_eth": 1.2, "last_sale_time": None},
            {"last_sale_eth": None, "last_sale_time": AT.isoformat()},  # never sold: not evidence
            {"last_sale_eth": 0.9, "last_sale_time": "not a time"},
        ],
        "own_trades": [{"time": (AT - timedelta(days=1)).isoformat(), "price_eth": 1.1}],
    }
    c = collateral(price_eth=1.0, low_eth=0.8, p_liquid=0.2, valued_at=AT, explanation=explanation)
    assert c.comparables == 3 and c.newest_evidence_age_days == 1.0
    assert c.flags == () and c.to_dict()["lendable"] is True


def test_a_stricter_policy_flags_more() -> None:
    strict = LendingPolicy(stale_after_days=2.0, min_comparables=5)
    c = collateral(
        price_eth=10.0,
        low_eth=8.0,
        p_liquid=0.5,
        valued_at=AT,
        explanation=evidence([3, 9, 20]),
        policy=strict,
    )
    assert c.flags == ("thin", "stale") and not c.lendable


def test_a_crossed_book_is_flagged_and_an_ordinary_one_is_not() -> None:
    def flags(orders: dict[str, Any]) -> tuple[str, ...]:
        explanation = {**evidence([3, 9, 20]), "orders": orders}
        return collateral(
            price_eth=10.0, low_eth=8.0, p_liquid=0.5, valued_at=AT, explanation=explanation
        ).flags

    assert flags({"ask_eth": 9.0, "bid_eth": 9.5}) == ("crossed_book",)
    assert flags({"ask_eth": 12.0, "bid_eth": 9.0}) == ()
    assert flags({"ask_eth": None, "bid_eth": 9.0}) == ()
