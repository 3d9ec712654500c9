"""The shared sign-in throttle on a real Redis, with Redis's own clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from adapters.cache.redis_client import connect_redis, redis_guard
from adapters.throttle import RedisThrottle


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = connect_redis(redis_url, pool_size=4, timeout_s=1)
    yield client
    await client.aclose()


def throttle(redis: aioredis.Redis, burst: int = 3) -> RedisThrottle:
    return RedisThrottle(redis, redis_guard("redis", 1.0), name="test", burst=burst, interval_s=60)


async def test_a_burst_then_refused_until_the_interval(redis: aioredis.Redis) -> None:
    one, another = throttle(redis), throttle(redis)  # two API processes

    assert [await one.take("k"), await another.take("k"), await one.take("k")] == [0, 0, 0]
    wait = await another.take("k")

    assert 59.0 < wait <= 60.0
    assert await one.take("other") == 0.0
    ttl_ms = await redis.pttl("throttle:test:k")
    assert 170_000 < ttl_ms <= 180_000  # gone once every attempt is paid back


async def test_an_attempt_given_back_is_not_counted(redis: aioredis.Redis) -> None:
    limiter = throttle(redis, burst=2)
    for _ in range(5):
        assert await limiter.take("k") == 0.0
        await limiter.give_back("k")
    assert await redis.exists("throttle:test:k") == 0  # nothing left owed: nothing kept
    assert [await limiter.take("k"), await limiter.take("k")] == [0.0, 0.0]
    assert await limiter.take("k") > 0


async def test_redis_unreachable_counts_in_the_process() -> None:
    dead = connect_redis("redis://127.0.0.1:1/0", pool_size=1, timeout_s=0.2)
    try:
        limiter = throttle(dead, burst=2)
        assert [await limiter.take("k"), await limiter.take("k")] == [0.0, 0.0]
        assert await limiter.take("k") > 0  # throttled all the same, sign-in still answers
        await limiter.give_back("k")
        assert await limiter.take("k") == 0.0
    finally:
        await dead.aclose()
