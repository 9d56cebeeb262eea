"""NFT-backed loans (Blur Blend) as a desk reads them: each lien's terms and how it ended.

The ``loans`` table holds one row per event (see :class:`store.models.Loan`); a lien is its
events folded in chain order: ``taken`` sets the terms, ``refinanced`` replaces lender, amount
and rate, ``auction`` marks it called, and ``repaid``, ``seized`` or ``bought`` end it. Events
that name only the lien (a repayment) are found by lien id, not by token.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import or_, select, tuple_
from sqlalchemy.orm import Session

from store.models import Loan

ENDINGS = ("repaid", "seized", "bought")


@dataclass
class Lien:
    protocol: str
    lien_id: int
    contract: str
    token_id: int | None
    status: str  # active | auction | repaid | seized | bought
    lender: str | None
    borrower: str | None
    principal_wei: int | None
    rate_bps: int | None
    taken_at: dt.datetime | None
    ended_at: dt.datetime | None
    repaid_wei: int | None
    events: int


def _int(x: Decimal | None) -> int | None:
    return None if x is None else int(x)


def fold(rows: list[Loan]) -> list[Lien]:
    """Liens from their event rows (any order), newest lien first."""
    liens: dict[tuple[str, int], Lien] = {}
    for row in sorted(rows, key=lambda r: (r.block_number, r.log_index)):
        key = (row.protocol, int(row.lien_id))
        lien = liens.get(key)
        if lien is None:
            lien = liens[key] = Lien(
                protocol=row.protocol,
                lien_id=key[1],
                contract=row.contract,
                token_id=_int(row.token_id),
                status="active",
                lender=None,
                borrower=None,
                principal_wei=None,
                rate_bps=None,
                taken_at=None,
                ended_at=None,
                repaid_wei=None,
                events=0,
            )
        lien.events += 1
        lien.token_id = lien.token_id if row.token_id is None else int(row.token_id)
        lien.lender = row.lender or lien.lender
        lien.borrower = row.borrower or lien.borrower
        if row.kind in ("taken", "refinanced"):
            lien.principal_wei = _int(row.principal_wei) or lien.principal_wei
            lien.rate_bps = _int(row.rate_bps) if row.rate_bps is not None else lien.rate_bps
            lien.taken_at = lien.taken_at or row.block_time
            lien.status = "active"
        elif row.kind == "auction":
            lien.status = "auction"
        elif row.kind in ENDINGS:
            lien.status = row.kind
            lien.ended_at = row.block_time
            lien.repaid_wei = _int(row.repaid_wei)
    return sorted(
        liens.values(),
        key=lambda x: x.taken_at or dt.datetime.min.replace(tzinfo=dt.UTC),
        reverse=True,
    )


def token_liens(session: Session, chain_id: int, contract: str, token_id: int) -> list[Lien]:
    """Every lien on one token, newest first, with the events that name only the lien."""
    ids = select(Loan.protocol, Loan.lien_id).where(
        Loan.chain_id == chain_id, Loan.contract == contract, Loan.token_id == Decimal(token_id)
    )
    rows = session.scalars(
        select(Loan).where(
            Loan.chain_id == chain_id,
            Loan.contract == contract,
            or_(
                Loan.token_id == Decimal(token_id),
                tuple_(Loan.protocol, Loan.lien_id).in_(ids),
            ),
        )
    ).all()
    return fold(list(rows))
