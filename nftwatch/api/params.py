"""Path and query validation with messages a desk analyst can act on (422).

Every bound here is the stored type's: chain ids and block numbers are BIGINT, log indexes
INTEGER, token ids NUMERIC(78). A value past them is refused at the edge, before it can reach
Postgres as an out-of-range error."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import HTTPException, Path

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
MAX_TOKEN_ID = 2**256 - 1
TOKEN_ID_DIGITS = 78  # len(str(2**256 - 1))
BIGINT_MAX = 2**63 - 1
INT_MAX = 2**31 - 1
# the window of a timestamp the API accepts: before Ethereum and far ahead, but far enough
# from datetime's own limits that a 30-day window around it stays representable
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
EXAMPLE_CONTRACT = "0xb47e3cd837ddf8e4c57f05d70ab865de6e193bbb"  # CryptoPunks
EXTRACTOR_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_EXTRACTOR = re.compile(EXTRACTOR_PATTERN)


def unprocessable(message: str) -> HTTPException:
    return HTTPException(status_code=422, detail=message)


def parse_contract(value: str) -> str:
    if not _ADDRESS.fullmatch(value):
        raise unprocessable(f"contract must be 0x followed by 40 hex digits, got {_shown(value)}")
    return value.lower()


def parse_token_id(value: str) -> int:
    # the length check comes first: int() of thousands of digits is slow, and refused
    # past Python's own limit with an error of its own
    if len(value) > TOKEN_ID_DIGITS:
        raise unprocessable(
            f"token_id must be at most 2**256-1 ({TOKEN_ID_DIGITS} digits), got {len(value)} "
            "characters"
        )
    if not value.isascii() or not value.isdigit():
        raise unprocessable(f"token_id must be a decimal integer, got {_shown(value)}")
    number = int(value)
    if number > MAX_TOKEN_ID:
        raise unprocessable("token_id must be at most 2**256-1")
    return number


def parse_chain_id(value: int) -> int:
    if value <= 0:
        raise unprocessable(f"chain_id must be a positive integer, got {value}")
    if value > BIGINT_MAX:
        raise unprocessable(f"chain_id must be at most {BIGINT_MAX} (2**63-1)")
    return value


def parse_extractor(value: str | None) -> str | None:
    if value is not None and not _EXTRACTOR.fullmatch(value):
        raise unprocessable(
            "extractor must be 1-64 letters, digits, '.', '_' or '-' (e.g. effnet-lite0-v1), "
            f"got {_shown(value)}"
        )
    return value


def parse_instant(name: str, value: dt.datetime | None) -> dt.datetime | None:
    """A timestamp inside the range the store can compute windows around; naive means UTC."""
    if value is None:
        return None
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    if not EARLIEST <= aware <= LATEST:
        raise unprocessable(
            f"{name} must be between {EARLIEST.date().isoformat()} and "
            f"{LATEST.date().isoformat()}, got {value.isoformat()}"
        )
    return aware


def _shown(value: str, limit: int = 80) -> str:
    """A rejected value as the message shows it: quoted, escaped, and cut short."""
    text = repr(value[:limit])
    return text + "…" if len(value) > limit else text


@dataclass(frozen=True)
class TokenRef:
    chain_id: int
    contract: str
    token_id: int

    @property
    def path(self) -> str:
        return f"{self.chain_id}/{self.contract}/{self.token_id}"


@dataclass(frozen=True)
class CollectionRef:
    chain_id: int
    contract: str


# The bounds are declared in the schema (for /docs and the fuzz test) but checked by the
# parsers above, whose messages name the parameter and the limit.
ChainPath = Annotated[
    int,
    Path(
        description="EIP-155 chain id (1 for Ethereum mainnet), 1..2**63-1.",
        examples=[1],
        json_schema_extra={"minimum": 1, "maximum": BIGINT_MAX},
    ),
]
ContractPath = Annotated[
    str,
    Path(
        description="Contract address, 0x + 40 hex digits.",
        examples=[EXAMPLE_CONTRACT],
        json_schema_extra={"pattern": "^0x[0-9a-fA-F]{40}$"},
    ),
]
TokenIdPath = Annotated[
    str,
    Path(
        description="Decimal token id, 0..2**256-1.",
        examples=["7804"],
        json_schema_extra={"pattern": "^[0-9]{1,78}$"},
    ),
]


def token_ref(chain_id: ChainPath, contract: ContractPath, token_id: TokenIdPath) -> TokenRef:
    return TokenRef(parse_chain_id(chain_id), parse_contract(contract), parse_token_id(token_id))


def collection_ref(chain_id: ChainPath, contract: ContractPath) -> CollectionRef:
    return CollectionRef(parse_chain_id(chain_id), parse_contract(contract))
