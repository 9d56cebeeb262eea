"""Wash-trade and outlier flags: each rule on sales built to trip it, and on real sales."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from valuation import fit
from valuation.sales import SaleRecord
from valuation.wash import WashPolicy, clean_sales, flag_counts, flag_sales

T0 = datetime(2021, 3, 1, tzinfo=UTC)
A, B, C, D = ("0x" + c * 40 for c in "abcd")


def sale(
    day: float,
    token: int,
    price: float,
    seller: str = A,
    buyer: str = B,
    *,
    marketplace: str | None = None,
    fees_eth: float | None = None,
) -> SaleRecord:
    return SaleRecord(
        time=T0 + timedelta(days=day),
        token_id=token,
        price_eth=price,
        seller=seller,
        buyer=buyer,
        tx_hash=f"0x{int(day * 1000) + token:064x}",
        marketplace=marketplace,
        fees_eth=fees_eth,
    )


def busy_market(days: int = 60) -> list[SaleRecord]:
    """A sale a day of different tokens at about 10 ETH, between different wallets."""
    return [
        sale(d, 100 + d, 10.0 + (d % 5) * 0.2, "0x" + f"{d:040x}", "0x" + f"{d + 999:040x}")
        for d in range(days)
    ]


def test_a_self_trade_and_a_round_trip_are_flagged_with_their_reasons() -> None:
    sales = [
        *busy_market(),
        sale(10.5, 1, 9.0, A, A),  # seller is the buyer
        sale(20.2, 2, 11.0, A, B),
        sale(35.2, 2, 12.0, B, A),  # back to A within 30 days
        sale(20.3, 3, 11.0, C, D),
        sale(80.3, 3, 11.5, D, C),  # back, but 60 days later: a trade, not a trip
    ]
    flags = flag_sales(sales)
    by_tx = {s.tx_hash: f for s, f in zip(sales, flags, strict=True)}
    assert by_tx[sales[-5].tx_hash] == ("self_trade",)
    assert by_tx[sales[-4].tx_hash] == by_tx[sales[-3].tx_hash] == ("round_trip",)
    assert by_tx[sales[-2].tx_hash] == by_tx[sales[-1].tx_hash] == ()
    assert sum(1 for f in flags[:60] if f) == 0  # the ordinary market is left alone


def test_churn_flags_every_sale_of_a_burst() -> None:
    wallets = ["0x" + f"{i:040x}" for i in range(10)]
    burst = [sale(30 + i * 2, 7, 10.0, wallets[i], wallets[i + 1]) for i in range(3)]
    spread = [sale(10 + i * 9, 8, 10.0, wallets[i], wallets[i + 1]) for i in range(3)]
    flags = flag_sales([*busy_market(), *burst, *spread])
    assert flags[60:63] == [("churn",)] * 3
    assert flags[63:] == [()] * 3
    assert flag_sales(burst, WashPolicy(churn_sales=4)) == [()] * 3


def test_an_off_level_print_in_a_quiet_market_is_flagged_but_not_one_in_a_busy_one() -> None:
    quiet = [
        sale(d * 10, 200 + d, 10.0, "0x" + f"{d:040x}", "0x" + f"{d + 99:040x}") for d in range(30)
    ]
    odd_quiet = sale(305, 1, 100.0, C, D)  # 10x the level, nobody else trading that week
    odd_busy = sale(101, 2, 100.0, C, D)  # 10x, but the day after another sale
    flags = flag_sales([*quiet, odd_quiet, odd_busy])
    assert flags[-2] == ("off_level_quiet",) and flags[-1] == ()
    assert flag_sales([*quiet, odd_quiet], WashPolicy(outliers=False))[-1] == ()


def test_a_fee_less_fill_is_flagged_only_on_a_market_named_as_charging_fees() -> None:
    fill = sale(5, 1, 10.0, C, D, marketplace="seaport", fees_eth=0.0)
    paid = sale(6, 2, 10.0, C, D, marketplace="seaport", fees_eth=0.25)
    assert flag_sales([fill, paid]) == [(), ()]
    strict = WashPolicy(fee_charging_markets=frozenset({"seaport"}))
    assert flag_sales([fill, paid], strict) == [("private_fill",), ()]


def test_flagged_sales_are_left_out_of_the_fit_and_counted() -> None:
    sales = [*busy_market(), sale(10.5, 100, 9.0, A, A)]
    clean, counts = clean_sales(sales)
    assert len(clean) == 60 and counts == {"sales": 1, "self_trade": 1}
    attributes = {100 + d: {"Type": "Male"} for d in range(60)}
    model = fit(sales, attributes, as_of=T0 + timedelta(days=61))
    assert model.excluded == {"sales": 1, "self_trade": 1}
    assert model.training_sales == 60


def test_real_cryptopunks_sales_are_mostly_market_prices(sales: list[SaleRecord]) -> None:
    counts = flag_counts(flag_sales(sales))
    # a few percent at most of the punks' own market, whose sales are on-chain bids and asks
    assert 0 < counts["sales"] < 0.05 * len(sales)
    assert counts["self_trade"] == 0
