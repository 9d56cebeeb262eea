"""Collections and token rows: lookups, and the owner a token had before a chain position."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from store.chain import token_key_sql
from store.models import (
    Collection,
    Token,
)


def upsert_collection(
    session: Session, chain_id: int, address: str, name: str = "", standard: str = "erc721"
) -> None:
    stmt = insert(Collection).values(
        chain_id=chain_id, address=address.lower(), name=name, standard=standard
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["chain_id", "address"],
            set_={"name": stmt.excluded.name, "standard": stmt.excluded.standard},
        )
    )


def collections(session: Session, chain_id: int | None = None) -> list[Collection]:
    query = select(Collection).order_by(Collection.id)
    if chain_id is not None:
        query = query.where(Collection.chain_id == chain_id)
    return list(session.scalars(query))


def token(session: Session, chain_id: int, contract: str, token_id: int) -> Token | None:
    return session.get(Token, (chain_id, contract.lower(), Decimal(token_id)))


def token_exists(session: Session, chain_id: int, contract: str, token_id: int) -> bool:
    """Whether the store has recorded this token (one index probe, no row loaded)."""
    found = session.execute(
        select(Token.token_id)
        .where(
            Token.chain_id == chain_id,
            Token.contract == contract.lower(),
            Token.token_id == Decimal(token_id),
        )
        .limit(1)
    ).first()
    return found is not None


EventPosition = tuple[int, str, int, int, int]


_OWNERS_BEFORE = f"""
SELECT p.i, x.to_address, x.standard
FROM unnest(CAST(:chains AS bigint[]), CAST(:contracts AS text[]), CAST(:ids AS numeric[]),
            CAST(:blocks AS bigint[]), CAST(:logs AS int[]))
       WITH ORDINALITY AS p(chain_id, contract, token_id, block_number, log_index, i)
CROSS JOIN LATERAL (
  SELECT x.to_address, x.standard FROM transfers x
  WHERE {token_key_sql("x")} = {token_key_sql("p")}
    AND x.chain_id = p.chain_id AND x.contract = p.contract COLLATE "C"
    AND x.token_id = p.token_id
    AND (x.block_number, x.log_index) < (p.block_number, p.log_index)
  ORDER BY x.block_number DESC, x.log_index DESC, x.batch_index DESC
  LIMIT 1) x
"""


def owners_before(session: Session, positions: Sequence[EventPosition]) -> dict[EventPosition, str]:
    """Who held each token just before each position: the recipient of its latest stored
    transfer before it, in one statement for all of them (on the per-token transfer index).
    Absent where no transfer precedes it, and for ERC-1155 tokens, which have no one owner."""
    if not positions:
        return {}
    rows = session.execute(
        text(_OWNERS_BEFORE),
        {
            "chains": [p[0] for p in positions],
            "contracts": [p[1].lower() for p in positions],
            "ids": [Decimal(p[2]) for p in positions],
            "blocks": [p[3] for p in positions],
            "logs": [p[4] for p in positions],
        },
    )
    return {positions[r.i - 1]: r.to_address for r in rows if r.standard != "erc1155"}
