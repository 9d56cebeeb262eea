"""The sales CSV loader on the real mainnet file and on broken rows."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from valuation.sales import InvalidSalesData, SkippedRow, load_sales_csv

HEADER = "timestamp,punk_id,price_eth,price_wei,from,to,block,tx_hash\n"
A = "0x" + "ab" * 20
TX = "0x" + "cd" * 32


def _row(ts: str = "2019-01-02 03:04:05 UTC", punk: str = "7", eth: str = "1.5") -> str:
    wei = str(int(float(eth) * 10**18)) if eth.replace(".", "").isdigit() else "1"
    return f"{ts},{punk},{eth},{wei},{A},{A},123,{TX}\n"


def test_loads_the_real_cryptopunks_sales(shared_data: Path) -> None:
    sales = load_sales_csv(shared_data / "cryptopunks" / "sales_2017-06-23_to_2020-06-30.csv")
    assert len(sales) == 4520
    assert all(a.time <= b.time for a, b in itertools.pairwise(sales))
    assert all(0 <= s.token_id < 10_000 for s in sales)
    first = sales[0]
    assert first.token_id == 544 and first.price_eth == pytest.approx(0.01)
    assert first.time.tzinfo is not None and first.time.isoformat().startswith(
        "2017-06-23T21:05:06"
    )


def test_a_bad_row_is_named_by_its_line(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(HEADER + _row() + _row(eth="-2"))
    with pytest.raises(InvalidSalesData, match=r"line 3: price_eth"):
        load_sales_csv(path)
    path.write_text(HEADER + _row() + _row() + _row(ts="yesterday"))
    with pytest.raises(InvalidSalesData, match=r"line 4: timestamp"):
        load_sales_csv(path)
    path.write_text(HEADER + _row(punk="x1"))
    with pytest.raises(InvalidSalesData, match=r"line 2: punk_id"):
        load_sales_csv(path)
    path.write_text(HEADER + _row().replace(A, "0x12", 1))
    with pytest.raises(InvalidSalesData, match=r"line 2: from"):
        load_sales_csv(path)
    path.write_text(HEADER + "2019-01-02 03:04:05 UTC,7\n")
    with pytest.raises(InvalidSalesData, match=r"line 2: wrong number of fields"):
        load_sales_csv(path)


def test_prices_in_wei_and_eth_must_agree(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(HEADER + _row().replace("1500000000000000000", "2500000000000000000"))
    with pytest.raises(InvalidSalesData, match="disagrees"):
        load_sales_csv(path)


def test_missing_columns_and_files_are_clear(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("timestamp,price_eth\n")
    with pytest.raises(InvalidSalesData, match="missing column"):
        load_sales_csv(path)
    with pytest.raises(InvalidSalesData, match="cannot read"):
        load_sales_csv(tmp_path / "absent.csv")


def test_rows_come_back_sorted_by_time(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(HEADER + _row(ts="2019-01-03 00:00:00 UTC") + _row(punk="8"))
    sales = load_sales_csv(path)
    assert [s.token_id for s in sales] == [8, 7]


def test_unpriced_rows_are_skipped_and_named_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(HEADER + _row() + _row(eth="-") + _row())
    with pytest.raises(InvalidSalesData, match=r"line 3: price_eth '-'"):
        load_sales_csv(path)
    skipped: list[SkippedRow] = []
    sales = load_sales_csv(path, skipped=skipped)
    assert len(sales) == 2
    assert skipped == [SkippedRow(3, "price_eth '-' is not a number")]
    # a row that is not a sale at all still refuses the file
    path.write_text(HEADER + _row(eth="-") + _row(ts="yesterday"))
    with pytest.raises(InvalidSalesData, match=r"line 3: timestamp"):
        load_sales_csv(path, skipped=[])
