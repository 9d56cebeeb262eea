"""Valuations as a change feed: every new row is stamped with its writing transaction's id
(``change_xid``, 64-bit ``pg_current_xact_id``). The listing stream hands out re-valued tokens
in (change_xid, id) order, only below the oldest transaction still running, as it does for
off-chain listings (0011): ids come from a sequence in the order of the inserts, not of the
commits, and a reader paging by id alone skips a valuation whose transaction commits late.

Rows stored before this revision were all committed before it: they get 0, as a constant
default (no table rewrite). Valuations are only ever inserted, so a column default stamps them
(no trigger).

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET lock_timeout = '10s'")
    # a constant default fills the existing rows without rewriting the table; the stamp then
    # becomes the default of every row inserted after
    op.add_column(
        "valuations",
        sa.Column("change_xid", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    )
    op.alter_column(
        "valuations", "change_xid", server_default=sa.text("(pg_current_xact_id()::text::bigint)")
    )
    op.create_index("ix_valuations_change", "valuations", ["change_xid", "id"])


def downgrade() -> None:
    op.drop_index("ix_valuations_change", "valuations")
    op.drop_column("valuations", "change_xid")
