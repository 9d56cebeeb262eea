"""Sales: royalties apart from fees, the bundle a sale was part of, and the price in ether.

``price_eth_wei`` is computed by the database from the currency: the price for ETH, WETH and
Blur Pool ETH (one ether a unit each), NULL for other ERC-20s, whose price in ether is not known
here. One definition, so no writer (COPY, the punk-bid fix, a test) can get it wrong. Adding a
stored generated column rewrites the table: on a large database run it in a maintenance window.
Bundles recorded before this revision keep a size of 1.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# as store.models.PRICE_IN_ETHER at this revision (a migration keeps its own copy)
PRICE_IN_ETHER = "CASE WHEN currency IN ('ETH', 'WETH', 'BLUR_POOL') THEN price_wei END"


def upgrade() -> None:
    op.execute("SET lock_timeout = '10s'")
    op.add_column(
        "sales", sa.Column("royalty_wei", sa.Numeric(78, 0), nullable=False, server_default="0")
    )
    op.add_column(
        "sales", sa.Column("bundle_size", sa.Integer(), nullable=False, server_default="1")
    )
    op.add_column(
        "sales",
        sa.Column("price_eth_wei", sa.Numeric(78, 0), sa.Computed(PRICE_IN_ETHER, persisted=True)),
    )


def downgrade() -> None:
    op.drop_column("sales", "price_eth_wei")
    op.drop_column("sales", "bundle_size")
    op.drop_column("sales", "royalty_wei")
