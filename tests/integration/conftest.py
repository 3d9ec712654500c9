"""Database fixtures shared by the integration tests: each test that asks for ``database_url``
(or ``database``) runs on SQLite (a file of its own) and on PostgreSQL (the session's database,
migrated once and emptied before every test)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from adapters.db import Database, upgrade
from tests.support.services import BACKENDS


@pytest.fixture(scope="session")
def migrated_postgres_url(postgres_server: str) -> str:
    upgrade(postgres_server)
    return postgres_server


def _empty_postgres(url: str) -> None:
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        # CASCADE reaches every table that hangs off tenants, present and future.
        conn.execute("TRUNCATE tenants CASCADE")


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database."""
    if request.param == "sqlite":
        sqlite_url = f"sqlite:///{tmp_path / 'db' / 'campaign.db'}"
        upgrade(sqlite_url)
        return sqlite_url
    postgres_url: str = request.getfixturevalue("migrated_postgres_url")
    _empty_postgres(postgres_url)
    return postgres_url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    yield db
    await db.dispose()
