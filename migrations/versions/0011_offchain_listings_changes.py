"""Off-chain listings as a change feed: every insert or update of a row stamps it with the
writing transaction's id (``change_xid``, 64-bit ``pg_current_xact_id``) and a fresh number from
a sequence (``change_seq``), by trigger, so that no writer can forget. The listing stream reads
the rows past its cursor in (change_xid, change_seq) order, only below the oldest transaction
still running: a sequence alone hands out numbers in an order other than the commits', and a
reader paging by it would skip a row whose transaction commits late.

The table is small and new: existing rows are stamped by one update under a short lock timeout.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET lock_timeout = '10s'")
    op.execute("CREATE SEQUENCE offchain_listings_change_seq AS BIGINT")
    op.add_column("offchain_listings", sa.Column("change_xid", sa.BigInteger(), nullable=True))
    op.add_column("offchain_listings", sa.Column("change_seq", sa.BigInteger(), nullable=True))
    op.execute(
        """
        CREATE FUNCTION offchain_listings_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          NEW.change_xid := pg_current_xact_id()::text::bigint;
          NEW.change_seq := nextval('offchain_listings_change_seq');
          RETURN NEW;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER offchain_listings_changed BEFORE INSERT OR UPDATE ON offchain_listings "
        "FOR EACH ROW EXECUTE FUNCTION offchain_listings_changed()"
    )
    op.execute("UPDATE offchain_listings SET change_seq = 0")  # the trigger stamps each row
    op.alter_column("offchain_listings", "change_xid", nullable=False)
    op.alter_column("offchain_listings", "change_seq", nullable=False)
    op.create_index(
        "ix_offchain_listings_change", "offchain_listings", ["change_xid", "change_seq"]
    )


def downgrade() -> None:
    op.drop_index("ix_offchain_listings_change", "offchain_listings")
    op.execute("DROP TRIGGER offchain_listings_changed ON offchain_listings")
    op.execute("DROP FUNCTION offchain_listings_changed()")
    op.drop_column("offchain_listings", "change_seq")
    op.drop_column("offchain_listings", "change_xid")
    op.execute("DROP SEQUENCE offchain_listings_change_seq")
