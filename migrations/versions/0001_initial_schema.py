"""Initial schema; creates the pgvector extension first.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 00:39:00.811304
"""

from collections.abc import Sequence

import pgvector.sqlalchemy
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table(
        "blocks",
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=66), nullable=False),
        sa.Column("parent_hash", sa.String(length=66), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "number"),
        sa.UniqueConstraint("chain_id", "hash"),
    )
    op.create_table(
        "checkpoints",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "collections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("standard", sa.String(length=16), nullable=False),
        sa.Column("legacy_transfer", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("chain_id", "address"),
    )
    op.create_table(
        "fetch_failures",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("contract", sa.String(length=42), nullable=False),
        sa.Column("token_id", sa.Numeric(precision=78, scale=0), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("uri", sa.Text(), nullable=True),
        sa.Column("retryable", sa.Boolean(), nullable=False),
        sa.Column("error_class", sa.String(length=64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("exhausted", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_fetch_failures_token",
        "fetch_failures",
        ["chain_id", "contract", "token_id"],
        unique=False,
    )
    op.create_table(
        "listings",
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("block_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("contract", sa.String(length=42), nullable=False),
        sa.Column("token_id", sa.Numeric(precision=78, scale=0), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("price_wei", sa.Numeric(precision=78, scale=0), nullable=True),
        sa.Column("account", sa.String(length=42), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "block_hash", "tx_hash", "log_index"),
    )
    op.create_index("ix_listings_block", "listings", ["chain_id", "block_number"], unique=False)
    op.create_index(
        "ix_listings_token",
        "listings",
        ["chain_id", "contract", "token_id", "block_number"],
        unique=False,
    )
    op.create_table(
        "media",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("mime", sa.String(length=64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("sha256"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("queue", sa.String(length=32), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("dedupe_key", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
    )
    op.create_index(
        "ix_outbox_unsent",
        "outbox",
        ["id"],
        unique=False,
        postgresql_where=sa.text("sent_at IS NULL"),
    )
    op.create_table(
        "sales",
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("batch_index", sa.Integer(), nullable=False),
        sa.Column("block_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("contract", sa.String(length=42), nullable=False),
        sa.Column("token_id", sa.Numeric(precision=78, scale=0), nullable=False),
        sa.Column("seller", sa.String(length=42), nullable=False),
        sa.Column("buyer", sa.String(length=42), nullable=False),
        sa.Column("price_wei", sa.Numeric(precision=78, scale=0), nullable=False),
        sa.Column("currency", sa.String(length=42), nullable=False),
        sa.Column("marketplace", sa.String(length=32), nullable=False),
        sa.Column("inferred", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "block_hash", "tx_hash", "log_index", "batch_index"),
    )
    op.create_index("ix_sales_block", "sales", ["chain_id", "block_number"], unique=False)
    op.create_index("ix_sales_time", "sales", ["chain_id", "contract", "block_time"], unique=False)
    op.create_index(
        "ix_sales_token",
        "sales",
        ["chain_id", "contract", "token_id", "block_number"],
        unique=False,
    )
    op.create_table(
        "transfers",
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("batch_index", sa.Integer(), nullable=False),
        sa.Column("block_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("contract", sa.String(length=42), nullable=False),
        sa.Column("token_id", sa.Numeric(precision=78, scale=0), nullable=False),
        sa.Column("from_address", sa.String(length=42), nullable=False),
        sa.Column("to_address", sa.String(length=42), nullable=False),
        sa.Column("amount", sa.Numeric(precision=78, scale=0), nullable=False),
        sa.Column("standard", sa.String(length=16), nullable=False),
        sa.Column("is_mint", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "block_hash", "tx_hash", "log_index", "batch_index"),
    )
    op.create_index("ix_transfers_block", "transfers", ["chain_id", "block_number"], unique=False)
    op.create_index(
        "ix_transfers_token",
        "transfers",
        ["chain_id", "contract", "token_id", "block_number"],
        unique=False,
    )
    op.create_table(
        "valuations",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("contract", sa.String(length=42), nullable=False),
        sa.Column("token_id", sa.Numeric(precision=78, scale=0), nullable=False),
        sa.Column(
            "valued_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("p_liquid", sa.Float(), nullable=False),
        sa.Column("price_eth", sa.Float(), nullable=True),
        sa.Column("price_low_eth", sa.Float(), nullable=True),
        sa.Column("price_high_eth", sa.Float(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("explanation", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("inputs", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_valuations_token",
        "valuations",
        ["chain_id", "contract", "token_id", "valued_at"],
        unique=False,
    )
    op.create_table(
        "embeddings",
        sa.Column("image_sha256", sa.String(length=64), nullable=False),
        sa.Column("extractor", sa.String(length=64), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vec", pgvector.sqlalchemy.halfvec.HALFVEC(), nullable=False),
        sa.Column("weights", sa.Text(), nullable=False),
        sa.Column("preprocess", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["image_sha256"],
            ["media.sha256"],
        ),
        sa.PrimaryKeyConstraint("image_sha256", "extractor"),
    )
    op.create_table(
        "tokens",
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("contract", sa.String(length=42), nullable=False),
        sa.Column("token_id", sa.Numeric(precision=78, scale=0), nullable=False),
        sa.Column("owner", sa.String(length=42), nullable=True),
        sa.Column("minted_block", sa.BigInteger(), nullable=True),
        sa.Column("transfer_count", sa.Integer(), nullable=False),
        sa.Column("sale_count", sa.Integer(), nullable=False),
        sa.Column("last_sale_wei", sa.Numeric(precision=78, scale=0), nullable=True),
        sa.Column("last_sale_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("token_uri", sa.Text(), nullable=True),
        sa.Column("metadata_status", sa.String(length=16), nullable=False),
        sa.Column("metadata_json", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("attributes", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("image_uri", sa.Text(), nullable=True),
        sa.Column("image_sha256", sa.String(length=64), nullable=True),
        sa.Column("error_class", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["image_sha256"],
            ["media.sha256"],
        ),
        sa.PrimaryKeyConstraint("chain_id", "contract", "token_id"),
    )
    op.create_index("ix_tokens_image", "tokens", ["image_sha256"], unique=False)
    op.create_index(
        "ix_tokens_metadata_retry", "tokens", ["metadata_status", "next_retry_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_tokens_metadata_retry", table_name="tokens")
    op.drop_index("ix_tokens_image", table_name="tokens")
    op.drop_table("tokens")
    op.drop_table("embeddings")
    op.drop_index("ix_valuations_token", table_name="valuations")
    op.drop_table("valuations")
    op.drop_index("ix_transfers_token", table_name="transfers")
    op.drop_index("ix_transfers_block", table_name="transfers")
    op.drop_table("transfers")
    op.drop_index("ix_sales_token", table_name="sales")
    op.drop_index("ix_sales_time", table_name="sales")
    op.drop_index("ix_sales_block", table_name="sales")
    op.drop_table("sales")
    op.drop_index(
        "ix_outbox_unsent", table_name="outbox", postgresql_where=sa.text("sent_at IS NULL")
    )
    op.drop_table("outbox")
    op.drop_table("media")
    op.drop_index("ix_listings_token", table_name="listings")
    op.drop_index("ix_listings_block", table_name="listings")
    op.drop_table("listings")
    op.drop_index("ix_fetch_failures_token", table_name="fetch_failures")
    op.drop_table("fetch_failures")
    op.drop_table("collections")
    op.drop_table("checkpoints")
    op.drop_table("blocks")
