"""Schema migrations, run from code: no ``alembic.ini`` needed in the working directory.

Every process that needs the schema calls ``upgrade`` at start. Concurrent callers are safe:
each migration run holds the database's own lock (an advisory lock on PostgreSQL, the write
lock on SQLite), so the second caller finds the schema already at head.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, cast

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, String, func, select
from sqlmodel.sql.sqltypes import AutoString

from adapters.db.engine import Backend, Database
from adapters.db.tables import metadata
from adapters.db.types import (
    MONEY_PRECISION,
    MONEY_SCALE,
    MONEY_SQLITE_TEXT_LENGTH,
    JsonDocument,
    Money,
    UtcDateTime,
)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# pg_advisory_xact_lock key: "CEMIGR" in ASCII, unlikely to collide with anyone else's.
_POSTGRES_LOCK_KEY = 0x43454D494752
# A migrator may have to wait for another to finish; longer than a normal statement.
MIGRATION_LOCK_WAIT_S = 120
MIGRATION_STATEMENT_TIMEOUT_S = 600.0


class MigrationError(RuntimeError):
    """The schema could not be brought to the wanted revision."""


def alembic_config(connection: Connection | None = None) -> Config:
    """A programmatic Alembic config over the migrations shipped in this package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if connection is not None:
        # env.py runs on this connection; a URL in the ini options would need '%' escaping.
        config.attributes["connection"] = connection
    return config


def render_item(kind: str, obj: Any, context: AutogenContext) -> str | Literal[False]:
    """Write our column types as plain SQLAlchemy, so migrations never import the app."""
    if kind != "type":
        return False
    if isinstance(obj, JsonDocument):
        context.imports.add("from sqlalchemy.dialects import postgresql")
        return 'sa.JSON().with_variant(postgresql.JSONB(), "postgresql")'
    if isinstance(obj, Money):
        return (
            f"sa.Numeric(precision={MONEY_PRECISION}, scale={MONEY_SCALE})"
            f'.with_variant(sa.String(length={MONEY_SQLITE_TEXT_LENGTH}), "sqlite")'
        )
    if isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    if isinstance(obj, AutoString):
        length = cast(String, obj.impl).length
        return f"sa.String(length={length})" if length else "sa.String()"
    return False


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise MigrationError("no migrations found")
    return head


@contextmanager
def _migration_connection(database: Database) -> Iterator[Connection]:
    """A connection inside one transaction that holds the migration lock; commits on success."""
    with database.sync_engine.connect() as conn:
        if database.backend is Backend.SQLITE:
            # Copying a table in batch mode drops the original; with foreign keys on, SQLite
            # would cascade that drop into the rows that reference it.
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.exec_driver_sql(f"PRAGMA busy_timeout={MIGRATION_LOCK_WAIT_S * 1000}")
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            # Bounds the wait for the advisory lock and for table locks held by live queries.
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{MIGRATION_LOCK_WAIT_S}s'")
            conn.execute(select(func.pg_advisory_xact_lock(_POSTGRES_LOCK_KEY)))
        yield conn
        if database.backend is Backend.SQLITE:
            broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                conn.rollback()
                raise MigrationError(f"migration left rows with dangling foreign keys: {broken}")
        conn.commit()


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the schema at ``database_url`` to ``revision`` (the newest by default)."""
    database = Database(database_url, statement_timeout_s=MIGRATION_STATEMENT_TIMEOUT_S)
    try:
        with _migration_connection(database) as conn:
            command.upgrade(alembic_config(conn), revision)
    finally:
        database.sync_engine.dispose()


def downgrade(database_url: str, revision: str) -> None:
    """Take the schema back to ``revision`` ("base": nothing). Data in dropped tables is lost."""
    database = Database(database_url, statement_timeout_s=MIGRATION_STATEMENT_TIMEOUT_S)
    try:
        with _migration_connection(database) as conn:
            command.downgrade(alembic_config(conn), revision)
    finally:
        database.sync_engine.dispose()


def current_revision(database_url: str) -> str | None:
    """The revision the schema is at; None for a database never migrated."""
    database = Database(database_url)
    try:
        with database.sync_engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        database.sync_engine.dispose()


def pending_changes(database_url: str) -> list[Any]:
    """What autogenerate would write for this database: empty when tables and schema agree."""
    database = Database(database_url)
    try:
        with database.sync_engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))
    finally:
        database.sync_engine.dispose()


def make_revision(database_url: str, message: str) -> list[Path]:
    """Write a new migration by comparing the tables with a database already at head.

    For developers: the generated file still needs reading before it is committed.
    """
    script = ScriptDirectory.from_config(alembic_config())
    numbers = [int(rev.revision) for rev in script.walk_revisions() if rev.revision.isdigit()]
    database = Database(database_url, statement_timeout_s=MIGRATION_STATEMENT_TIMEOUT_S)
    try:
        with _migration_connection(database) as conn:
            result = command.revision(
                alembic_config(conn),
                message,
                autogenerate=True,
                rev_id=f"{max(numbers, default=0) + 1:04d}",
            )
    finally:
        database.sync_engine.dispose()
    scripts = result if isinstance(result, list) else [result]
    return [Path(s.path) for s in scripts if s is not None]
