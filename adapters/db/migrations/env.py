"""Alembic's entry point, run by ``adapters.db.migrate`` (or the ``alembic`` CLI).

``migrate`` hands in an open connection that already holds the migration lock; the CLI gives
a URL through ``sqlalchemy.url`` instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from adapters.db.engine import Backend, Database, resolve_urls
from adapters.db.migrate import MIGRATION_STATEMENT_TIMEOUT_S, render_item
from adapters.db.tables import metadata

config = context.config


def _configure_online(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite alters most things by copying the table; batch mode writes migrations that way.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
    )


def _run_online() -> None:
    connection: Connection | None = config.attributes.get("connection")
    if connection is not None:
        _configure_online(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection in config.attributes and no sqlalchemy.url")
    database = Database(url, statement_timeout_s=MIGRATION_STATEMENT_TIMEOUT_S)
    try:
        with database.sync_engine.connect() as conn:
            _configure_online(conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        database.sync_engine.dispose()


def _run_offline() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("offline mode needs sqlalchemy.url")
    urls = resolve_urls(url)
    context.configure(
        url=urls.sync,
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=urls.backend is Backend.SQLITE,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
