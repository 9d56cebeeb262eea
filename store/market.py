"""Sales of a collection, as the valuation model reads them, and their fingerprint."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
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


def sales_stamp(session: Session, chain_id: int, contract: str) -> tuple[int, int, int]:
    """A cheap fingerprint of the collection's sales, (count, max block, block sum): it changes
    when one is added or rolled back."""
    n, top, total = session.execute(
        select(
            func.count(),
            func.coalesce(func.max(Sale.block_number), 0),
            func.coalesce(func.sum(Sale.block_number), 0),
        ).where(Sale.chain_id == chain_id, Sale.contract == contract)
    ).one()
    return int(n), int(top), int(total)
