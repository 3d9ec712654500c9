from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import SQLAlchemyError, StatementError

from adapters.db import (
    CampaignChangedError,
    CampaignNotFoundError,
    CampaignRepository,
    Database,
    ProfileRepository,
    TenantRepository,
)
from adapters.db.tables import campaigns_table, user_profiles_table
from domain.bidding.ports import ProfileSource
from domain.campaigns import CampaignStatus, Creative, CreativeFormat
from domain.profiles import LoyaltyTier
from tests.integration.db.factories import make_campaign, make_profile, new_id


@contextmanager
def statements_run(db: Database) -> Iterator[list[str]]:
    """The SQL statements the async engine sends while the block runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(db.async_engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.async_engine.sync_engine, "before_cursor_execute", record)


async def test_save_then_get_round_trips_campaign_exactly(database: Database) -> None:
    tenant = await TenantRepository(database.async_session).ensure("acme", seat="acme-seat")
    campaigns = CampaignRepository(database.async_session)
    campaign = make_campaign(tenant.id)

    await campaigns.save(campaign)
    loaded = await campaigns.get(campaign.id)

    assert loaded == campaign
    assert loaded is not None
    assert loaded.budget == Decimal("987654321012.123456")
    assert loaded.start_at is not None
    assert loaded.start_at.utcoffset() is not None
    assert [c.id for c in loaded.creatives] == [c.id for c in campaign.creatives]


async def test_save_replaces_fields_and_creatives_when_campaign_exists(
    database: Database,
) -> None:
    tenant = await TenantRepository(database.async_session).ensure("acme")
    campaigns = CampaignRepository(database.async_session)
    original = make_campaign(tenant.id)
    await campaigns.save(original)
    kept = original.creatives[2]
    added = Creative(id=new_id(), format=CreativeFormat.BANNER, w=728, h=90, adm="<a></a>")
    changed = original.model_copy(
        update={
            "name": "Winter launch",
            "max_bid": Decimal("3.5"),
            "start_at": None,
            "deal_ids": [],
            "creatives": [added, kept],
        }
    )

    await campaigns.save(changed)

    assert await campaigns.get(original.id) == changed


async def test_get_returns_none_when_campaign_is_unknown(database: Database) -> None:
    assert await CampaignRepository(database.async_session).get(new_id()) is None


async def test_list_live_returns_only_live_campaigns(database: Database) -> None:
    tenant = await TenantRepository(database.async_session).ensure("acme")
    campaigns = CampaignRepository(database.async_session)
    live = [make_campaign(tenant.id) for _ in range(3)]
    others = [
        make_campaign(tenant.id, status=status)
        for status in CampaignStatus
        if status is not CampaignStatus.LIVE
    ]
    for campaign in [*live, *others]:
        await campaigns.save(campaign)

    listed = await campaigns.list_live()

    assert sorted(c.id for c in listed) == sorted(c.id for c in live)
    assert all(len(c.creatives) == 3 for c in listed)


async def test_list_live_keeps_creatives_in_saved_order(database: Database) -> None:
    tenant = await TenantRepository(database.async_session).ensure("acme")
    campaigns = CampaignRepository(database.async_session)
    campaign = make_campaign(tenant.id, seat=None)
    reordered = campaign.model_copy(update={"creatives": campaign.creatives[::-1]})
    await campaigns.save(campaign)
    await campaigns.save(reordered)

    [listed] = await campaigns.list_live()

    assert listed.creatives == reordered.creatives


async def test_list_live_takes_tenant_seat_when_campaign_has_none(database: Database) -> None:
    tenants = TenantRepository(database.async_session)
    tenant = await tenants.ensure("acme", seat="acme-seat")
    campaigns = CampaignRepository(database.async_session)
    own_seat = make_campaign(tenant.id, seat="Agency1")
    no_seat = make_campaign(tenant.id, seat=None)
    await campaigns.save(own_seat)
    await campaigns.save(no_seat)

    seats = {c.id: c.seat for c in await campaigns.list_live()}

    assert seats == {own_seat.id: "Agency1", no_seat.id: "acme-seat"}
    stored = await campaigns.get(no_seat.id)
    assert stored is not None
    assert stored.seat is None


async def test_save_and_set_status_bump_catalog_revision(database: Database) -> None:
    tenant = await TenantRepository(database.async_session).ensure("acme")
    campaigns = CampaignRepository(database.async_session)
    campaign = make_campaign(tenant.id)
    start = await campaigns.catalog_revision()

    await campaigns.save(campaign)
    after_save = await campaigns.catalog_revision()
    await campaigns.set_status(campaign.id, CampaignStatus.PAUSED)
    after_pause = await campaigns.catalog_revision()

    assert (after_save, after_pause) == (start + 1, start + 2)
    assert await campaigns.list_live() == []
    paused = await campaigns.get(campaign.id)
    assert paused is not None
    assert paused.status is CampaignStatus.PAUSED


async def test_writes_increment_campaign_version(database: Database) -> None:
    tenant = await TenantRepository(database.async_session).ensure("acme")
    campaigns = CampaignRepository(database.async_session)
    campaign = make_campaign(tenant.id)

    await campaigns.save(campaign)
    await campaigns.save(campaign)
    await campaigns.set_status(campaign.id, CampaignStatus.PAUSED)

    async with database.async_session() as session:
        version = await session.scalar(
            select(campaigns_table.c.version).where(campaigns_table.c.id == campaign.id)
        )
    assert version == 3


async def test_an_edit_read_before_a_submission_cannot_overwrite_it(database: Database) -> None:
    # The API's PATCH reads the campaign, then writes its edit; the submission (a status
    # change) came in between. Unconditional, the edit would have put the campaign back to
    # draft under its running approval, or sent unreviewed content live once approved.
    tenant = await TenantRepository(database.async_session).ensure("acme")
    campaigns = CampaignRepository(database.async_session)
    campaign = make_campaign(tenant.id, status=CampaignStatus.DRAFT)
    await campaigns.save(campaign)
    read = await campaigns.find(tenant.id, campaign.id)
    assert read is not None

    await campaigns.set_status(campaign.id, CampaignStatus.IN_REVIEW)
    edited = read.campaign.model_copy(update={"name": "edited after the submission"})
    with pytest.raises(CampaignChangedError):
        await campaigns.save(edited, expected_version=read.version)
    with pytest.raises(CampaignChangedError):
        await campaigns.delete(tenant.id, campaign.id, expected_version=read.version)
    with pytest.raises(CampaignChangedError):
        await campaigns.set_status(
            campaign.id, CampaignStatus.ARCHIVED, expected_version=read.version
        )

    kept = await campaigns.get(campaign.id)
    assert kept is not None
    assert (kept.name, kept.status) == (campaign.name, CampaignStatus.IN_REVIEW)
    now = await campaigns.find(tenant.id, campaign.id)
    assert now is not None
    await campaigns.save(edited, expected_version=now.version)  # on the current version: fine
    assert await campaigns.delete(tenant.id, campaign.id, expected_version=now.version + 1)


async def test_catalog_revision_is_seen_by_another_database_object(database_url: str) -> None:
    writer, reader = Database(database_url), Database(database_url)
    try:
        tenant = await TenantRepository(writer.async_session).ensure("acme")
        before = await CampaignRepository(reader.async_session).catalog_revision()
        await CampaignRepository(writer.async_session).save(make_campaign(tenant.id))
        after = await CampaignRepository(reader.async_session).catalog_revision()
    finally:
        await writer.dispose()
        await reader.dispose()
    assert after == before + 1


async def test_set_status_raises_and_keeps_revision_when_campaign_is_unknown(
    database: Database,
) -> None:
    campaigns = CampaignRepository(database.async_session)
    start = await campaigns.catalog_revision()

    with pytest.raises(CampaignNotFoundError):
        await campaigns.set_status(new_id(), CampaignStatus.LIVE)

    assert await campaigns.catalog_revision() == start


async def test_save_writes_nothing_when_a_datetime_is_naive(database: Database) -> None:
    tenant = await TenantRepository(database.async_session).ensure("acme")
    campaigns = CampaignRepository(database.async_session)
    start = await campaigns.catalog_revision()
    naive = make_campaign(tenant.id, start_at=datetime(2026, 1, 1))

    with pytest.raises(StatementError, match="naive datetime"):
        await campaigns.save(naive)

    assert await campaigns.get(naive.id) is None
    assert await campaigns.catalog_revision() == start


async def test_concurrent_saves_each_bump_revision_once(database: Database) -> None:
    tenant = await TenantRepository(database.async_session).ensure("acme")
    campaigns = CampaignRepository(database.async_session)
    start = await campaigns.catalog_revision()
    batch = [make_campaign(tenant.id) for _ in range(8)]

    await asyncio.gather(*(campaigns.save(c) for c in batch))

    assert await campaigns.catalog_revision() == start + len(batch)
    assert len(await campaigns.list_live()) == len(batch)


async def test_tenant_ensure_is_idempotent_and_keeps_seat_unless_given(
    database: Database,
) -> None:
    tenants = TenantRepository(database.async_session)

    created = await tenants.ensure("acme")
    with_seat = await tenants.ensure("acme", seat="acme-seat")
    again = await tenants.ensure("acme")
    other = await tenants.ensure("globex", seat="g")

    assert created.id == with_seat.id == again.id
    assert (created.seat, with_seat.seat, again.seat) == (None, "acme-seat", "acme-seat")
    assert other.id != created.id


async def test_tenant_seat_change_bumps_catalog_revision(database: Database) -> None:
    tenants = TenantRepository(database.async_session)
    campaigns = CampaignRepository(database.async_session)
    await tenants.ensure("acme", seat="one")
    start = await campaigns.catalog_revision()

    await tenants.ensure("acme", seat="one")
    await tenants.ensure("acme")
    unchanged = await campaigns.catalog_revision()
    await tenants.ensure("acme", seat="two")

    assert (unchanged, await campaigns.catalog_revision()) == (start, start + 1)


async def test_load_profiles_returns_only_asked_tenants_in_one_query(database: Database) -> None:
    tenants = TenantRepository(database.async_session)
    a, b, c = [await tenants.ensure(name) for name in ("a", "b", "c")]
    profiles = ProfileRepository(database.async_session)
    await profiles.upsert_many(
        [make_profile(t.id, "user-1") for t in (a, b, c)] + [make_profile(a.id, "user-2")]
    )
    source: ProfileSource = profiles

    with statements_run(database) as seen:
        loaded = await source.load_profiles("user-1", [a.id, b.id, new_id()])

    assert loaded == {a.id: make_profile(a.id, "user-1"), b.id: make_profile(b.id, "user-1")}
    assert len(seen) == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_inline_catalog_revision_sees_session_writes(database: Database) -> None:
    tenant = await TenantRepository(database.async_session).ensure("acme")
    campaigns = CampaignRepository(database.async_session)
    inline = CampaignRepository(database.async_session, inline_engine=database.sync_engine)
    before = await inline.catalog_revision()

    await campaigns.save(make_campaign(tenant.id))

    assert await inline.catalog_revision() == before + 1 == await campaigns.catalog_revision()


# Inline reads are SQLite's only (the bid path in embedded mode).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_inline_sqlite_reads_load_what_the_session_loads(database: Database) -> None:
    tenants = TenantRepository(database.async_session)
    a, b = [await tenants.ensure(name) for name in ("a", "b")]
    written = [
        # Values orjson would read differently from the standard decoder SQLAlchemy uses.
        make_profile(a.id, "user-1", traits={"big": 10**30, "ratio": float("inf")}),
        make_profile(b.id, "user-1", loyalty_tier=None, interests={}, segments=[]),
    ]
    await ProfileRepository(database.async_session).upsert_many(written)
    inline = ProfileRepository(database.async_session, inline_engine=database.sync_engine)
    asked = [a.id, b.id, new_id()]

    loaded = await inline.load_profiles("user-1", asked)

    assert loaded == await ProfileRepository(database.async_session).load_profiles("user-1", asked)
    assert loaded == {profile.tenant_id: profile for profile in written}
    assert await inline.load_profiles("user-2", asked) == {}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_inline_read_failures_are_sqlalchemy_errors(database: Database) -> None:
    async with database.async_session.begin() as session:
        await session.execute(text("DROP TABLE user_profiles"))
    inline = ProfileRepository(database.async_session, inline_engine=database.sync_engine)

    with pytest.raises(SQLAlchemyError, match="no such table"):
        await inline.load_profiles("user-1", [new_id()])


async def test_load_profiles_skips_the_database_when_no_tenant_is_asked(
    database: Database,
) -> None:
    profiles = ProfileRepository(database.async_session)

    with statements_run(database) as seen:
        assert await profiles.load_profiles("user-1", []) == {}

    assert seen == []


async def test_upsert_many_updates_existing_profiles(database: Database) -> None:
    tenant = await TenantRepository(database.async_session).ensure("acme")
    profiles = ProfileRepository(database.async_session)
    await profiles.upsert_many([make_profile(tenant.id, "u1"), make_profile(tenant.id, "u2")])
    changed = make_profile(
        tenant.id,
        "u1",
        interests={"gaming": 0.5},
        segments=[],
        loyalty_tier=None,
        timezone="Asia/Tokyo",
    )

    await profiles.upsert_many([changed, make_profile(tenant.id, "u3")])

    assert await profiles.load_profiles("u1", [tenant.id]) == {tenant.id: changed}
    async with database.async_session() as session:
        count = await session.scalar(select(func.count()).select_from(user_profiles_table))
    assert count == 3


async def test_upsert_many_keeps_loyalty_tier_and_consent(database: Database) -> None:
    tenant = await TenantRepository(database.async_session).ensure("acme")
    profiles = ProfileRepository(database.async_session)
    profile = make_profile(tenant.id, "u1", loyalty_tier=LoyaltyTier.RESERVE)

    await profiles.upsert_many([profile])

    loaded = (await profiles.load_profiles("u1", [tenant.id]))[tenant.id]
    assert loaded.loyalty_tier is LoyaltyTier.RESERVE
    assert loaded.consent == profile.consent
