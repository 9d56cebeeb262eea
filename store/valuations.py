"""Stored valuations: one row per request, the latest read back."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import (
    Valuation,
)


def store_valuation(session: Session, **values: Any) -> int:
    valuation = Valuation(**values)
    session.add(valuation)
    session.flush()
    return int(valuation.id)


def latest_valuation(
    session: Session, chain_id: int, contract: str, token_id: int
) -> Valuation | None:
    return session.scalars(
        select(Valuation)
        .where(
            Valuation.chain_id == chain_id,
            Valuation.contract == contract.lower(),
            Valuation.token_id == Decimal(token_id),
        )
        .order_by(Valuation.valued_at.desc(), Valuation.id.desc())
        .limit(1)
    ).first()


def valuation_since(
    session: Session, chain_id: int, contract: str, token_id: int, since: dt.datetime
) -> Valuation | None:
    return session.scalars(
        select(Valuation)
        .where(
            Valuation.chain_id == chain_id,
            Valuation.contract == contract,
            Valuation.token_id == Decimal(token_id),
            Valuation.valued_at > since,
        )
        .order_by(Valuation.valued_at.desc(), Valuation.id.desc())
        .limit(1)
    ).first()
