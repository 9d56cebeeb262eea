"""The trait a collection's market splits by is chosen from its training sales, not named in code:
a punk's type on the real punk sales, a Moonbird's body where bodies set the price."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from valuation import model
from valuation.frame import SalesFrame
from valuation.sales import SaleRecord
from valuation.traits import collection_traits, primary_trait


@pytest.fixture(scope="module")
def moonbirds(shared_data: Path) -> dict[int, dict[str, str]]:
    folder = shared_data / "moonbirds-10k"
    metadata = {
        int(p.stem): json.loads(p.read_text()).get("attributes")
        for p in sorted(folder.glob("*.json"))[:2000]
    }
    return collection_traits(metadata)


def _priced_by(
    attributes: dict[int, dict[str, str]], trait: str, n: int = 400, seed: int = 3
) -> list[tuple[int, float]]:
    """Sales whose log price is a premium per value of ``trait`` plus noise."""
    rng = np.random.default_rng(seed)
    ids = sorted(attributes)
    values = sorted({own.get(trait, "") for own in attributes.values()})
    premium = {v: float(rng.normal(0.0, 0.8)) for v in values}
    tokens = rng.choice(ids, n)
    return [
        (int(t), 1.0 + premium[attributes[int(t)].get(trait, "")] + float(rng.normal(0, 0.2)))
        for t in tokens
    ]


def test_real_punk_sales_split_by_type(
    sales: list[SaleRecord], attributes: dict[int, dict[str, str]]
) -> None:
    priced = [(s.token_id, math.log(s.price_eth)) for s in sales[:1500] if s.price_eth > 0]
    assert primary_trait(attributes, priced) == "type"


@pytest.mark.parametrize("trait", ["Body", "Beak", "Background"])
def test_moonbirds_split_by_the_trait_that_prices_them(
    moonbirds: dict[int, dict[str, str]], trait: str
) -> None:
    assert primary_trait(moonbirds, _priced_by(moonbirds, trait)) == trait


def test_no_group_without_sales_or_without_a_pricing_trait(
    moonbirds: dict[int, dict[str, str]],
) -> None:
    assert primary_trait(moonbirds, []) is None
    assert primary_trait(moonbirds, _priced_by(moonbirds, "Body", n=10)) is None
    rng = np.random.default_rng(0)
    noise = [(int(t), float(rng.normal())) for t in rng.choice(sorted(moonbirds), 600)]
    assert primary_trait(moonbirds, noise) is None
    # Headwear is missing on a third of the birds: never a group, however it prices them
    assert primary_trait(moonbirds, _priced_by(moonbirds, "Headwear")) != "Headwear"


def test_the_frame_and_the_model_group_by_the_chosen_trait(
    moonbirds: dict[int, dict[str, str]],
) -> None:
    start = datetime(2022, 5, 1, tzinfo=UTC)
    records = [
        SaleRecord(
            time=start + timedelta(hours=6 * i),
            token_id=t,
            price_eth=math.exp(p),
            seller=f"0x{i:040x}",
            buyer=f"0x{i + 1_000_000:040x}",
            tx_hash=f"0x{i:064x}",
        )
        for i, (t, p) in enumerate(_priced_by(moonbirds, "Body", n=300))
    ]
    frame = SalesFrame.build(records, moonbirds).grouped_by(moonbirds, "Body")
    assert {str(moonbirds[int(t)]["Body"]) for t in frame.tokens} == set(frame.types)
    fitted = model.fit(records, moonbirds, as_of=start + timedelta(days=80))
    assert fitted.space.group_by == "Body"
    bodies = {own["Body"].lower() for own in moonbirds.values()}
    assert set(fitted.space.type_names) == bodies
