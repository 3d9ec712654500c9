from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from adapters.db import Backend, Database
from adapters.db.engine import WriteOutsideTransactionError

EXPECTED_PRAGMAS = {
    "journal_mode": "wal",
    "busy_timeout": 5000,
    "synchronous": 1,  # NORMAL
    "foreign_keys": 1,
}


def test_database_creates_missing_sqlite_directory(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "campaign.db"

    db = Database(f"sqlite:///{path}")
    with db.sync_engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    db.sync_engine.dispose()

    assert path.exists()
    assert db.backend is Backend.SQLITE


def test_sync_sqlite_connections_get_pragmas(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'campaign.db'}")
    try:
        with db.sync_engine.connect() as conn:
            seen = {
                name: conn.execute(text(f"PRAGMA {name}")).scalar() for name in EXPECTED_PRAGMAS
            }
    finally:
        db.sync_engine.dispose()
    assert seen == EXPECTED_PRAGMAS


async def test_async_sqlite_connections_get_pragmas(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'campaign.db'}")
    try:
        async with db.async_engine.connect() as conn:
            seen = {
                name: (await conn.execute(text(f"PRAGMA {name}"))).scalar()
                for name in EXPECTED_PRAGMAS
            }
    finally:
        await db.dispose()
    assert seen == EXPECTED_PRAGMAS


# `database` (tests/integration/conftest.py) is a migrated database of each backend; these
# two are SQLite's.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sqlite_enforces_foreign_keys(database: Database) -> None:
    with pytest.raises(IntegrityError):
        async with database.async_session.begin() as session:
            await session.execute(
                text(
                    "INSERT INTO user_profiles (tenant_id, user_id, interests, segments, "
                    "consent, timezone, updated_at) VALUES ('missing', 'u', '{}', '[]', "
                    "'{}', 'UTC', '2026-01-01 00:00:00')"
                )
            )


async def test_postgres_urls_of_every_spelling_reach_the_server(postgres_server: str) -> None:
    rest = postgres_server.split("://", 1)[1]
    for scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        db = Database(f"{scheme}://{rest}")
        try:
            async with db.async_engine.connect() as conn:
                assert (await conn.execute(text("SELECT 1"))).scalar() == 1
            with db.sync_engine.connect() as conn:
                assert conn.execute(text("SELECT 1")).scalar() == 1
        finally:
            await db.dispose()
        assert db.backend is Backend.POSTGRESQL


async def test_postgres_sessions_have_a_statement_timeout(postgres_server: str) -> None:
    db = Database(postgres_server, statement_timeout_s=2.5)
    try:
        async with db.async_engine.connect() as conn:
            timeout = (await conn.execute(text("SHOW statement_timeout"))).scalar()
    finally:
        await db.dispose()
    assert timeout == "2500ms"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sqlite_refuses_a_write_outside_a_transaction(database: Database) -> None:
    # Outside async_session.begin() nothing opens a transaction on SQLite: a write there would
    # commit statement by statement and skip the writers' queue.
    with pytest.raises(WriteOutsideTransactionError):
        async with database.async_session() as session:
            await session.execute(text("DELETE FROM user_profiles"))
    async with database.async_session() as session:
        assert (await session.execute(text("SELECT count(*) FROM user_profiles"))).scalar() == 0
