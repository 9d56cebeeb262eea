"""The Postgres schema as SQLAlchemy 2 typed models.

Conventions, everywhere:
- addresses are lower-case ``0x`` hex; token ids and wei amounts are ``NUMERIC(78)``
  (up to 2**256-1);
- chain events are keyed by (chain_id, block_hash, tx_hash, log_index, batch_index), so replaying a
  block range is a no-op and a reorg deletes exactly the rows of the orphaned blocks;
- token rows are *derived* from events and can always be recomputed from them;
- the event tables' columns are the fields of the records in :mod:`store.records` (plus
  ``chain_id`` and ``block_time``); the ingest's staging tables take their types from here.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, ClassVar

from pgvector.sqlalchemy import HALFVEC
from sqlalchemy import (
    BigInteger,
    Boolean,
    Computed,
    DateTime,
    FetchedValue,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

Uint256 = Numeric(78, 0)
# Hex identifiers and ASCII keys compare byte by byte (migration 0007): the same order as any
# locale's for lower-case hex, without strcoll on every index insertion and join.
Address = String(42, collation="C")
Hash32 = String(66, collation="C")
Sha256 = String(64, collation="C")
AsciiKey = Text(collation="C")


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSONB, list[Any]: JSONB}


def _now() -> Any:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class Collection(Base):
    """A watched contract on one chain."""

    __tablename__ = "collections"
    __table_args__ = (UniqueConstraint("chain_id", "address"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    address: Mapped[str] = mapped_column(Address)
    name: Mapped[str] = mapped_column(Text, default="")
    # erc721 | erc1155 | cryptopunks
    standard: Mapped[str] = mapped_column(String(16), default="erc721")
    # CryptoKitties-style Transfer with no indexed arguments
    legacy_transfer: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = _now()


class Block(Base):
    """Canonical blocks we ingested: the parent-hash chain the follower checks reorgs against."""

    __tablename__ = "blocks"
    __table_args__ = (
        PrimaryKeyConstraint("chain_id", "number"),
        UniqueConstraint("chain_id", "hash"),
    )

    chain_id: Mapped[int] = mapped_column(BigInteger)
    number: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(Hash32)
    parent_hash: Mapped[str] = mapped_column(Hash32)
    timestamp: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


# Blocks per partition of the event tables that grow with the chain (``transfers``, ``sales``):
# partition ``transfers_p0021`` holds blocks 21,000,000 to 21,999,999 of every chain. The
# database's ``ensure_event_partitions(lo, hi)`` (migration 0012) creates any missing partition
# for blocks lo..hi and the one after; the ingest calls it with each batch.
PARTITION_SPAN = 1_000_000
PARTITIONED_TABLES = ("transfers", "sales")


class Transfer(Base):
    """One NFT movement (a mint has from = 0x0, a burn to = 0x0)."""

    __tablename__ = "transfers"
    # The key leads with the block number (which the block hash fixes) so that ingestion appends
    # to the index and range scans by block use it; per-token lookups go through a 64-bit hash of
    # (contract, token_id) and the chain id (migration 0006).
    __table_args__ = (
        PrimaryKeyConstraint(
            "chain_id", "block_number", "block_hash", "log_index", "batch_index", "tx_hash"
        ),
        Index(
            "ix_transfers_token",
            text("hashtextextended(contract || token_id::text, 0)"),
            "chain_id",
        ),
        # One partition per PARTITION_SPAN blocks (migration 0012), so a reorg's delete and the
        # ingest's checks by block touch the newest partitions only.
        {"postgresql_partition_by": "RANGE (block_number)"},
    )

    chain_id: Mapped[int] = mapped_column(BigInteger)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(Hash32)
    tx_hash: Mapped[str] = mapped_column(Hash32)
    log_index: Mapped[int] = mapped_column(Integer)
    batch_index: Mapped[int] = mapped_column(Integer, default=0)
    block_time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    contract: Mapped[str] = mapped_column(Address)
    token_id: Mapped[Decimal] = mapped_column(Uint256)
    from_address: Mapped[str] = mapped_column(Address)
    to_address: Mapped[str] = mapped_column(Address)
    amount: Mapped[Decimal] = mapped_column(Uint256, default=1)
    standard: Mapped[str] = mapped_column(String(16))
    is_mint: Mapped[bool] = mapped_column(Boolean)


# Currencies worth one ether a unit, by the names sales carry (others are the ERC-20's address).
ETH_PEGGED = ("ETH", "WETH", "BLUR_POOL")
PRICE_IN_ETHER = (
    "CASE WHEN currency IN (" + ", ".join(f"'{c}'" for c in ETH_PEGGED) + ") THEN price_wei END"
)


class Sale(Base):
    """A sale with its price: a marketplace event, an inferred payment, or a paid mint."""

    __tablename__ = "sales"
    # Partitioned like transfers, with the same key (it must hold the partition key): the block
    # number's prefix serves the range scans by block (migration 0012).
    __table_args__ = (
        PrimaryKeyConstraint(
            "chain_id", "block_number", "block_hash", "log_index", "batch_index", "tx_hash"
        ),
        Index("ix_sales_token", "chain_id", "contract", "token_id", "block_number"),
        Index("ix_sales_time", "chain_id", "contract", "block_time"),
        {"postgresql_partition_by": "RANGE (block_number)"},
    )

    chain_id: Mapped[int] = mapped_column(BigInteger)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(Hash32)
    tx_hash: Mapped[str] = mapped_column(Hash32)
    log_index: Mapped[int] = mapped_column(Integer)
    batch_index: Mapped[int] = mapped_column(Integer, default=0)
    block_time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    contract: Mapped[str] = mapped_column(Address)
    token_id: Mapped[Decimal] = mapped_column(Uint256)
    seller: Mapped[str] = mapped_column(Address)
    buyer: Mapped[str] = mapped_column(Address)
    price_wei: Mapped[Decimal] = mapped_column(Uint256)
    # ETH, WETH or the ERC-20's address
    currency: Mapped[str] = mapped_column(Address, default="ETH")
    marketplace: Mapped[str] = mapped_column(String(32))
    inferred: Mapped[bool] = mapped_column(Boolean, default=False)
    # what the buyer paid to others than the seller (marketplace and royalty fees), in `currency`
    fees_wei: Mapped[Decimal] = mapped_column(Uint256, default=0, server_default="0")
    # the part of fees_wei paid to the creator, where the market's event tells it apart
    royalty_wei: Mapped[Decimal] = mapped_column(Uint256, default=0, server_default="0")
    # NFTs filled together; > 1: a bundle, its price split over them (valuation leaves it out)
    bundle_size: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # the price in ether: computed by the database from the currency (NULL for other ERC-20s)
    price_eth_wei: Mapped[Decimal | None] = mapped_column(
        Uint256, Computed(PRICE_IN_ETHER, persisted=True)
    )


class ConsecutiveRange(Base):
    """An EIP-2309 ``ConsecutiveTransfer`` larger than the expansion cap: kept as a range."""

    __tablename__ = "consecutive_ranges"
    __table_args__ = (
        PrimaryKeyConstraint("chain_id", "block_hash", "tx_hash", "log_index"),
        Index("ix_consecutive_ranges_block", "chain_id", "block_number"),
    )

    chain_id: Mapped[int] = mapped_column(BigInteger)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(Hash32)
    tx_hash: Mapped[str] = mapped_column(Hash32)
    log_index: Mapped[int] = mapped_column(Integer)
    block_time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    contract: Mapped[str] = mapped_column(Address)
    from_token_id: Mapped[Decimal] = mapped_column(Uint256)
    to_token_id: Mapped[Decimal] = mapped_column(Uint256)
    from_address: Mapped[str] = mapped_column(Address)
    to_address: Mapped[str] = mapped_column(Address)


class Balance(Base):
    """ERC-1155 holdings per (token, owner), derived from transfers (rows at zero are deleted).
    The mint/burn side (0x0) is not kept."""

    __tablename__ = "balances"
    __table_args__ = (PrimaryKeyConstraint("chain_id", "contract", "token_id", "owner"),)

    chain_id: Mapped[int] = mapped_column(BigInteger)
    contract: Mapped[str] = mapped_column(Address)
    token_id: Mapped[Decimal] = mapped_column(Uint256)
    owner: Mapped[str] = mapped_column(Address)
    amount: Mapped[Decimal] = mapped_column(Numeric(80, 0))


class Listing(Base):
    """On-chain listing activity (offers, withdrawals, bids)."""

    __tablename__ = "listings"
    __table_args__ = (
        PrimaryKeyConstraint("chain_id", "block_hash", "tx_hash", "log_index"),
        Index("ix_listings_token", "chain_id", "contract", "token_id", "block_number"),
        Index("ix_listings_block", "chain_id", "block_number"),
    )

    chain_id: Mapped[int] = mapped_column(BigInteger)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(Hash32)
    tx_hash: Mapped[str] = mapped_column(Hash32)
    log_index: Mapped[int] = mapped_column(Integer)
    block_time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    contract: Mapped[str] = mapped_column(Address)
    token_id: Mapped[Decimal] = mapped_column(Uint256)
    # offered | withdrawn | bid | bid_withdrawn
    kind: Mapped[str] = mapped_column(String(16))
    price_wei: Mapped[Decimal | None] = mapped_column(Uint256, nullable=True)
    account: Mapped[str] = mapped_column(Address)


class Loan(Base):
    """An event of an NFT-backed loan (Blur Blend): taken, refinanced, repaid, put to auction,
    seized or bought out of. Fields the event does not carry are NULL (the lien's ``taken`` row
    has them)."""

    __tablename__ = "loans"
    __table_args__ = (
        PrimaryKeyConstraint("chain_id", "block_hash", "tx_hash", "log_index"),
        Index("ix_loans_lien", "chain_id", "protocol", "lien_id", "block_number"),
        Index("ix_loans_token", "chain_id", "contract", "token_id", "block_number"),
        Index("ix_loans_block", "chain_id", "block_number"),
    )

    chain_id: Mapped[int] = mapped_column(BigInteger)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(Hash32)
    tx_hash: Mapped[str] = mapped_column(Hash32)
    log_index: Mapped[int] = mapped_column(Integer)
    block_time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    protocol: Mapped[str] = mapped_column(String(16, collation="C"))  # an ASCII key
    lien_id: Mapped[Decimal] = mapped_column(Uint256)
    # taken | refinanced | repaid | auction | seized | bought
    kind: Mapped[str] = mapped_column(String(16))
    contract: Mapped[str] = mapped_column(Address)
    token_id: Mapped[Decimal | None] = mapped_column(Uint256, nullable=True)
    lender: Mapped[str | None] = mapped_column(Address, nullable=True)
    borrower: Mapped[str | None] = mapped_column(Address, nullable=True)
    principal_wei: Mapped[Decimal | None] = mapped_column(Uint256, nullable=True)
    rate_bps: Mapped[Decimal | None] = mapped_column(Uint256, nullable=True)
    auction_duration: Mapped[Decimal | None] = mapped_column(Uint256, nullable=True)
    # what the lender received when the lien ended (repaid, bought), where the decoder saw it
    repaid_wei: Mapped[Decimal | None] = mapped_column(Uint256, nullable=True)


class Token(Base):
    """Derived state of one token, plus what resolving its metadata found."""

    __tablename__ = "tokens"
    __table_args__ = (
        PrimaryKeyConstraint("chain_id", "contract", "token_id"),
        Index("ix_tokens_image", "image_sha256"),
        Index("ix_tokens_metadata_retry", "metadata_status", "next_retry_at"),
        # Room on each page for the batch merges' in-place (HOT) updates (migration 0004).
        {"postgresql_with": {"fillfactor": 70}},
    )

    chain_id: Mapped[int] = mapped_column(BigInteger)
    contract: Mapped[str] = mapped_column(Address)
    token_id: Mapped[Decimal] = mapped_column(Uint256)
    owner: Mapped[str | None] = mapped_column(Address, nullable=True)
    minted_block: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    transfer_count: Mapped[int] = mapped_column(Integer, default=0)
    sale_count: Mapped[int] = mapped_column(Integer, default=0)
    last_sale_wei: Mapped[Decimal | None] = mapped_column(Uint256, nullable=True)
    last_sale_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    token_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    # pending | ok | retry | failed
    metadata_status: Mapped[str] = mapped_column(String(16), default="pending")
    metadata_json: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    attributes: Mapped[list[Any] | None] = mapped_column(JSONB, nullable=True)
    image_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    image_sha256: Mapped[str | None] = mapped_column(
        Sha256, ForeignKey("media.sha256"), nullable=True
    )
    error_class: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_retry_at: Mapped[dt.datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[dt.datetime] = _now()


class Media(Base):
    """Image bytes, stored once by content hash."""

    __tablename__ = "media"

    sha256: Mapped[str] = mapped_column(Sha256, primary_key=True)
    mime: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = _now()


class Embedding(Base):
    """One vector per (image, extractor). ``halfvec`` without a fixed width: each extractor's
    HNSW index is a partial expression index that casts to its own width."""

    __tablename__ = "embeddings"
    __table_args__ = (PrimaryKeyConstraint("image_sha256", "extractor"),)

    image_sha256: Mapped[str] = mapped_column(Sha256, ForeignKey("media.sha256"))
    extractor: Mapped[str] = mapped_column(String(64))
    dim: Mapped[int] = mapped_column(Integer)
    vec: Mapped[Any] = mapped_column(HALFVEC())
    weights: Mapped[str] = mapped_column(Text)
    preprocess: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = _now()


class Valuation(Base):
    """A stored valuation with the model version and inputs that produced it."""

    __tablename__ = "valuations"
    __table_args__ = (
        Index("ix_valuations_token", "chain_id", "contract", "token_id", "valued_at"),
        Index("ix_valuations_change", "change_xid", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    contract: Mapped[str] = mapped_column(Address)
    token_id: Mapped[Decimal] = mapped_column(Uint256)
    valued_at: Mapped[dt.datetime] = _now()
    model_version: Mapped[str] = mapped_column(String(64))
    p_liquid: Mapped[float] = mapped_column(Float)
    price_eth: Mapped[float | None] = mapped_column(Float, nullable=True)
    price_low_eth: Mapped[float | None] = mapped_column(Float, nullable=True)
    price_high_eth: Mapped[float | None] = mapped_column(Float, nullable=True)
    confidence: Mapped[float] = mapped_column(Float)
    explanation: Mapped[dict[str, Any]] = mapped_column(JSONB)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # the writing transaction's id, stamped by the column's default (migration 0013): the
    # listing stream reads valuations in commit-safe (change_xid, id) order
    change_xid: Mapped[int] = mapped_column(BigInteger, server_default=FetchedValue())


class Checkpoint(Base):
    """How far a named chain job got (the follower, one backfill range)."""

    __tablename__ = "checkpoints"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str | None] = mapped_column(Hash32, nullable=True)
    updated_at: Mapped[dt.datetime] = _now()


class Outbox(Base):
    """Work to send to Celery, written in the same transaction as the events that caused it.

    ``dedupe_key`` makes re-recording the same event a no-op; ``sent_at`` is set only once the
    broker accepted the message."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_unsent", "id", postgresql_where=text("sent_at IS NULL")),
        # the resend scan's window and the pruning of old sent rows (0003)
        Index("ix_outbox_sent", "sent_at", postgresql_where=text("sent_at IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    task: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    dedupe_key: Mapped[str] = mapped_column(AsciiKey, unique=True)
    created_at: Mapped[dt.datetime] = _now()
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class FetchFailure(Base):
    """Every failed fetch, classified; exhausted ones are the dead letters ``nftwatch failures``
    lists."""

    __tablename__ = "fetch_failures"
    __table_args__ = (Index("ix_fetch_failures_token", "chain_id", "contract", "token_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    contract: Mapped[str] = mapped_column(Address)
    token_id: Mapped[Decimal] = mapped_column(Uint256)
    stage: Mapped[str] = mapped_column(String(16))  # token_uri | metadata | image | embed
    uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    retryable: Mapped[bool] = mapped_column(Boolean)
    error_class: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    exhausted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = _now()


class ApiKey(Base):
    """An API key for the HTTP API, kept only as its SHA-256 hash."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    key_sha256: Mapped[str] = mapped_column(Sha256, unique=True)
    created_at: Mapped[dt.datetime] = _now()
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class OffchainListing(Base):
    """A listing held off chain by a marketplace (a signed order), one row per (marketplace,
    order hash): what the feed and the marketplace's REST catch-up last said of it."""

    __tablename__ = "offchain_listings"
    __table_args__ = (
        PrimaryKeyConstraint("marketplace", "order_hash"),
        Index("ix_offchain_listings_token", "chain_id", "contract", "token_id"),
        Index(
            "ix_offchain_listings_active",
            "listed_at",
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_offchain_listings_change", "change_xid", "change_seq"),
    )

    marketplace: Mapped[str] = mapped_column(String(32))
    order_hash: Mapped[str] = mapped_column(Hash32)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    contract: Mapped[str] = mapped_column(Address)
    token_id: Mapped[Decimal] = mapped_column(Uint256)
    # in the currency's smallest unit; ETH, WETH or the ERC-20's address, as sales name them
    price_wei: Mapped[Decimal] = mapped_column(Uint256)
    currency: Mapped[str] = mapped_column(Address)
    # the price in ether: the price for ETH and WETH, else at the feed's rate; NULL if unknown
    price_eth_wei: Mapped[Decimal | None] = mapped_column(Uint256, nullable=True)
    maker: Mapped[str] = mapped_column(Address)
    listed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # active | cancelled | sold | expired
    status: Mapped[str] = mapped_column(String(16))
    # when the marketplace said what ``status`` holds (an older event never overwrites it)
    event_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = _now()
    # where the row's latest write stands in the change feed the listing stream reads: the
    # writing transaction's id and a sequence number, both set by a trigger (migration 0011)
    change_xid: Mapped[int] = mapped_column(BigInteger, server_default=FetchedValue())
    change_seq: Mapped[int] = mapped_column(BigInteger, server_default=FetchedValue())
