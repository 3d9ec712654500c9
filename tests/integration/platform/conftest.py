"""Repository tests run on SQLite and PostgreSQL; API tests on an embedded platform (SQLite,
chdb, in-process bus) served in-process through httpx's ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from adapters.db import Database, upgrade
from tests.integration.platform.support import PlatformApi, platform_api

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def platform_postgres_url(postgres_server: str) -> str:
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
        url = f"sqlite:///{tmp_path / 'db' / 'campaign.db'}"
        upgrade(url)
        return url
    postgres_url: str = request.getfixturevalue("platform_postgres_url")
    _empty_postgres(postgres_url)
    return postgres_url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    yield db
    await db.dispose()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[PlatformApi]:
    async with platform_api(tmp_path) as running:
        yield running
