"""Sales: royalties apart from fees, the bundle a sale was part of, and the price in ether.

``price_eth_wei`` of the rows already stored is their price where the currency is ETH or WETH
(every market read before this revision paid in one of those or in an ERC-20).

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


def upgrade() -> None:
    op.execute("SET lock_timeout = '10s'")
    op.add_column(
        "sales", sa.Column("royalty_wei", sa.Numeric(78, 0), nullable=False, server_default="0")
    )
    op.add_column(
        "sales", sa.Column("bundle_size", sa.Integer(), nullable=False, server_default="1")
    )
    op.add_column("sales", sa.Column("price_eth_wei", sa.Numeric(78, 0), nullable=True))
    op.execute("UPDATE sales SET price_eth_wei = price_wei WHERE currency IN ('ETH', 'WETH')")


def downgrade() -> None:
    op.drop_column("sales", "price_eth_wei")
    op.drop_column("sales", "bundle_size")
    op.drop_column("sales", "royalty_wei")
