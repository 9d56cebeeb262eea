"""Valuation explanations reach Postgres as valid JSON: NaN and infinities become null."""

from __future__ import annotations

import json
import math

from sqlalchemy import create_engine, text

from worker.valuing import json_safe


def test_nan_and_infinities_become_null_and_postgres_accepts_the_result(db_url: str) -> None:
    explanation = {
        "own_trades": [{"price_eth": 1.5, "relative_to_market": math.nan}],
        "market": {"median_7d": math.inf, "sales": 3},
        "drivers": (("rarity", -math.inf),),
    }
    safe = json_safe(explanation)
    assert safe == {
        "own_trades": [{"price_eth": 1.5, "relative_to_market": None}],
        "market": {"median_7d": None, "sales": 3},
        "drivers": [["rarity", None]],
    }
    engine = create_engine(db_url)
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT CAST(:doc AS jsonb)"), {"doc": json.dumps(safe, allow_nan=False)}
        ).scalar()
    engine.dispose()
    assert stored == safe
