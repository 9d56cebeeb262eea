"""The market reads behind the API, the desk and the exports: the listings a desk sees (on-chain
offers, ``kind = 'offered'``, and active off-chain listings) with each token's latest valuation,
and the position that lets a stream hand out only what changed (new offers, off-chain listings
that were listed or retired, and listings whose token was valued again); and the transfers and
sales of a block range, streamed for export."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, Engine, Row, func, literal_column, or_, select, text, tuple_
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ColumnClause

from store.models import Listing, OffchainListing, Token, Valuation
from store.tokens import owners_before

OFFERED = "offered"
ACTIVE = "active"
# at most this many re-valued tokens are looked at per poll, so a backfill that values
# thousands of tokens moves the position in bounded steps instead of one huge query
VALUATION_BATCH = 500
# the oldest transaction still running anywhere: every write of an older one is committed (and
# visible) or rolled back, so off-chain changes below it can be handed out in their final order
_HORIZON: ColumnClause[int] = literal_column(
    "pg_snapshot_xmin(pg_current_snapshot())::text::bigint", BigInteger
)

TokenKey = tuple[int, str, int]
AnyListing = Listing | OffchainListing


class Position(NamedTuple):
    """Where a reader of the listings stands: the last on-chain offer it saw (block, log index),
    the last valuation it saw (``valuation_xid``, its writing transaction's id, and
    ``valuation_id``), and the last off-chain listing change it saw (the writing transaction's
    id and the change's sequence number, ``OffchainListing.change_xid`` and ``change_seq``).
    Zero off-chain parts: before any off-chain change. ``valuation_xid`` -1: a position handed
    out before valuations carried their transaction, which reads on from its valuation id."""

    block_number: int = 0
    log_index: int = -1
    valuation_id: int = 0
    offchain_xid: int = 0
    offchain_seq: int = 0
    valuation_xid: int = -1


@dataclass(frozen=True)
class ListedToken:
    """One listing (an on-chain offer or an off-chain listing) with what the desk shows beside
    it."""

    listing: AnyListing
    valuation: Valuation | None
    has_image: bool
    name: str | None
    # who held the token when it was offered (a PunkOffered names only the buyer it is
    # reserved for; an off-chain listing's maker); None where no earlier transfer is stored
    seller: str | None = None

    @property
    def key(self) -> TokenKey:
        return (self.listing.chain_id, self.listing.contract, int(self.listing.token_id))

    @property
    def listed_at(self) -> dt.datetime:
        """When the listing was made: the offer's block time, or the marketplace's time."""
        x = self.listing
        return x.listed_at if isinstance(x, OffchainListing) else x.block_time


# ------------------------------------------------------------------ listings


def head(session: Session) -> Position:
    """The position just past everything stored now: changes from here are only what is new
    (an off-chain change or a valuation of a transaction still running may be handed out once
    more)."""
    last = session.execute(
        select(Listing.block_number, Listing.log_index)
        .where(Listing.kind == OFFERED)
        .order_by(Listing.block_number.desc(), Listing.log_index.desc())
        .limit(1)
    ).first()
    vxid, vid = _last_final(session, Valuation.change_xid, Valuation.id)
    xid, seq = _last_final(session, OffchainListing.change_xid, OffchainListing.change_seq)
    if last is None:
        return Position(0, -1, vid, xid, seq, vxid)
    return Position(int(last.block_number), int(last.log_index), vid, xid, seq, vxid)


def _last_final(
    session: Session, xid: InstrumentedAttribute[int], then: InstrumentedAttribute[int]
) -> tuple[int, int]:
    """The greatest (writing transaction, ``then``) among rows whose transaction is older than
    every one still running; (0, 0) when there is none."""
    row = session.execute(
        select(xid, then).where(xid < _HORIZON).order_by(xid.desc(), then.desc()).limit(1)
    ).first()
    return (0, 0) if row is None else (int(row[0]), int(row[1]))


def recent(
    session: Session, limit: int, chain_id: int | None = None, contract: str | None = None
) -> list[ListedToken]:
    """The newest on-chain offers and active off-chain listings (not past their expiry), merged
    by when each was listed, newest first."""
    query = select(Listing).where(Listing.kind == OFFERED)
    if chain_id is not None:
        query = query.where(Listing.chain_id == chain_id)
    if contract is not None:
        query = query.where(Listing.contract == contract)
    onchain = list(
        session.scalars(
            query.order_by(Listing.block_number.desc(), Listing.log_index.desc()).limit(limit)
        )
    )
    o = OffchainListing
    off = select(o).where(*_live())
    if chain_id is not None:
        off = off.where(o.chain_id == chain_id)
    if contract is not None:
        off = off.where(o.contract == contract)
    offchain = list(session.scalars(off.order_by(o.listed_at.desc()).limit(limit)))
    rows = _with_valuations(session, [*onchain, *offchain])
    # stable: an offer and a listing of the same instant keep the offer first
    return sorted(rows, key=lambda x: x.listed_at, reverse=True)[:limit]


def changes(session: Session, since: Position, limit: int) -> tuple[list[ListedToken], Position]:
    """What changed after ``since``, with the position to ask from next time: on-chain offers
    newer than it (oldest first); off-chain listings written since (listed, or retired: their
    status says which), in the order of the transactions that wrote them, only once every older
    transaction has ended, so that a late commit is never skipped; and the latest offer and the
    active off-chain listings of every token valued since, where the position has already
    passed them (valuations read in the same commit-safe order)."""
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
    o = OffchainListing
    moved = list(
        session.scalars(
            select(o)
            .where(
                tuple_(o.change_xid, o.change_seq) > tuple_(since.offchain_xid, since.offchain_seq),
                o.change_xid < _HORIZON,
            )
            .order_by(o.change_xid, o.change_seq)
            .limit(limit)
        )
    )
    xid, seq = since.offchain_xid, since.offchain_seq
    if moved:
        xid, seq = int(moved[-1].change_xid), int(moved[-1].change_seq)
    v = Valuation
    if since.valuation_xid < 0:  # a position from before 0013: on from its valuation id
        after = v.id > since.valuation_id
    else:
        after = tuple_(v.change_xid, v.id) > tuple_(since.valuation_xid, since.valuation_id)
    revalued = session.execute(
        select(v.change_xid, v.id, v.chain_id, v.contract, v.token_id)
        .where(after, v.change_xid < _HORIZON)
        .order_by(v.change_xid, v.id)
        .limit(VALUATION_BATCH)
    ).all()
    vxid, vid = since.valuation_xid, since.valuation_id
    if revalued:
        vxid, vid = int(revalued[-1].change_xid), int(revalued[-1].id)
    valued = {(r.chain_id, r.contract, int(r.token_id)) for r in revalued}
    seen = {(x.chain_id, x.contract, int(x.token_id)) for x in new}
    handed = {(x.marketplace, x.order_hash) for x in moved}
    rows: list[AnyListing] = [
        *new,
        *moved,
        *(
            x
            for x in _latest_listings(session, valued - seen)
            if _position(x) <= (block, log_index)
        ),
        *(
            x
            for x in _active_offchain(session, valued)
            if (x.marketplace, x.order_hash) not in handed
            and (x.change_xid, x.change_seq) <= (xid, seq)
        ),
    ]
    return _with_valuations(session, rows), Position(block, log_index, vid, xid, seq, vxid)


def _position(listing: Listing) -> tuple[int, int]:
    return (listing.block_number, listing.log_index)


def _live() -> tuple[Any, ...]:
    """An off-chain listing that stands: active, and not past its expiry (the feed marks it
    expired only on its next sweep)."""
    o = OffchainListing
    return (o.status == ACTIVE, or_(o.expires_at.is_(None), o.expires_at > func.now()))


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


def _active_offchain(session: Session, keys: set[TokenKey]) -> list[OffchainListing]:
    if not keys:
        return []
    o = OffchainListing
    return list(
        session.scalars(
            select(o).where(_token_filter(o, keys), *_live()).order_by(o.change_xid, o.change_seq)
        )
    )


def _with_valuations(session: Session, rows: Sequence[AnyListing]) -> list[ListedToken]:
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
    sellers = owners_before(session, [_event(x) for x in listings if isinstance(x, Listing)])
    out = []
    for x in listings:
        key = (x.chain_id, x.contract, int(x.token_id))
        has_image, name = tokens.get(key, (False, None))
        seller = x.maker if isinstance(x, OffchainListing) else sellers.get(_event(x))
        out.append(ListedToken(x, valuations.get(key), has_image, name, seller))
    return out


def _event(x: Listing) -> tuple[int, str, int, int, int]:
    return (x.chain_id, x.contract, int(x.token_id), x.block_number, x.log_index)


# ------------------------------------------------------------------ sales and statistics


# ------------------------------------------------------ a token's image, vector, valuation


# ------------------------------------------------------------------ exports

_TRANSFERS = """
SELECT chain_id, standard, contract, token_id::text, from_address, to_address, amount::text,
       block_number, block_hash, tx_hash, log_index, batch_index, is_mint
FROM transfers
WHERE block_number BETWEEN :lo AND :hi {chain}
ORDER BY chain_id, block_number, log_index, batch_index, tx_hash
"""

# A sale's standard and amount come from the NFT's transfer in the same transaction (a sale
# without one, e.g. a Seaport fill of an unwatched transfer, falls back to erc721 / 1).
_SALES = """
SELECT s.chain_id,
       coalesce(t.standard, CASE WHEN s.marketplace = 'cryptopunks' THEN 'cryptopunks'
                                 ELSE 'erc721' END),
       s.contract, s.token_id::text, s.seller, s.buyer, coalesce(t.amount, 1)::text,
       s.block_number, s.block_hash, s.tx_hash, s.log_index, s.batch_index,
       coalesce(t.is_mint, false), s.price_wei::text, s.currency, s.marketplace, s.inferred,
       s.price_eth_wei::text, s.fees_wei::text, s.royalty_wei::text, s.bundle_size
FROM sales s
LEFT JOIN LATERAL (
  SELECT x.standard, x.amount, x.is_mint FROM transfers x
  WHERE x.chain_id = s.chain_id AND x.contract = s.contract AND x.token_id = s.token_id
    AND x.block_number = s.block_number AND x.tx_hash = s.tx_hash
  ORDER BY x.log_index, x.batch_index LIMIT 1) t ON true
WHERE s.block_number BETWEEN :lo AND :hi {chain}
ORDER BY s.chain_id, s.block_number, s.log_index, s.batch_index, s.tx_hash
"""


def stream_events(
    engine: Engine,
    kind: str,
    from_block: int,
    to_block: int,
    chain_id: int | None,
    batch: int = 5_000,
) -> Iterator[Row[Any]]:
    """The rows of ``kind`` ("transfers" | "sales") in ``[from_block, to_block]``, in chain order,
    from a server-side cursor of ``batch`` rows (constant memory whatever the range). A transfer
    row: chain id, standard, contract, token id, from, to, amount, block number and hash, tx
    hash, log and batch index, is_mint; a sale row adds price_wei, currency, marketplace,
    inferred, price_eth_wei, fees_wei, royalty_wei and bundle_size (seller and buyer as from and
    to)."""
    sql = _TRANSFERS if kind == "transfers" else _SALES
    prefix = "" if kind == "transfers" else "s."
    chain = f"AND {prefix}chain_id = :chain" if chain_id is not None else ""
    params: dict[str, object] = {"lo": from_block, "hi": to_block, "chain": chain_id}
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=batch).execute(
            text(sql.format(chain=chain)), params
        )
        yield from result
