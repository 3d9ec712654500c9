"""The Redis client every adapter shares: a bounded pool that waits instead of failing.

redis-py's default asyncio pool raises ``MaxConnectionsError`` once its connections are all in
use; under a burst of bids that would turn into errors. A blocking pool queues the caller for a
free connection instead, bounded by the same timeout as the command.
"""

from __future__ import annotations

import redis.asyncio as aioredis


def connect_redis(url: str, *, pool_size: int, timeout_s: float) -> aioredis.Redis:
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=pool_size,
        timeout=timeout_s,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=30,
    )
    return aioredis.Redis(connection_pool=pool)
