"""The listing stream's cursor: a ``store.listings`` position as the client holds it (an SSE
event id), checked against the store's column types before any query compares with it, and the
reads of the listings that hand one out."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from nftwatch.api.params import BIGINT_MAX, INT_MAX
from store import listings
from store.listings import ListedToken, Position

MAX_CURSOR_CHARS = 64  # three parts of at most 19 digits, two dashes and a sign


class Cursor(Position):
    """Where a client stands: the last listing it saw (block, log index) and the highest
    valuation id it saw. Encoded as ``block-logindex-valuationid`` (an SSE event id)."""

    __slots__ = ()

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


def head(session: Session) -> Cursor:
    """The cursor just past everything stored now: a stream from here sends only what is new."""
    return Cursor(*listings.head(session))


def changes(session: Session, since: Cursor, limit: int) -> tuple[list[ListedToken], Cursor]:
    """What changed after ``since`` (``store.listings.changes``) and the cursor to ask from next."""
    rows, after = listings.changes(session, since, limit)
    return rows, Cursor(*after)
