"""Off-chain listings: signed orders a marketplace holds, as its feed reports them.

Each order is one row keyed by (marketplace, order hash). Writes are upserts that commute: an
order's status moves only from ``active`` to a final one (``cancelled``, ``sold``, ``expired``),
never back, so replays, out-of-order deliveries and a REST catch-up that overlaps the socket all
land on the same row. A listing new to the database is valued on the urgent queue through the
outbox in the same transaction, as an on-chain offer is (:mod:`store.chain.sales`):
``task="value", queue="urgent"``, payload ``{chain_id, contract, token_id, reason: "listing",
price_wei (string, in the listing's currency), marketplace, order_hash}``, dedupe key
``value:{marketplace}:{order_hash}``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import case, func, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import Label

from store.models import OffchainListing
from store.outbox import enqueue

ACTIVE = "active"
FINAL = ("cancelled", "sold", "expired")
STATUSES = (ACTIVE, *FINAL)


@dataclass(slots=True)
class OrderEvent:
    """What a marketplace said about one order: listed (``active``), cancelled, sold or
    expired. Addresses lower-case; ``price_wei`` in the currency's smallest unit; ``currency``
    ETH, WETH or the ERC-20's address; ``price_eth_wei`` None where no rate is known."""

    marketplace: str
    order_hash: str
    status: str
    chain_id: int
    contract: str
    token_id: int
    price_wei: int
    currency: str
    price_eth_wei: int | None
    maker: str
    listed_at: dt.datetime
    expires_at: dt.datetime | None
    event_at: dt.datetime

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown order status {self.status!r}")


@dataclass(frozen=True)
class Recorded:
    """What one :func:`record` call changed: listings new to the database (each valued),
    and listings it retired."""

    new: int = 0
    retired: int = 0


def record(session: Session, events: Iterable[OrderEvent]) -> Recorded:
    """Upsert ``events`` in the caller's transaction; a new active listing also gets its urgent
    valuation in the outbox. Replaying the same events changes nothing."""
    new = retired = 0
    for e in events:
        row = {
            "marketplace": e.marketplace,
            "order_hash": e.order_hash,
            "chain_id": e.chain_id,
            "contract": e.contract,
            "token_id": Decimal(e.token_id),
            "price_wei": Decimal(e.price_wei),
            "currency": e.currency,
            "price_eth_wei": None if e.price_eth_wei is None else Decimal(e.price_eth_wei),
            "maker": e.maker,
            "listed_at": e.listed_at,
            "expires_at": e.expires_at,
            "status": e.status,
            "event_at": e.event_at,
        }
        stmt = insert(OffchainListing).values(row)
        old = OffchainListing.__table__.c
        # the first final status wins and is kept: an active row takes it, a final one does not
        upsert = stmt.on_conflict_do_update(
            index_elements=["marketplace", "order_hash"],
            set_={
                "status": stmt.excluded.status,
                "event_at": stmt.excluded.event_at,
                # a rate learnt once (the socket's) is not lost to a sighting without one (REST)
                "price_eth_wei": func.coalesce(old.price_eth_wei, stmt.excluded.price_eth_wei),
                "updated_at": func.now(),
            },
            where=(old.status == ACTIVE) & (stmt.excluded.status != ACTIVE),
        ).returning(_INSERTED)
        result = session.execute(upsert).first()
        if result is None:  # a conflict the WHERE left alone: nothing changed
            continue
        if not result.inserted:
            retired += 1
        elif e.status == ACTIVE:
            new += 1
            _value(session, e)
    return Recorded(new, retired)


# Postgres sets xmax to 0 on a row version this statement inserted, not on one it updated.
_INSERTED: Label[bool] = literal_column("xmax = 0").label("inserted")


def _value(session: Session, e: OrderEvent) -> None:
    enqueue(
        session,
        "value",
        "urgent",
        {
            "chain_id": e.chain_id,
            "contract": e.contract,
            "token_id": str(e.token_id),
            "reason": "listing",
            "price_wei": str(e.price_wei),
            "marketplace": e.marketplace,
            "order_hash": e.order_hash,
        },
        f"value:{e.marketplace}:{e.order_hash}",
    )


def db_now(session: Session) -> dt.datetime:
    """The database's clock: the instant a catch-up starts, for :func:`retire_unseen`."""
    now = session.scalar(select(func.clock_timestamp()))
    assert isinstance(now, dt.datetime)
    return now


def retire_unseen(
    session: Session,
    marketplace: str,
    chain_id: int,
    contract: str,
    seen: Sequence[str],
    started: dt.datetime,
) -> int:
    """After a complete catch-up of one collection's book: its active listings stored before
    ``started`` that the book no longer holds (not in ``seen``) were cancelled or filled while
    nobody listened; they are retired as ``expired`` if past their expiry, else ``cancelled``
    (a fill also shows as a sale from the chain). Returns how many."""
    t = OffchainListing.__table__.c
    query = update(OffchainListing).where(
        t.marketplace == marketplace,
        t.chain_id == chain_id,
        t.contract == contract,
        t.status == ACTIVE,
        t.updated_at < started,
    )
    if seen:
        query = query.where(t.order_hash.not_in(list(seen)))
    result = session.execute(
        query.values(
            status=case(
                (t.expires_at.is_not(None) & (t.expires_at <= func.now()), "expired"),
                else_="cancelled",
            ),
            event_at=func.now(),
            updated_at=func.now(),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def expire(session: Session, now: dt.datetime | None = None) -> int:
    """Active listings past their expiry become ``expired``; returns how many."""
    t = OffchainListing.__table__.c
    at = func.now() if now is None else now
    result = session.execute(
        update(OffchainListing)
        .where(t.status == ACTIVE, t.expires_at.is_not(None), t.expires_at <= at)
        .values(status="expired", event_at=at, updated_at=func.now())
    )
    return int(getattr(result, "rowcount", 0) or 0)


def get(session: Session, marketplace: str, order_hash: str) -> OffchainListing | None:
    return session.get(OffchainListing, (marketplace, order_hash))
