"""Shared fixtures: real services on loopback, fresh state per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import NATS, POSTGRES, REDIS, ensure

REPO = Path(__file__).resolve().parent.parent
# IAB Tech Lab's OpenRTB 2.6 schemas and examples, copied unchanged (CC BY 3.0, see its README).
CONFORMANCE = REPO / "tests" / "conformance" / "openrtb-2.6"

# Redis database reserved for tests, flushed by the fixture that hands it out.
TEST_REDIS_DB = 9


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's CE_* variables or writes into the checkout's CE_HOME."""
    for name in list(os.environ):
        if name.startswith("CE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CE_HOME", str(tmp_path / "ce-home"))


@pytest.fixture(scope="session")
def redis_service() -> str:
    ensure(REDIS)
    return f"redis://127.0.0.1:{REDIS.port}/{TEST_REDIS_DB}"


@pytest.fixture
def redis_url(redis_service: str) -> Iterator[str]:
    """The test Redis database, empty before and after the test."""
    import redis

    with redis.Redis.from_url(redis_service) as client:
        client.flushdb()
        yield redis_service
        client.flushdb()


@pytest.fixture(scope="session")
def nats_url() -> str:
    ensure(NATS)
    return f"nats://127.0.0.1:{NATS.port}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A database of its own for this test session, dropped at the end."""
    import psycopg

    ensure(POSTGRES)
    name = f"ce_test_{uuid.uuid4().hex[:12]}"
    admin = "postgresql://postgres@127.0.0.1:5432/test"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def conformance_dir() -> Path:
    return CONFORMANCE
