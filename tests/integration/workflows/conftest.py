"""A campaign in a real database, and the real lifecycle activities over it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from activities.campaigns import CampaignActivities
from adapters.bus.campaign_changes import InProcessCampaignChanges
from adapters.db import CampaignRepository, Database, TenantRepository, upgrade
from adapters.db.lifecycle import LifecycleRepository
from tests.factories import make_campaign, make_creative
from tests.support.temporal import local_env  # noqa: F401


@dataclass
class Lifecycle:
    database: Database
    tenant_id: str
    campaigns: CampaignRepository
    records: LifecycleRepository
    activities: CampaignActivities
    published: list[str] = field(default_factory=list)

    async def new_campaign(self, **overrides: object) -> str:
        values: dict[str, object] = {
            "id": str(uuid.uuid4()),
            "tenant_id": self.tenant_id,
            "budget": Decimal(50_000),
            "creatives": [make_creative(id=str(uuid.uuid4()))],
            "status": "draft",
        }
        campaign = make_campaign(**(values | overrides))
        await self.campaigns.save(campaign)
        return campaign.id


@pytest.fixture
async def lifecycle(tmp_path: Path) -> AsyncIterator[Lifecycle]:
    url = f"sqlite:///{tmp_path / 'lifecycle.db'}"
    upgrade(url)
    database = Database(url)
    tenant = await TenantRepository(database.async_session).ensure("acme")
    changes = InProcessCampaignChanges()
    records = LifecycleRepository(database.async_session)
    kit = Lifecycle(
        database=database,
        tenant_id=tenant.id,
        campaigns=CampaignRepository(database.async_session),
        records=records,
        activities=CampaignActivities(records, changes),
    )

    async def remember(campaign_id: str) -> None:
        kit.published.append(campaign_id)

    await changes.subscribe(remember)
    yield kit
    await database.dispose()
