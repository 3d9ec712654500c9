"""Each database test runs on SQLite (a file of its own) and on PostgreSQL (the session's
database, migrated once and emptied before every test)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url

from adapters.db import Database, upgrade

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def migrated_postgres_url(postgres_server: str) -> str:
    upgrade(postgres_server)
    return postgres_server


def _empty_postgres(url: str) -> None:
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        # CASCADE also empties every table that references these (users, api_keys, ...).
        conn.execute("TRUNCATE user_profiles, creatives, campaigns, tenants CASCADE")


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


@pytest.fixture(params=BACKENDS)
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database nobody has migrated yet."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh' / 'campaign.db'}"
        return
    server: str = request.getfixturevalue("postgres_server")
    name = f"ce_fresh_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield make_url(server).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(server, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
