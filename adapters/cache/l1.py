"""The bid path's in-process profile cache, kept out of the garbage collector's way.

cachetools' TTLCache held a link object and a UserFeatures per entry, all tracked by the
collector: with 100,000 entries (the default allows 200,000) a full collector pass took
~99 ms, a stall for every bid in flight. Here an entry is a plain tuple of strings, numbers
and numpy arrays, which the collector stops tracking once its passes have seen it (nested
tuples: a pass a level at worst); then a full pass over 100,000 entries takes ~8 ms, most of
it walking the one dict that holds them.

Every entry lives ``ttl_s`` from when it was written, so insertion order is expiry order:
the oldest entry is both the next to expire and the one evicted when the cache is full
(TTLCache evicted the least recently read instead; within one TTL the difference is small).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from domain.bidding.features import UserFeatures

Key = tuple[str, str]  # (tenant id, user id)
_Row = tuple[object, ...]  # tuple(UserFeatures)


class ProfileL1:
    """At most ``size`` profiles (or their known absence, ``None``), each for ``ttl_s``."""

    __slots__ = ("_clock", "_entries", "_size", "_ttl_s")

    def __init__(
        self, size: int, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if size <= 0 or ttl_s <= 0:
            raise ValueError("size and ttl_s must be positive")
        self._size = size
        self._ttl_s = ttl_s
        self._clock = clock
        # OrderedDict: taking the oldest entry is O(1); a plain dict's first key is found by
        # skipping every slot deleted before it, which grows until the dict is rebuilt.
        self._entries: OrderedDict[Key, tuple[float, _Row | None]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, key: Key) -> UserFeatures | None:
        """The cached profile, ``None`` for a user known to have none; KeyError if not cached
        (or no longer)."""
        expires, row = self._entries[key]
        if expires <= self._clock():
            del self._entries[key]
            raise KeyError(key)
        return None if row is None else UserFeatures._make(row)

    def __setitem__(self, key: Key, features: UserFeatures | None) -> None:
        entries = self._entries
        now = self._clock()
        entries.pop(key, None)  # re-written: it moves to the end, where its expiry belongs
        while entries:  # drop expired entries from the front, then make room
            oldest = next(iter(entries.values()))
            if oldest[0] > now and len(entries) < self._size:
                break
            entries.popitem(last=False)
        entries[key] = (now + self._ttl_s, None if features is None else tuple(features))

    def pop(self, key: Key) -> None:
        self._entries.pop(key, None)
