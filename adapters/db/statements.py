"""SQL shared by the async repositories and the synchronous bulk loader.

Each function builds a statement; the callers execute it on their own connection, inside
their own transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Select, Update, select, update
from sqlalchemy.dialects import postgresql, sqlite

from adapters.db.tables import (
    CATALOG_REVISION_ID,
    catalog_revision_table,
    tenants_table,
    user_profiles_table,
)


class SchemaNotMigratedError(RuntimeError):
    """A table or seed row the migrations create is missing."""


def _insert(dialect_name: str, table: Any) -> postgresql.Insert | sqlite.Insert:
    if dialect_name == "postgresql":
        return postgresql.insert(table)
    if dialect_name == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"no upsert for dialect {dialect_name!r}")


def bump_catalog_revision() -> Update:
    """Moves the catalog revision on. Run it FIRST in a catalog write's transaction.

    Taking the row lock (PostgreSQL) or the write lock (SQLite) before reading anything
    orders concurrent catalog writers one after another, and on SQLite it avoids the
    unrecoverable "read snapshot, then cannot upgrade to write" busy error.
    """
    revision = catalog_revision_table.c.revision
    return (
        update(catalog_revision_table)
        .where(catalog_revision_table.c.id == CATALOG_REVISION_ID)
        .values(revision=revision + 1)
    )


def check_bumped(rowcount: int) -> None:
    if rowcount != 1:
        raise SchemaNotMigratedError("catalog_revision has no row: run adapters.db.migrate.upgrade")


def select_catalog_revision() -> Select[int]:
    return select(catalog_revision_table.c.revision).where(
        catalog_revision_table.c.id == CATALOG_REVISION_ID
    )


def insert_tenant_if_missing(
    dialect_name: str, *, tenant_id: str, name: str, seat: str | None, created_at: datetime
) -> Insert:
    """Creates the tenant unless one with this name exists; concurrent callers both succeed."""
    return (
        _insert(dialect_name, tenants_table)
        .values(id=tenant_id, name=name, seat=seat, created_at=created_at)
        .on_conflict_do_nothing(index_elements=[tenants_table.c.name])
    )


def select_tenant_by_name(name: str) -> Select[Any]:
    return select(tenants_table).where(tenants_table.c.name == name)


def update_tenant_seat(tenant_id: str, seat: str | None) -> Update:
    return update(tenants_table).where(tenants_table.c.id == tenant_id).values(seat=seat)


def upsert_profiles(dialect_name: str) -> Insert:
    """An INSERT that overwrites an existing (tenant, user) profile; run with many rows."""
    statement = _insert(dialect_name, user_profiles_table)
    key = {"tenant_id", "user_id"}
    return statement.on_conflict_do_update(
        index_elements=[user_profiles_table.c.tenant_id, user_profiles_table.c.user_id],
        set_={
            column.name: statement.excluded[column.name]
            for column in user_profiles_table.columns
            if column.name not in key
        },
    )


def insert_ignoring_duplicates(
    dialect_name: str, table: Any, unique_columns: list[str], values: dict[str, Any]
) -> Insert:
    """An INSERT that does nothing when a row with the same unique columns exists: how
    idempotency keys make a retried write a no-op. It returns the key of a row it inserted,
    and nothing on a duplicate: test ``result.first() is not None`` (rowcount is -1 for this
    statement on PostgreSQL through psycopg's async driver)."""
    return (
        _insert(dialect_name, table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[table.c[name] for name in unique_columns])
        .returning(table.c[unique_columns[0]])
    )


def upsert(dialect_name: str, table: Any, key_columns: list[str], values: dict[str, Any]) -> Insert:
    """Insert ``values``, or overwrite the row with the same key columns."""
    statement = _insert(dialect_name, table).values(**values)
    return statement.on_conflict_do_update(
        index_elements=[table.c[name] for name in key_columns],
        set_={name: statement.excluded[name] for name in values if name not in key_columns},
    )
