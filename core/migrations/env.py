"""Alembic environment: migrations run on the engine handed over by core.migrations.runner."""

from __future__ import annotations

from alembic import context

from core.db.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes["engine"]
    with engine.connect() as connection:
        # Batch mode copies a table and drops the old one. With foreign keys on, that DROP would
        # cascade-delete every child row (all metrics of every job), so keys are off while
        # migrating. The PRAGMA only works outside a transaction: send it on the raw connection.
        raw = connection.connection.dbapi_connection
        raw.execute("PRAGMA foreign_keys=OFF")
        try:
            # render_as_batch: SQLite cannot ALTER most things in place; batch mode copies the table.
            context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
            violations = raw.execute("PRAGMA foreign_key_check").fetchall()
            if violations:
                raise RuntimeError(f"migration left foreign-key violations: {violations[:5]}")
        finally:
            raw.execute("PRAGMA foreign_keys=ON")


run_migrations_online()
