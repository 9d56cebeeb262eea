"""The thin-market path: tokens without comparables are shrunk collection → trait → token, so
that they do not all get the collection's one number."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from valuation.sales import SaleRecord
from valuation.thin import value_thin_market

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def sales() -> list[SaleRecord]:
    """Eight sales: the aliens sold near 40 ETH, the others near 4."""
    out = []
    for n in range(8):
        token = n
        price = 40.0 + n if token % 4 == 0 else 4.0 + n / 10
        out.append(
            SaleRecord(
                time=T0 + timedelta(days=n),
                token_id=token,
                price_eth=price,
                seller=f"0x{2 * n:040x}",
                buyer=f"0x{2 * n + 1:040x}",
                tx_hash=f"0x{n:064x}",
            )
        )
    return out


TRAITS = {t: {"type": "alien" if t % 4 == 0 else "human", "hat": "cap"} for t in range(20)}


def test_tokens_without_comparables_differ_by_their_traits() -> None:
    at = T0 + timedelta(days=30)
    alien = value_thin_market(12, at, sales(), [], TRAITS)
    human = value_thin_market(13, at, sales(), [], TRAITS)
    plain = value_thin_market(13, at, sales(), [])
    assert alien.price_eth > 2 * human.price_eth  # the type's sales pull each its own way
    assert human.price_eth < plain.price_eth  # the collection's median alone sits between
    # a trait every sold token shares ("hat: cap") tells nothing and is left out
    assert value_thin_market(12, at, sales(), [], {t: {"hat": "cap"} for t in range(20)}) == (
        value_thin_market(12, at, sales(), [])
    )
