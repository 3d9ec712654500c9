"""An embedded platform (SQLite with the demo tenant, chdb, in-process ledger) per test,
served in-process through httpx's ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.db import upgrade
from adapters.settings import Settings
from api.main import create_app
from workers.demo import load_demo
from workers.runtime import Role, Runtime

DEMO_PROFILES = 2_000


@dataclass
class Platform:
    client: httpx.AsyncClient
    runtime: Runtime
    settings: Settings


@pytest.fixture(scope="module")
def demo_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One demo database per test module: loading it is the slow part."""
    url = f"sqlite:///{tmp_path_factory.mktemp('demo-db') / 'campaign.db'}"
    upgrade(url)
    load_demo(url, profiles=DEMO_PROFILES)
    return url


def embedded_settings(home: Path, database_url: str, **overrides: Any) -> Settings:
    return Settings(
        home=home,
        database_url=database_url,
        analytics={"flush_interval_s": 0.1},
        **overrides,
    )


@pytest.fixture
def settings(tmp_path: Path, demo_database: str) -> Settings:
    return embedded_settings(tmp_path / "home", demo_database)


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    async with Runtime(settings, Role.EMBEDDED) as runtime:
        app = create_app(await runtime.api_services())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bidder.test") as client:
            yield Platform(client, runtime, settings)
