"""Alembic environment: always run with a connection handed in by collector.db.Database.upgrade."""

from alembic import context

from collector.models import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the CLI path is supported
    raise RuntimeError("run migrations through `khien server` / collector.db.Database.upgrade")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTERs need table rebuilds
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
