"""Operations: a partial index on sent outbox rows, so the resend scan and the pruning of old sent
rows read only the window they need instead of every message ever sent.

Built CONCURRENTLY (outside a transaction, no write lock), so it is safe to apply while the
previous version runs; an index left invalid by an interrupted build is dropped and rebuilt.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    _outside_transaction(
        "DROP INDEX CONCURRENTLY IF EXISTS ix_outbox_sent",
        "CREATE INDEX CONCURRENTLY ix_outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL",
    )


def downgrade() -> None:
    _outside_transaction("DROP INDEX CONCURRENTLY IF EXISTS ix_outbox_sent")


def _outside_transaction(*statements: str) -> None:
    """Run ``statements`` in autocommit on the migration's connection. The environment runs
    every migration in one transaction opened on the connection itself (alembic's
    ``autocommit_block`` refuses that), so commit what came before, switch to autocommit, and
    switch back for the migrations after this one. No statement timeout: a concurrent build
    takes as long as the table is big and blocks no one meanwhile."""
    bind = op.get_bind()
    timeout = bind.exec_driver_sql("SHOW statement_timeout").scalar()
    bind.commit()
    level = bind.default_isolation_level
    bind.execution_options(isolation_level="AUTOCOMMIT")
    try:
        bind.exec_driver_sql("SET statement_timeout = 0")
        for statement in statements:
            bind.exec_driver_sql(statement)
    finally:
        bind.exec_driver_sql(f"SET statement_timeout = '{timeout}'")
        bind.commit()  # ends SQLAlchemy's own bookkeeping of the autocommit "transaction"
        bind.execution_options(isolation_level=level)
