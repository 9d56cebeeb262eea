"""Loans: the events of NFT-backed loans (Blur Blend), keyed like the other chain events and
removed with their blocks by a reorg. A new table: no lock on the existing ones.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HEX = sa.String(66, collation="C")
_ADDRESS = sa.String(42, collation="C")
_UINT = sa.Numeric(78, 0)


def upgrade() -> None:
    op.create_table(
        "loans",
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", _HEX, nullable=False),
        sa.Column("tx_hash", _HEX, nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("block_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("protocol", sa.String(16, collation="C"), nullable=False),
        sa.Column("lien_id", _UINT, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("contract", _ADDRESS, nullable=False),
        sa.Column("token_id", _UINT, nullable=True),
        sa.Column("lender", _ADDRESS, nullable=True),
        sa.Column("borrower", _ADDRESS, nullable=True),
        sa.Column("principal_wei", _UINT, nullable=True),
        sa.Column("rate_bps", _UINT, nullable=True),
        sa.Column("auction_duration", _UINT, nullable=True),
        sa.Column("repaid_wei", _UINT, nullable=True),
        sa.PrimaryKeyConstraint("chain_id", "block_hash", "tx_hash", "log_index"),
    )
    op.create_index("ix_loans_lien", "loans", ["chain_id", "protocol", "lien_id", "block_number"])
    op.create_index("ix_loans_token", "loans", ["chain_id", "contract", "token_id", "block_number"])
    op.create_index("ix_loans_block", "loans", ["chain_id", "block_number"])


def downgrade() -> None:
    op.drop_table("loans")
