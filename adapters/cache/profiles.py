"""Profiles for the bid path: L1 in-process LRU with TTL, L2 Redis, then the database.

Unknown users are cached too (as "absent"): most bid requests carry users we have never seen,
and each one must not cost a database query. Redis failing degrades to L1 + database; the
database failing degrades to an anonymous bid. Neither fails the request.

Database reads on the bid path are bounded and shared: concurrent lookups of one user share a
read, and past ``max_source_reads`` reads in flight a request bids without the profile instead
of queueing behind the others (its tmax would run out in the queue, and the queue would hold
every later request up too).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Coroutine
from typing import Any, Final, TypeVar

import redis.asyncio as aioredis

from adapters import metrics
from adapters.cache.l1 import ProfileL1
from adapters.resilience import Guard
from domain.bidding.features import UserFeatures
from domain.bidding.ports import ProfileSource
from domain.errors import DependencyUnavailable
from domain.profiles import UserProfile

log = logging.getLogger(__name__)

T = TypeVar("T")

_ABSENT: Final = "-"
_L2_PREFIX = "ce:profile:"


def l2_key(tenant_id: str, user_id: str) -> str:
    return f"{_L2_PREFIX}{tenant_id}:{user_id}"


class TieredProfileStore:
    def __init__(
        self,
        source: ProfileSource,
        *,
        l1_size: int,
        l1_ttl_s: float,
        source_guard: Guard,
        redis: aioredis.Redis | None = None,
        redis_guard: Guard | None = None,
        l2_ttl_s: int = 3600,
        max_source_reads: int = 16,
    ) -> None:
        self._source = source
        self._l1 = ProfileL1(l1_size, l1_ttl_s)
        self._redis = redis
        self._l2_ttl = l2_ttl_s
        if redis is not None and redis_guard is None:
            raise ValueError("a Redis L2 needs its guard")
        self._redis_guard = redis_guard or Guard("redis-unused", timeout_s=0)
        self._source_guard = source_guard
        self._max_source_reads = max_source_reads
        self._reads: dict[
            tuple[str, tuple[str, ...]], asyncio.Task[dict[str, UserFeatures | None]]
        ] = {}
        self._background: set[asyncio.Task[Any]] = set()
        # Bound once: labels() looks the child up on every call, and L1 is read for every bid.
        self._l1_hits = metrics.cache_hits.labels("l1")
        self._l1_misses = metrics.cache_misses.labels("l1")

    async def get_profiles(
        self, user_id: str, tenant_ids: Collection[str]
    ) -> dict[str, UserFeatures]:
        found: dict[str, UserFeatures] = {}
        missing: list[str] = []
        for tenant in tenant_ids:
            try:
                cached = self._l1[(tenant, user_id)]
            except KeyError:
                missing.append(tenant)
                continue
            self._l1_hits.inc()
            if cached is not None:
                found[tenant] = cached
        if not missing:
            return found
        self._l1_misses.inc(len(missing))

        if self._redis is not None and not self._redis_guard.is_open:
            missing = await self._from_l2(user_id, missing, found)
        if missing:
            await self._from_source(user_id, missing, found)
        return found

    async def _from_l2(
        self, user_id: str, tenants: list[str], found: dict[str, UserFeatures]
    ) -> list[str]:
        assert self._redis is not None
        redis = self._redis
        keys = [l2_key(tenant, user_id) for tenant in tenants]
        try:
            values = await self._redis_guard.call(lambda: redis.mget(keys))
        except DependencyUnavailable:
            return tenants
        still_missing: list[str] = []
        for tenant, value in zip(tenants, values, strict=True):
            if value is None:
                still_missing.append(tenant)
                continue
            metrics.cache_hits.labels("l2").inc()
            if value == _ABSENT.encode():
                self._l1[(tenant, user_id)] = None
                continue
            features = UserFeatures.of(UserProfile.model_validate_json(value))
            self._l1[(tenant, user_id)] = features
            found[tenant] = features
        if still_missing:
            metrics.cache_misses.labels("l2").inc(len(still_missing))
        return still_missing

    async def _from_source(
        self, user_id: str, tenants: list[str], found: dict[str, UserFeatures]
    ) -> None:
        key = (user_id, tuple(sorted(tenants)))
        read = self._reads.get(key)
        if read is None:
            if len(self._reads) >= self._max_source_reads:
                metrics.cache_misses.labels("source_busy").inc()
                return
            read = self._in_background(self._read_source(user_id, tenants))
            self._reads[key] = read
            read.add_done_callback(lambda _: self._reads.pop(key, None))
        # Shielded: a bid that runs out of time stops waiting, but the read goes on and fills
        # L1 for the next bid. Cancelling it would also make SQLAlchemy throw its connection
        # away, and reopening connections under load is what made reads slow in the first place.
        profiles = await asyncio.shield(read)
        found.update(
            (tenant, features) for tenant, features in profiles.items() if features is not None
        )

    async def _read_source(
        self, user_id: str, tenants: list[str]
    ) -> dict[str, UserFeatures | None]:
        """One database read for concurrent lookups of the same user; fills L1, then L2."""
        try:
            profiles = await self._source_guard.call(
                lambda: self._source.load_profiles(user_id, tenants)
            )
        except DependencyUnavailable:
            return {}  # counted by the guard, logged when its breaker opens
        read: dict[str, UserFeatures | None] = {}
        l2_values: dict[str, str | bytes] = {}
        for tenant in tenants:
            profile = profiles.get(tenant)
            features = UserFeatures.of(profile) if profile is not None else None
            self._l1[(tenant, user_id)] = features
            read[tenant] = features
            l2_values[l2_key(tenant, user_id)] = (
                profile.model_dump_json() if profile is not None else _ABSENT
            )
        if self._redis is not None and not self._redis_guard.is_open:
            self._in_background(self._write_l2(l2_values))
        return read

    def _in_background(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _write_l2(self, values: dict[str, str | bytes]) -> None:
        """Fill L2 after answering: the bid does not wait for it."""
        assert self._redis is not None
        redis = self._redis

        async def write() -> None:
            async with redis.pipeline(transaction=False) as pipe:
                for key, value in values.items():
                    pipe.set(key, value, ex=self._l2_ttl)
                await pipe.execute()

        try:
            await self._redis_guard.call(write)
        except DependencyUnavailable:
            return

    async def close(self) -> None:
        """Let reads and L2 writes in flight finish (or give up) before their clients close."""
        if not self._background:
            return
        _, late = await asyncio.wait(self._background, timeout=1.0)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    def forget(self, tenant_id: str, user_id: str) -> None:
        """Drop a profile from L1 (after it changed)."""
        self._l1.pop((tenant_id, user_id))

    async def invalidate(self, tenant_id: str, user_id: str) -> None:
        """Drop a profile from L1 and L2, so the next bid reads the database."""
        self.forget(tenant_id, user_id)
        if self._redis is not None:
            redis = self._redis
            try:
                await self._redis_guard.call(lambda: redis.delete(l2_key(tenant_id, user_id)))
            except DependencyUnavailable:
                log.warning("could not drop %s from L2; it expires with its TTL", user_id)
