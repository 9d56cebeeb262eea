"""The valuation model on the real CryptoPunks sales: no look-ahead, versions, explanations."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from valuation import FittedModel, SaleRecord, fit

AS_OF = datetime(2019, 7, 1, tzinfo=UTC)
AT = datetime(2019, 10, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def model(sales: list[SaleRecord], attributes: dict[int, dict[str, str]]) -> FittedModel:
    return fit(sales, attributes, as_of=AS_OF)


def _perturb_after(sales: list[SaleRecord], t: datetime, token: int) -> list[SaleRecord]:
    """Every sale at or after ``t`` ten times dearer, plus invented sales of ``token``."""
    out = [replace(s, price_eth=s.price_eth * 10) if s.time >= t else s for s in sales]
    base = sales[-1]
    for d in range(3):
        out.append(replace(base, token_id=token, time=t + timedelta(days=d), price_eth=99.0))
    return out


def test_a_valuation_ignores_everything_at_or_after_its_time(
    model: FittedModel, sales: list[SaleRecord]
) -> None:
    token = next(s.token_id for s in sales if AS_OF <= s.time < AT)  # traded since the fit
    honest = model.with_sales(sales).value(token, AT)
    tampered = model.with_sales(_perturb_after(sales, AT, token)).value(token, AT)
    assert honest.to_dict() == tampered.to_dict()
    # and the history before AT does matter: the same tampering earlier changes the answer
    earlier = model.with_sales(_perturb_after(sales, AS_OF, token)).value(token, AT)
    assert earlier.price_eth != honest.price_eth


def test_fitting_ignores_sales_after_the_cutoff(
    model: FittedModel, sales: list[SaleRecord], attributes: dict[int, dict[str, str]]
) -> None:
    again = fit(_perturb_after(sales, AS_OF, 1234), attributes, as_of=AS_OF)
    assert again.model_version == model.model_version
    assert np.array_equal(again.price.ridge.coef, model.price.ridge.coef)
    assert again.value(1234, AS_OF).to_dict() == model.value(1234, AS_OF).to_dict()


def test_versions_follow_the_data_cut(model: FittedModel) -> None:
    assert model.model_version.startswith("hedonic-knn-")
    assert len(model.model_version.rsplit("-", 1)[1]) == 12


def test_a_valuation_is_complete_and_serialisable(
    model: FittedModel, sales: list[SaleRecord]
) -> None:
    walk = model.with_sales(sales)
    traded = next(s.token_id for s in sales if s.time < AS_OF)
    v = walk.value(traded, AT)
    assert 0 < v.low_eth <= v.price_eth <= v.high_eth
    assert 0.0 <= v.p_liquid <= 1.0
    assert 0.0 <= v.confidence <= 1.0
    assert v.model_version == model.model_version
    e = json.loads(json.dumps(v.to_dict()))["explanation"]
    assert {"median_7d", "median_30d", "floor_proxy", "sales_30d"} <= set(e["market"])
    assert e["market"]["sales_30d"] == sum(1 for s in sales if AT - timedelta(30) <= s.time < AT)
    assert 0 < len(e["comparables"]) <= model.params.k_comparables
    for c in e["comparables"]:
        assert c["token_id"] != traded
        assert c["last_sale_time"] < AT.isoformat()
        assert set(c) == {"token_id", "similarity", "last_sale_eth", "last_sale_time"}
    assert e["rarity"]["rank"] >= 1 and e["rarity"]["top_traits"]
    floor = model.params.min_price_eth
    own = [s for s in sales if s.token_id == traded and s.time < AT and s.price_eth > floor]
    assert [t["tx_hash"] for t in e["own_trades"]] == [s.tx_hash for s in own]


def test_embeddings_choose_the_comparables(
    sales: list[SaleRecord], attributes: dict[int, dict[str, str]]
) -> None:
    rng = np.random.default_rng(7)
    vectors = {t: rng.normal(size=8) for t in attributes}
    target = 100
    twin = next(
        s.token_id
        for s in sales[500:]
        if s.time < AS_OF and s.price_eth > 0.1 and s.token_id != target
    )
    vectors[twin] = vectors[target] + 1e-3  # an image twin that has sold
    model = fit(sales, attributes, as_of=AS_OF, embeddings=vectors)
    comps = model.value(target, AS_OF).explanation["comparables"]
    assert comps[0]["token_id"] == twin
    assert comps[0]["similarity"] > 0.99
    sims = [c["similarity"] for c in comps]
    assert sims == sorted(sims, reverse=True)


def test_unknown_tokens_and_empty_markets_fail_clearly(
    model: FittedModel, sales: list[SaleRecord]
) -> None:
    with pytest.raises(KeyError, match="not in the collection"):
        model.value(10_000, AT)
    with pytest.raises(ValueError, match="market level"):
        model.value(1, sales[0].time - timedelta(days=1))
