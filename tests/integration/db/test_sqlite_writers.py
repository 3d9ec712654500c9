"""Many writers at once on one database: in one process (the embedded worker's activities) and
in two (the API beside the worker), every write transaction succeeds and none loses another's
update."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select, update

from adapters.db import Database, TenantRepository, upgrade
from adapters.db.journeys import CustomerProfiles
from adapters.db.tables import user_profiles_table

profiles = user_profiles_table
WRITERS = 120


async def _increment(database: Database, tenant_id: str, customer_id: str) -> None:
    """Read a trait, yield to the other writers, write it back plus one: lost updates show
    unless the read and the write are one transaction with the database to itself."""
    where = (profiles.c.tenant_id == tenant_id, profiles.c.user_id == customer_id)
    async with database.async_session.begin() as session:
        traits = dict((await session.execute(select(profiles.c.traits).where(*where))).scalar_one())
        await asyncio.sleep(0)
        traits["count"] = traits.get("count", 0) + 1
        await session.execute(update(profiles).where(*where).values(traits=traits))


async def _count(database: Database, tenant_id: str, customer_id: str) -> int:
    profile = await CustomerProfiles(database.async_session).get(tenant_id, customer_id)
    assert profile is not None
    return int(profile.traits["count"])


async def test_concurrent_writers_in_one_process_all_succeed(database: Database) -> None:
    sessions = database.async_session
    tenant = await TenantRepository(sessions).ensure("writers")
    customers = CustomerProfiles(sessions)
    now = datetime.now(UTC)

    await asyncio.gather(
        *(
            customers.apply_traits(tenant.id, f"c-{number}", {"n": number, "welcomed": True}, now)
            for number in range(WRITERS)
        )
    )

    for number in range(0, WRITERS, 17):
        profile = await customers.get(tenant.id, f"c-{number}")
        assert profile is not None
        assert profile.traits == {"n": number, "welcomed": True}


async def test_sqlite_read_then_write_transactions_of_one_process_lose_no_update(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'campaign.db'}"
    upgrade(url)
    database = Database(url)
    try:
        tenant = await TenantRepository(database.async_session).ensure("counter")
        await CustomerProfiles(database.async_session).apply_traits(
            tenant.id, "ada", {"count": 0}, datetime.now(UTC)
        )

        await asyncio.gather(*(_increment(database, tenant.id, "ada") for _ in range(WRITERS)))

        assert await _count(database, tenant.id, "ada") == WRITERS
    finally:
        await database.dispose()


async def test_sqlite_read_then_write_transactions_of_two_processes_lose_no_update(
    tmp_path: Path,
) -> None:
    """Two ``Database`` objects on one file queue apart, as two processes do: BEGIN IMMEDIATE
    (the busy handler at BEGIN) keeps each read-then-write whole."""
    url = f"sqlite:///{tmp_path / 'campaign.db'}"
    upgrade(url)
    api, worker = Database(url), Database(url)
    try:
        tenant = await TenantRepository(api.async_session).ensure("counter")
        await CustomerProfiles(api.async_session).apply_traits(
            tenant.id, "ada", {"count": 0}, datetime.now(UTC)
        )
        each = 40

        await asyncio.gather(
            *(_increment(db, tenant.id, "ada") for _ in range(each) for db in (api, worker))
        )

        assert await _count(worker, tenant.id, "ada") == 2 * each
    finally:
        await api.dispose()
        await worker.dispose()
