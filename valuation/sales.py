"""Sale records and the CSV format of recorded mainnet sales.

The CSV has one row per sale, sorted by time, with the header
``timestamp,punk_id,price_eth,price_wei,from,to,block,tx_hash``; ``timestamp`` is a UTC block time
written ``YYYY-MM-DD HH:MM:SS UTC``. ``token_id`` (or ``punk_id``) is accepted as the id column so
that other collections can use the same loader.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from valuation.errors import Permanent

__all__ = [
    "InvalidSalesData",
    "SaleRecord",
    "SkippedRow",
    "StoredSale",
    "load_sales_csv",
    "parse_sales_rows",
    "priced_single_sales",
]

WEI = Decimal(10**18)

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_TX_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")
_REQUIRED = ("timestamp", "price_eth", "from", "to", "tx_hash")
_MAX_TOKEN_ID = 2**256 - 1


class InvalidSalesData(Permanent):
    """A sales file that cannot be read: missing columns or a row that does not parse."""


class _Unpriced(ValueError):
    """A row whose price is unknown (real exports write ``-`` or nothing) or malformed."""


@dataclass(frozen=True, slots=True)
class SkippedRow:
    """A row left out because it cannot be priced: its 1-based line and why."""

    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class SaleRecord:
    """One sale: when, which token, for how much (ETH), between whom, in which transaction."""

    time: datetime
    token_id: int
    price_eth: float
    seller: str
    buyer: str
    tx_hash: str
    # the block number where the file has one: sales of one block (floor sweeps) are not
    # "before" each other, however the file orders them
    block: int | None = None
    # where the chain shows them: the market, and the fees paid in ETH (0: a fee-less fill)
    marketplace: str | None = None
    fees_eth: float | None = None


class StoredSale(Protocol):
    """A sale as the store keeps it (prices in wei; ``price_eth_wei`` None where the currency
    is not ether); read-only, so that any row with these attributes fits."""

    @property
    def block_time(self) -> datetime: ...
    @property
    def block_number(self) -> int: ...
    @property
    def token_id(self) -> Decimal: ...
    @property
    def price_eth_wei(self) -> Decimal | None: ...
    @property
    def fees_wei(self) -> Decimal: ...
    @property
    def bundle_size(self) -> int: ...
    @property
    def seller(self) -> str: ...
    @property
    def buyer(self) -> str: ...
    @property
    def tx_hash(self) -> str: ...
    @property
    def marketplace(self) -> str | None: ...


def priced_single_sales(rows: Iterable[StoredSale]) -> list[SaleRecord]:
    """Stored sales as the model reads them: priced in ether, one token each (a bundle's even
    split says little of either token)."""
    return [
        SaleRecord(
            time=r.block_time,
            token_id=int(r.token_id),
            price_eth=float(Decimal(r.price_eth_wei) / WEI),
            seller=r.seller,
            buyer=r.buyer,
            tx_hash=r.tx_hash,
            block=r.block_number,
            marketplace=r.marketplace,
            fees_eth=float(Decimal(r.fees_wei) / WEI),
        )
        for r in rows
        if r.price_eth_wei is not None and r.price_eth_wei > 0 and r.bundle_size == 1
    ]


def _parse_time(text: str) -> datetime:
    raw = text.strip()
    if raw.endswith(" UTC"):
        raw = raw[: -len(" UTC")]
    elif raw.endswith("Z"):
        raw = raw[:-1]
    parsed = datetime.fromisoformat(raw)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _parse_row(row: dict[str, str], id_column: str) -> SaleRecord:
    try:
        time = _parse_time(row["timestamp"])
    except ValueError as exc:
        raise ValueError(f"timestamp {row['timestamp']!r} is not a UTC time") from exc
    raw_id = row[id_column].strip()
    if not raw_id.isdigit() or int(raw_id) > _MAX_TOKEN_ID:
        raise ValueError(f"{id_column} {raw_id!r} is not a token id")
    try:
        price = float(row["price_eth"])
    except ValueError as exc:
        raise _Unpriced(f"price_eth {row['price_eth']!r} is not a number") from exc
    if not math.isfinite(price) or price < 0:
        raise _Unpriced(f"price_eth {row['price_eth']!r} is not a finite non-negative number")
    wei = (row.get("price_wei") or "").strip()
    if wei and wei != "-":
        if not wei.isdigit():
            raise _Unpriced(f"price_wei {wei!r} is not a whole number")
        # the two price columns must agree (price_eth is rounded to a few decimals)
        if abs(int(wei) / 1e18 - price) > max(1e-6, 1e-6 * price):
            raise _Unpriced(f"price_wei {wei} disagrees with price_eth {price}")
    seller, buyer = row["from"].strip(), row["to"].strip()
    for name, value in (("from", seller), ("to", buyer)):
        if not _ADDRESS.match(value):
            raise ValueError(f"{name} {value!r} is not an address")
    tx_hash = row["tx_hash"].strip()
    if not _TX_HASH.match(tx_hash):
        raise ValueError(f"tx_hash {tx_hash!r} is not a transaction hash")
    raw_block = (row.get("block") or "").strip()
    if raw_block and not raw_block.isdigit():
        raise ValueError(f"block {raw_block!r} is not a block number")
    return SaleRecord(
        time=time,
        token_id=int(raw_id),
        price_eth=price,
        seller=seller.lower(),
        buyer=buyer.lower(),
        tx_hash=tx_hash.lower(),
        block=int(raw_block) if raw_block else None,
    )


def parse_sales_rows(
    lines: Iterable[str], *, source: str = "<sales>", skipped: list[SkippedRow] | None = None
) -> list[SaleRecord]:
    """Parse CSV text lines (header first) into sales sorted by time.

    Raises ``InvalidSalesData`` naming ``source`` and the 1-based line of the first bad row.
    With ``skipped`` given, rows that cannot be priced (unknown or malformed price) are
    appended there instead; any other bad row still refuses the file, since it means the file
    is not what it claims to be.
    """
    reader = csv.DictReader(lines)
    header = reader.fieldnames or []
    missing = [c for c in _REQUIRED if c not in header]
    id_column = "token_id" if "token_id" in header else "punk_id"
    if id_column not in header:
        missing.append("token_id or punk_id")
    if missing:
        raise InvalidSalesData(f"{source}: missing column(s) {', '.join(missing)}")
    sales: list[SaleRecord] = []
    for row in reader:
        line = reader.line_num
        if None in row or any(v is None for v in row.values()):
            raise InvalidSalesData(f"{source}, line {line}: wrong number of fields")
        try:
            sales.append(_parse_row(row, id_column))
        except _Unpriced as exc:
            if skipped is None:
                raise InvalidSalesData(f"{source}, line {line}: {exc}") from exc
            skipped.append(SkippedRow(line, str(exc)))
        except ValueError as exc:
            raise InvalidSalesData(f"{source}, line {line}: {exc}") from exc
    # a stable sort keeps the file's order among sales in the same block
    sales.sort(key=lambda s: s.time)
    return sales


def load_sales_csv(
    path: str | Path, *, skipped: list[SkippedRow] | None = None
) -> list[SaleRecord]:
    """Read a sales CSV file; see the module docstring for the format and ``parse_sales_rows``
    for ``skipped``."""
    p = Path(path)
    try:
        with p.open(newline="", encoding="utf-8") as fh:
            return parse_sales_rows(fh, source=str(p.name), skipped=skipped)
    except OSError as exc:
        raise InvalidSalesData(f"{p}: cannot read ({exc.strerror or exc})") from exc
