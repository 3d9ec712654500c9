from __future__ import annotations

import pytest

from adapters.db import Backend, UnsupportedDatabaseURLError, resolve_urls


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p%40ss@db:5432/ce",
        "postgres://u:p%40ss@db:5432/ce",
        "postgresql+psycopg://u:p%40ss@db:5432/ce",
    ],
)
def test_resolve_urls_uses_psycopg_for_every_postgres_spelling(url: str) -> None:
    urls = resolve_urls(url)

    assert urls.backend is Backend.POSTGRESQL
    assert urls.sync.drivername == urls.async_.drivername == "postgresql+psycopg"
    assert (urls.sync.password, urls.sync.host, urls.sync.database) == ("p@ss", "db", "ce")


@pytest.mark.parametrize(
    "url", ["sqlite:////var/ce/campaign.db", "sqlite+aiosqlite:////var/ce/campaign.db"]
)
def test_resolve_urls_pairs_sqlite_with_aiosqlite(url: str) -> None:
    urls = resolve_urls(url)

    assert urls.backend is Backend.SQLITE
    assert urls.sync.drivername == "sqlite"
    assert urls.async_.drivername == "sqlite+aiosqlite"
    assert urls.sync.database == urls.async_.database == "/var/ce/campaign.db"


@pytest.mark.parametrize(
    "url",
    [
        "mysql://u@db/ce",
        "sqlite://",
        "sqlite:///:memory:",
        "not a url",
        "postgresql+asyncpg://db/ce",
    ],
)
def test_resolve_urls_refuses_databases_we_do_not_run_on(url: str) -> None:
    with pytest.raises(UnsupportedDatabaseURLError):
        resolve_urls(url)
