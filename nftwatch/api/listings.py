"""The listing stream's cursor: a ``store.listings`` position as the client holds it (an SSE
event id), checked against the store's column types before any query compares with it, and the
reads of the listings that hand one out."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from nftwatch.api.params import BIGINT_MAX, INT_MAX
from store import listings
from store.listings import ListedToken, Position

# six parts of at most 19 digits, five dashes and a sign
MAX_CURSOR_CHARS = 6 * 19 + 5 + 1


class Cursor(Position):
    """Where a client stands: the last on-chain offer it saw (block, log index), the last
    valuation it saw (id, and its transaction's id), and the last off-chain listing change it
    saw (transaction id, sequence number). Encoded as
    ``block-logindex-valuationid-xid-seq-valuationxid`` (an SSE event id).

    Cursors of the earlier formats still resume: ``block-logindex-valuationid`` (before
    off-chain listings were streamed) as a client that has seen no off-chain change yet, and
    both it and ``block-logindex-valuationid-xid-seq`` (before valuations carried their
    transaction) on from their valuation id."""

    __slots__ = ()

    def encode(self) -> str:
        # a position still from before valuations carried their transaction keeps that format
        parts = self if self.valuation_xid >= 0 else self[:5]
        return "-".join(str(p) for p in parts)

    @classmethod
    def decode(cls, value: str) -> Cursor:
        """The cursor ``value`` names; ValueError (with the reason) for anything the store
        could not compare with: each part within its column's type (BIGINT, INTEGER)."""
        if len(value) > MAX_CURSOR_CHARS:
            raise ValueError(f"cursor must be at most {MAX_CURSOR_CHARS} characters")
        # a leading "-" is the only sign a part may carry (log index -1: before any log)
        parts = re.fullmatch(
            r"\s*([0-9]+)-(-1|[0-9]+)-([0-9]+)(?:-([0-9]+)-([0-9]+)(?:-([0-9]+))?)?\s*", value
        )
        if parts is None:
            if value.strip().count("-") < 2:
                raise ValueError(f"cursor must look like {SHAPE}")
            raise ValueError(
                f"cursor must look like {SHAPE}: non-negative integers (log index: -1 or more)"
            )
        *five, vxid_part = parts.groups()
        block, log_index, valuation_id, xid, seq = (int(p or 0) for p in five)
        valuation_xid = -1 if vxid_part is None else int(vxid_part)
        if max(block, valuation_id, xid, seq, valuation_xid) > BIGINT_MAX or log_index > INT_MAX:
            raise ValueError(
                f"cursor out of range: block, valuation id, transaction ids and sequence at "
                f"most {BIGINT_MAX}, log index at most {INT_MAX}"
            )
        return cls(block, log_index, valuation_id, xid, seq, valuation_xid)


SHAPE = "BLOCK-LOGINDEX-VALUATIONID-XID-SEQ-VALUATIONXID (as /v1/listings/recent hands it out)"


def head(session: Session) -> Cursor:
    """The cursor just past everything stored now: a stream from here sends only what is new."""
    return Cursor(*listings.head(session))


def changes(session: Session, since: Cursor, limit: int) -> tuple[list[ListedToken], Cursor]:
    """What changed after ``since`` (``store.listings.changes``) and the cursor to ask from next."""
    rows, after = listings.changes(session, since, limit)
    return rows, Cursor(*after)
