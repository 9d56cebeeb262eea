"""Sales of a collection, as the valuation model reads them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import (
    Sale,
)


def collection_sales(
    session: Session, chain_id: int, contract: str, before: dt.datetime | None = None
) -> list[Sale]:
    query = select(Sale).where(Sale.chain_id == chain_id, Sale.contract == contract.lower())
    if before is not None:
        query = query.where(Sale.block_time < before)
    return list(session.scalars(query.order_by(Sale.block_time, Sale.log_index)))
