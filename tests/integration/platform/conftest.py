"""Repository tests run on SQLite and PostgreSQL; API tests on an embedded platform (SQLite,
chdb, in-process bus) served in-process through httpx's ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.platform.support import PlatformApi, platform_api


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[PlatformApi]:
    async with platform_api(tmp_path) as running:
        yield running
