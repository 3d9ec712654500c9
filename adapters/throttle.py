"""Attempts per key over time: a burst, then one more every ``interval_s`` (GCRA).

The state of a key is one number, its theoretical arrival time (TAT): the moment by which every
attempt taken would have been spaced ``interval_s`` apart. An attempt is admitted while the TAT
is at most ``interval_s * (burst - 1)`` ahead of now, and moves it ``interval_s`` on. Taking is
atomic (check and count in one step), so concurrent attempts cannot all slip through before
any is counted; an attempt that turns out not to count (a sign-in that succeeded) is given back.

``InProcessThrottle`` holds the TATs in memory (one process: embedded mode); ``RedisThrottle``
in Redis with Redis's clock, shared by every API process. While Redis fails, each process
counts for itself (its ``fallback``): looser than shared, but never unthrottled, and sign-in
does not go down with Redis.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis

from adapters.resilience import CircuitOpen, Guard
from domain.errors import DependencyUnavailable

log = logging.getLogger(__name__)


class Throttle(Protocol):
    async def take(self, key: str) -> float:
        """0.0 when the attempt is admitted (and counted), else the seconds until one will be."""
        ...

    async def give_back(self, key: str) -> None:
        """Uncount an admitted attempt."""
        ...


class InProcessThrottle:
    def __init__(
        self,
        *,
        burst: int,
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        if burst < 1 or interval_s <= 0:
            raise ValueError("burst must be at least 1 and interval_s positive")
        self._interval = interval_s
        self._tolerance = interval_s * (burst - 1)
        self._clock = clock
        self._max_keys = max_keys
        self._tats: dict[str, float] = {}

    async def take(self, key: str) -> float:
        now = self._clock()
        tat = max(self._tats.get(key, now), now)
        if tat - now > self._tolerance:
            return tat - now - self._tolerance
        if len(self._tats) >= self._max_keys and key not in self._tats:
            self._forget_idle(now)
        self._tats[key] = tat + self._interval
        return 0.0

    async def give_back(self, key: str) -> None:
        if key in self._tats:
            self._tats[key] -= self._interval

    def _forget_idle(self, now: float) -> None:
        """Keys whose TAT has passed are as good as new; if none has, the oldest go."""
        self._tats = {key: tat for key, tat in self._tats.items() if tat > now}
        while len(self._tats) >= self._max_keys:
            del self._tats[min(self._tats, key=self._tats.__getitem__)]


# KEYS[1] the key; ARGV[1] interval_s, ARGV[2] tolerance_s. Returns "0", or the wait in seconds.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat - now > tolerance then return tostring(tat - now - tolerance) end
tat = tat + interval
redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil((tat - now) * 1000))
return '0'
"""

_GIVE_BACK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat then return 0 end
tat = tat - tonumber(ARGV[1])
if tat <= now then redis.call('DEL', KEYS[1]) return 0 end
redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil((tat - now) * 1000))
return 0
"""


class RedisThrottle:
    def __init__(
        self,
        redis: aioredis.Redis,
        guard: Guard,
        *,
        name: str,
        burst: int,
        interval_s: float,
    ) -> None:
        if burst < 1 or interval_s <= 0:
            raise ValueError("burst must be at least 1 and interval_s positive")
        self._guard = guard
        self._fallback = InProcessThrottle(burst=burst, interval_s=interval_s)
        self._prefix = f"throttle:{name}:"
        self._interval = interval_s
        self._tolerance = interval_s * (burst - 1)
        self._take = redis.register_script(_TAKE)
        self._give_back = redis.register_script(_GIVE_BACK)

    async def take(self, key: str) -> float:
        async def call() -> float:
            wait = await self._take(
                keys=[self._prefix + key], args=[self._interval, self._tolerance]
            )
            return float(wait)

        try:
            return await self._guard.call(call)
        except CircuitOpen:  # the breaker logged its opening once; no line per request
            return await self._fallback.take(key)
        except DependencyUnavailable as error:
            log.warning("throttle %s counts in this process: %s", self._prefix, error)
            return await self._fallback.take(key)

    async def give_back(self, key: str) -> None:
        async def call() -> None:
            await self._give_back(keys=[self._prefix + key], args=[self._interval])

        try:
            await self._guard.call(call)
        except CircuitOpen:
            await self._fallback.give_back(key)
        except DependencyUnavailable as error:
            log.warning("throttle %s could not give an attempt back: %s", self._prefix, error)
            await self._fallback.give_back(key)


def retry_after_header(wait_s: float) -> str:
    """Whole seconds, rounded up: a client retrying at once would be refused again."""
    return str(max(1, math.ceil(wait_s)))
