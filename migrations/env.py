"""Alembic environment: online migrations only, with lock and statement timeouts so that an
upgrade applied while the previous version runs waits briefly and fails cleanly instead of
blocking the service."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

from store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url must be set"
    connectable = config.attributes.get("connection")
    if connectable is None:
        engine = create_engine(url, poolclass=pool.NullPool)
        with engine.connect() as connection:
            _run(connection)
        engine.dispose()
    else:
        _run(connectable)


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    lock_timeout = config.attributes.get("lock_timeout", "5s")
    statement_timeout = config.attributes.get("statement_timeout", "120s")
    connection.execute(text(f"SET lock_timeout = '{lock_timeout}'"))
    connection.execute(text(f"SET statement_timeout = '{statement_timeout}'"))
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()


run_migrations_online()
