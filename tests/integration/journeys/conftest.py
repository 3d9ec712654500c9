"""Journeys on a real database (SQLite and PostgreSQL), NATS JetStream and Temporal.

``kit`` gives a tenant and the repositories over a migrated, empty database; ``publish`` puts
a definition live the way the REST API does.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.db import Database, TenantRepository
from adapters.db.journeys import (
    CustomerEventRepository,
    CustomerProfiles,
    EntryRepository,
    JourneyRepository,
)
from domain.journeys import JourneyDefinition
from tests.support.temporal import local_env, time_skipping_env  # noqa: F401

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def definition(**overrides: Any) -> JourneyDefinition:
    """A two-node journey triggered by ``cart_abandoned``; override any top-level field."""
    document: dict[str, Any] = {
        "name": "Abandoned cart",
        "trigger": {"type": "event", "event": "cart_abandoned"},
        "start": "pause",
        "nodes": [
            {"id": "pause", "type": "wait", "duration": "PT2S", "next": "done"},
            {"id": "done", "type": "exit"},
        ],
    }
    document.update(overrides)
    return JourneyDefinition.model_validate(document)


@dataclass
class Kit:
    database: Database
    tenant_id: str
    journeys: JourneyRepository
    entries: EntryRepository
    events: CustomerEventRepository
    profiles: CustomerProfiles

    async def publish(self, journey: JourneyDefinition, journey_id: str | None = None) -> str:
        journey_id = journey_id or str(uuid.uuid4())
        if await self.journeys.find(self.tenant_id, journey_id) is None:
            await self.journeys.create(self.tenant_id, journey_id, journey, NOW)
        else:
            await self.journeys.replace_draft(self.tenant_id, journey_id, journey, NOW)
        await self.journeys.publish(self.tenant_id, journey_id, "user:tests", NOW)
        return journey_id


@pytest.fixture
async def kit(database_url: str) -> AsyncIterator[Kit]:
    database = Database(database_url)
    tenant = await TenantRepository(database.async_session).ensure(f"acme-{uuid.uuid4().hex[:6]}")
    sessions = database.async_session
    yield Kit(
        database,
        tenant.id,
        JourneyRepository(sessions),
        EntryRepository(sessions),
        CustomerEventRepository(sessions),
        CustomerProfiles(sessions),
    )
    await database.dispose()
