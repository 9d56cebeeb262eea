"""Off-chain listings: signed orders a marketplace holds (the OpenSea Stream API and its REST
catch-up), keyed by (marketplace, order hash), with their status (active, cancelled, sold,
expired). A new table: no lock on the existing ones.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET lock_timeout = '10s'")
    uint = sa.Numeric(78, 0)
    op.create_table(
        "offchain_listings",
        sa.Column("marketplace", sa.String(32), nullable=False),
        sa.Column("order_hash", sa.String(66, collation="C"), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("contract", sa.String(42, collation="C"), nullable=False),
        sa.Column("token_id", uint, nullable=False),
        sa.Column("price_wei", uint, nullable=False),
        sa.Column("currency", sa.String(42, collation="C"), nullable=False),
        sa.Column("price_eth_wei", uint, nullable=True),
        sa.Column("maker", sa.String(42, collation="C"), nullable=False),
        sa.Column("listed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("event_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("marketplace", "order_hash"),
    )
    op.create_index(
        "ix_offchain_listings_token", "offchain_listings", ["chain_id", "contract", "token_id"]
    )
    op.create_index(
        "ix_offchain_listings_active",
        "offchain_listings",
        ["listed_at"],
        postgresql_where=sa.text("status = 'active'"),
    )


def downgrade() -> None:
    op.drop_table("offchain_listings")
