"""Path and query validation with messages a desk analyst can act on (422)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import HTTPException, Path

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
MAX_TOKEN_ID = 2**256 - 1


def unprocessable(message: str) -> HTTPException:
    return HTTPException(status_code=422, detail=message)


def parse_contract(value: str) -> str:
    if not _ADDRESS.fullmatch(value):
        raise unprocessable(f"contract must be 0x followed by 40 hex digits, got {value!r}")
    return value.lower()


def parse_token_id(value: str) -> int:
    if not value.isascii() or not value.isdigit():
        raise unprocessable(f"token_id must be a decimal integer, got {value!r}")
    number = int(value)
    if number > MAX_TOKEN_ID:
        raise unprocessable("token_id must be at most 2**256-1")
    return number


def parse_chain_id(value: int) -> int:
    if value <= 0:
        raise unprocessable(f"chain_id must be a positive integer, got {value}")
    return value


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


ChainPath = Annotated[int, Path(description="EIP-155 chain id (1 for Ethereum mainnet).")]
ContractPath = Annotated[str, Path(description="Contract address, 0x + 40 hex digits.")]
TokenIdPath = Annotated[str, Path(description="Decimal token id, 0..2**256-1.")]


def token_ref(chain_id: ChainPath, contract: ContractPath, token_id: TokenIdPath) -> TokenRef:
    return TokenRef(parse_chain_id(chain_id), parse_contract(contract), parse_token_id(token_id))


def collection_ref(chain_id: ChainPath, contract: ContractPath) -> CollectionRef:
    return CollectionRef(parse_chain_id(chain_id), parse_contract(contract))
