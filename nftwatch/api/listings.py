"""On-chain listings (``kind = 'offered'``) with each token's latest valuation, and the cursor
that lets a stream hand out only what changed: new listings, and listings whose token was
valued again since the client last looked."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import Session

from nftwatch.api.params import BIGINT_MAX, INT_MAX
from store.models import Listing, Token, Valuation
from store.tokens import owners_before

OFFERED = "offered"
# at most this many re-valued tokens are looked at per poll, so a backfill that values
# thousands of tokens moves the cursor in bounded steps instead of one huge query
VALUATION_BATCH = 500
MAX_CURSOR_CHARS = 64  # three parts of at most 19 digits, two dashes and a sign

TokenKey = tuple[int, str, int]


@dataclass(frozen=True, order=True)
class Cursor:
    """Where a client stands: the last listing it saw (block, log index) and the highest
    valuation id it saw. Encoded as ``block-logindex-valuationid`` (an SSE event id)."""

    block_number: int = 0
    log_index: int = -1
    valuation_id: int = 0

    def encode(self) -> str:
        return f"{self.block_number}-{self.log_index}-{self.valuation_id}"

    @classmethod
    def decode(cls, value: str) -> Cursor:
        """The cursor ``value`` names; ValueError (with the reason) for anything the store
        could not compare with: each part within its column's type (BIGINT, INTEGER)."""
        if len(value) > MAX_CURSOR_CHARS:
            raise ValueError(f"cursor must be at most {MAX_CURSOR_CHARS} characters")
        # a leading "-" is the only sign a part may carry (log index -1: before any log)
        parts = re.fullmatch(r"\s*([0-9]+)-(-1|[0-9]+)-([0-9]+)\s*", value)
        if parts is None:
            if value.strip().count("-") < 2:
                raise ValueError("cursor must look like BLOCK-LOGINDEX-VALUATIONID")
            raise ValueError("cursor parts must be non-negative integers (log index: -1 or more)")
        block, log_index, valuation_id = (int(p) for p in parts.groups())
        if block > BIGINT_MAX or valuation_id > BIGINT_MAX or log_index > INT_MAX:
            raise ValueError(
                f"cursor out of range: block and valuation id at most {BIGINT_MAX}, "
                f"log index at most {INT_MAX}"
            )
        return cls(block, log_index, valuation_id)


@dataclass(frozen=True)
class ListedToken:
    listing: Listing
    valuation: Valuation | None
    has_image: bool
    name: str | None
    # who held the token when it was offered (a PunkOffered names only the buyer it is
    # reserved for); None where no earlier transfer of it is stored
    seller: str | None = None

    @property
    def key(self) -> TokenKey:
        return (self.listing.chain_id, self.listing.contract, int(self.listing.token_id))


def head(session: Session) -> Cursor:
    """The cursor just past everything stored now: a stream from here sends only what is new."""
    last = session.execute(
        select(Listing.block_number, Listing.log_index)
        .where(Listing.kind == OFFERED)
        .order_by(Listing.block_number.desc(), Listing.log_index.desc())
        .limit(1)
    ).first()
    vid = session.scalar(select(func.max(Valuation.id))) or 0
    if last is None:
        return Cursor(0, -1, int(vid))
    return Cursor(int(last.block_number), int(last.log_index), int(vid))


def recent(
    session: Session, limit: int, chain_id: int | None = None, contract: str | None = None
) -> list[ListedToken]:
    """The newest offers, newest first."""
    query = select(Listing).where(Listing.kind == OFFERED)
    if chain_id is not None:
        query = query.where(Listing.chain_id == chain_id)
    if contract is not None:
        query = query.where(Listing.contract == contract)
    rows = list(
        session.scalars(
            query.order_by(Listing.block_number.desc(), Listing.log_index.desc()).limit(limit)
        )
    )
    return _with_valuations(session, rows)


def changes(session: Session, since: Cursor, limit: int) -> tuple[list[ListedToken], Cursor]:
    """Listings newer than ``since`` (oldest first) and the latest listing of every token valued
    after ``since.valuation_id``; with the cursor to ask from next time."""
    new = list(
        session.scalars(
            select(Listing)
            .where(
                Listing.kind == OFFERED,
                tuple_(Listing.block_number, Listing.log_index)
                > tuple_(since.block_number, since.log_index),
            )
            .order_by(Listing.block_number, Listing.log_index)
            .limit(limit)
        )
    )
    block, log_index = since.block_number, since.log_index
    if new:
        block, log_index = new[-1].block_number, new[-1].log_index
    revalued = session.execute(
        select(Valuation.id, Valuation.chain_id, Valuation.contract, Valuation.token_id)
        .where(Valuation.id > since.valuation_id)
        .order_by(Valuation.id)
        .limit(VALUATION_BATCH)
    ).all()
    vid = int(revalued[-1].id) if revalued else since.valuation_id
    seen = {(x.chain_id, x.contract, int(x.token_id)) for x in new}
    wanted = {(r.chain_id, r.contract, int(r.token_id)) for r in revalued} - seen
    rows = new + [
        x for x in _latest_listings(session, wanted) if _position(x) <= (block, log_index)
    ]
    return _with_valuations(session, rows), Cursor(block, log_index, vid)


def _position(listing: Listing) -> tuple[int, int]:
    return (listing.block_number, listing.log_index)


def _token_filter(model: Any, keys: set[TokenKey]) -> Any:
    return tuple_(model.chain_id, model.contract, model.token_id).in_(
        [(c, a, Decimal(t)) for c, a, t in keys]
    )


def _latest_listings(session: Session, keys: set[TokenKey]) -> list[Listing]:
    if not keys:
        return []
    return list(
        session.scalars(
            select(Listing)
            .where(Listing.kind == OFFERED, _token_filter(Listing, keys))
            .order_by(
                Listing.chain_id,
                Listing.contract,
                Listing.token_id,
                Listing.block_number.desc(),
                Listing.log_index.desc(),
            )
            .ext(distinct_on(Listing.chain_id, Listing.contract, Listing.token_id))
        )
    )


def _with_valuations(session: Session, rows: Iterable[Listing]) -> list[ListedToken]:
    listings = list(rows)
    keys = {(x.chain_id, x.contract, int(x.token_id)) for x in listings}
    valuations: dict[TokenKey, Valuation] = {}
    tokens: dict[TokenKey, tuple[bool, str | None]] = {}
    if keys:
        for v in session.scalars(
            select(Valuation)
            .where(_token_filter(Valuation, keys))
            .order_by(
                Valuation.chain_id,
                Valuation.contract,
                Valuation.token_id,
                Valuation.valued_at.desc(),
                Valuation.id.desc(),
            )
            .ext(distinct_on(Valuation.chain_id, Valuation.contract, Valuation.token_id))
        ):
            valuations[(v.chain_id, v.contract, int(v.token_id))] = v
        for t in session.execute(
            select(
                Token.chain_id,
                Token.contract,
                Token.token_id,
                Token.image_sha256,
                Token.metadata_json,
            ).where(_token_filter(Token, keys))
        ):
            meta = t.metadata_json if isinstance(t.metadata_json, dict) else {}
            name = meta.get("name")
            tokens[(t.chain_id, t.contract, int(t.token_id))] = (
                t.image_sha256 is not None,
                name if isinstance(name, str) else None,
            )
    positions = [
        (x.chain_id, x.contract, int(x.token_id), x.block_number, x.log_index) for x in listings
    ]
    sellers = owners_before(session, positions)
    out = []
    for x, position in zip(listings, positions, strict=True):
        key = (x.chain_id, x.contract, int(x.token_id))
        has_image, name = tokens.get(key, (False, None))
        out.append(ListedToken(x, valuations.get(key), has_image, name, sellers.get(position)))
    return out
