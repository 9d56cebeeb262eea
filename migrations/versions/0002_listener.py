"""Listener: sale fees, EIP-2309 ranges over the expansion cap, ERC-1155 balances.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UINT = sa.Numeric(precision=78, scale=0)


def upgrade() -> None:
    op.add_column("sales", sa.Column("fees_wei", _UINT, nullable=False, server_default="0"))
    op.create_table(
        "consecutive_ranges",
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("block_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("contract", sa.String(length=42), nullable=False),
        sa.Column("from_token_id", _UINT, nullable=False),
        sa.Column("to_token_id", _UINT, nullable=False),
        sa.Column("from_address", sa.String(length=42), nullable=False),
        sa.Column("to_address", sa.String(length=42), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "block_hash", "tx_hash", "log_index"),
    )
    op.create_index(
        "ix_consecutive_ranges_block", "consecutive_ranges", ["chain_id", "block_number"]
    )
    op.create_table(
        "balances",
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("contract", sa.String(length=42), nullable=False),
        sa.Column("token_id", _UINT, nullable=False),
        sa.Column("owner", sa.String(length=42), nullable=False),
        sa.Column("amount", sa.Numeric(precision=80, scale=0), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "contract", "token_id", "owner"),
    )


def downgrade() -> None:
    op.drop_table("balances")
    op.drop_index("ix_consecutive_ranges_block", table_name="consecutive_ranges")
    op.drop_table("consecutive_ranges")
    op.drop_column("sales", "fees_wei")
