"""Profiles through L1 (in-process), L2 (Redis) and the database, with real Redis and SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sqlalchemy.exc import SQLAlchemyError

from adapters.cache.profiles import TieredProfileStore, l2_key
from adapters.cache.redis_client import connect_redis, redis_guard
from adapters.db import Database, ProfileRepository, TenantRepository, upgrade
from adapters.resilience import Guard
from domain.profiles import LoyaltyTier, UserProfile
from tests.factories import make_profile
from tests.support.services import PrivateRedis


class CountingSource:
    """The real repository, counting how often the database is asked."""

    def __init__(self, repository: ProfileRepository, tenant_id: str) -> None:
        self._repository = repository
        self.tenant_id = tenant_id
        self.loads = 0

    async def load_profiles(
        self, user_id: str, tenant_ids: Collection[str]
    ) -> dict[str, UserProfile]:
        self.loads += 1
        return await self._repository.load_profiles(user_id, tenant_ids)


@pytest.fixture
async def source(tmp_path: Path) -> AsyncIterator[CountingSource]:
    url = f"sqlite:///{tmp_path / 'profiles.db'}"
    upgrade(url)
    database = Database(url)
    tenant = await TenantRepository(database.async_session).ensure("tenant-a")
    repository = ProfileRepository(database.async_session)
    await repository.upsert_many(
        [
            make_profile("known", tenant_id=tenant.id, loyalty_tier=LoyaltyTier.GOLD),
            make_profile("other", tenant_id=tenant.id),
        ]
    )
    yield CountingSource(repository, tenant.id)
    await database.dispose()


def store(source: CountingSource, redis: aioredis.Redis | None = None) -> TieredProfileStore:
    return TieredProfileStore(
        source,
        l1_size=100,
        l1_ttl_s=60,
        source_guard=Guard("db", timeout_s=2, failures=(SQLAlchemyError, OSError)),
        redis=redis,
        redis_guard=redis_guard("redis", 1.0) if redis is not None else None,
    )


async def test_l1_serves_repeat_lookups(source: CountingSource) -> None:
    profiles = store(source)
    tenant = source.tenant_id
    first = await profiles.get_profiles("known", [tenant])
    second = await profiles.get_profiles("known", [tenant])
    assert first[tenant].known
    assert first[tenant].tier is LoyaltyTier.GOLD
    assert second == first
    assert source.loads == 1


async def test_unknown_user_is_cached_as_absent(source: CountingSource) -> None:
    profiles = store(source)
    tenant = source.tenant_id
    assert await profiles.get_profiles("stranger", [tenant]) == {}
    assert await profiles.get_profiles("stranger", [tenant]) == {}
    assert source.loads == 1


async def test_l2_serves_a_fresh_process(source: CountingSource, redis_url: str) -> None:
    tenant = source.tenant_id
    client = connect_redis(redis_url, pool_size=4, timeout_s=1)
    try:
        writer = store(source, client)
        await writer.get_profiles("known", [tenant])
        await writer.get_profiles("stranger", [tenant])
        await writer.close()  # the L2 writes happen after the answer
        assert await client.exists(l2_key(tenant, "known"), l2_key(tenant, "stranger")) == 2

        reader = store(source, client)
        found = await reader.get_profiles("known", [tenant])
        absent = await reader.get_profiles("stranger", [tenant])
    finally:
        await client.aclose()
    assert found[tenant].known
    assert absent == {}
    assert source.loads == 2  # only the first store asked the database


async def test_redis_down_falls_back_to_the_database(source: CountingSource) -> None:
    tenant = source.tenant_id
    redis = PrivateRedis().start()
    client = connect_redis(redis.url, pool_size=4, timeout_s=0.2)
    try:
        redis.stop()
        profiles = store(source, client)
        found = await profiles.get_profiles("known", [tenant])
        await profiles.close()
    finally:
        await client.aclose()
        redis.stop()
    assert found[tenant].known


async def test_invalidate_drops_both_tiers(source: CountingSource, redis_url: str) -> None:
    tenant = source.tenant_id
    client = connect_redis(redis_url, pool_size=4, timeout_s=1)
    try:
        profiles = store(source, client)
        await profiles.get_profiles("known", [tenant])
        await profiles.close()
        await profiles.invalidate(tenant, "known")
        assert not await client.exists(l2_key(tenant, "known"))
        await profiles.get_profiles("known", [tenant])
    finally:
        await client.aclose()
    assert source.loads == 2
