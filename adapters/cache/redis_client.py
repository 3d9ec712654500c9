"""The Redis client every adapter shares: a bounded pool that waits instead of failing.

redis-py's default asyncio pool raises ``MaxConnectionsError`` once its connections are all in
use; under a burst of bids that would turn into errors. A blocking pool queues the caller for a
free connection instead, bounded by the same timeout as the command.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from adapters.resilience import Guard


def connect_redis(url: str, *, pool_size: int, timeout_s: float) -> aioredis.Redis:
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=pool_size,
        timeout=timeout_s,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=30,
        retry=Retry(NoBackoff(), retries=0),
    )
    # from_pool hands the pool to the client, so closing the client closes its connections.
    return aioredis.Redis.from_pool(pool)


def redis_guard(name: str, timeout_s: float) -> Guard:
    """A guard that counts redis-py's own errors (they are not OSErrors) as Redis failing."""
    return Guard(name, timeout_s=timeout_s, failures=(RedisError, OSError))
