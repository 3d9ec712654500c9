from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from adapters.db import CampaignRepository, Database, ProfileRepository, TenantRepository
from adapters.db.tables import campaigns_table, creatives_table, user_profiles_table
from domain.campaigns import Campaign, CreativeFormat, Targeting
from tests.integration.db.factories import make_campaign
from workers.demo import IAB_EXAMPLE_USER_IDS, demo_present, load_demo


def matches_plain_medium_rectangle(campaign: Campaign, now: datetime) -> bool:
    """Would bid on a 300x250 request that says nothing about the user, device or deal."""
    return (
        campaign.is_biddable(now)
        and not campaign.deal_ids
        and campaign.targeting == Targeting()
        and any(
            c.format is CreativeFormat.BANNER and (c.w, c.h) == (300, 250)
            for c in campaign.creatives
        )
    )


@pytest.fixture
async def demo_db(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    yield db
    await db.dispose()


async def row_counts(db: Database) -> tuple[int, int, int]:
    async with db.async_session() as session:
        counts = [
            await session.scalar(select(func.count()).select_from(table))
            for table in (campaigns_table, creatives_table, user_profiles_table)
        ]
    return (counts[0] or 0, counts[1] or 0, counts[2] or 0)


async def test_demo_loads_a_live_catalog_and_profiles(database_url: str, demo_db: Database) -> None:
    summary = load_demo(database_url, profiles=2_000)

    live = await CampaignRepository(demo_db.async_session).list_live()
    now = datetime.now(UTC)
    assert len(live) >= 20
    assert sum(matches_plain_medium_rectangle(c, now) for c in live) >= 16
    assert all(c.seat for c in live)
    [pmp] = [c for c in live if c.deal_ids]
    assert (pmp.name, pmp.seat, pmp.deal_ids) == ("Agency1 PMP", "Agency1", ["AB-Agency1-0001"])
    profiles = ProfileRepository(demo_db.async_session)
    for user_id in (*IAB_EXAMPLE_USER_IDS, "user-000001", "user-001997"):
        assert set(await profiles.load_profiles(user_id, [summary.tenant.id])) == {
            summary.tenant.id
        }
    assert await row_counts(demo_db) == (summary.campaigns, summary.creatives, 2_000)
    assert summary.live_campaigns == len(live)
    assert sum(summary.tiers.values()) == summary.profiles == 2_000
    assert "demo" in summary.describe()


def test_demo_present_only_after_loading(database_url: str) -> None:
    assert not demo_present(database_url)

    load_demo(database_url, profiles=10)

    assert demo_present(database_url)


async def test_demo_run_twice_replaces_rows_and_bumps_revision_once(
    database_url: str, demo_db: Database
) -> None:
    first = load_demo(database_url, profiles=2_000)
    counts = await row_counts(demo_db)
    first_ids = {c.id for c in await CampaignRepository(demo_db.async_session).list_live()}

    second = load_demo(database_url, profiles=2_000)

    assert await row_counts(demo_db) == counts
    assert {c.id for c in await CampaignRepository(demo_db.async_session).list_live()} == first_ids
    assert second.tenant == first.tenant
    assert second.catalog_revision == first.catalog_revision + 1
    assert await CampaignRepository(demo_db.async_session).catalog_revision() == (
        second.catalog_revision
    )


@pytest.mark.slow
async def test_demo_loads_a_hundred_thousand_profiles(database_url: str, demo_db: Database) -> None:
    summary = load_demo(database_url)

    assert await row_counts(demo_db) == (summary.campaigns, summary.creatives, 100_000)
    assert summary.tiers.keys() == {"green", "gold", "reserve", "none"}
    assert sum(summary.tiers.values()) == 100_000


async def test_demo_in_another_process_and_saves_here_all_land(
    database_url: str, demo_db: Database
) -> None:
    campaigns = CampaignRepository(demo_db.async_session)
    tenant = await TenantRepository(demo_db.async_session).ensure("acme")
    start = await campaigns.catalog_revision()
    loader = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; from workers.demo import load_demo; load_demo(sys.argv[1], profiles=5_000)",
        database_url,
        stderr=asyncio.subprocess.PIPE,
    )
    finished = asyncio.create_task(loader.communicate())
    ours: list[Campaign] = []
    # Writing for as long as the loader runs, so some saves meet its write transaction.
    while not finished.done() or not ours:
        ours.append(make_campaign(tenant.id))
        await campaigns.save(ours[-1])
    _, stderr = await asyncio.wait_for(finished, timeout=60)

    assert loader.returncode == 0, stderr.decode()
    assert await campaigns.catalog_revision() == start + 1 + len(ours)
    live_ids = {c.id for c in await campaigns.list_live()}
    assert {c.id for c in ours} <= live_ids
    assert len(live_ids) >= len(ours) + 20
