"""The in-process profile cache: expiry, eviction, and entries the collector stops tracking."""

from __future__ import annotations

import gc

import pytest

from adapters.cache.l1 import ProfileL1
from domain.bidding.features import ANONYMOUS, UserFeatures
from domain.profiles import LoyaltyTier, UserProfile


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def features(tier: LoyaltyTier = LoyaltyTier.GOLD) -> UserFeatures:
    profile = UserProfile(
        tenant_id="t1",
        user_id="u1",
        interests={"sports": 0.5},
        segments=["runners"],
        loyalty_tier=tier,
    )
    return UserFeatures.of(profile)


def test_a_profile_comes_back_as_it_went_in() -> None:
    cache = ProfileL1(size=10, ttl_s=60)
    stored = features()
    cache[("t1", "u1")] = stored
    cache[("t1", "nobody")] = None

    found = cache[("t1", "u1")]
    assert found == stored
    assert found is not None
    assert found.tier is LoyaltyTier.GOLD
    assert found.segments == ("runners",)
    assert cache[("t1", "nobody")] is None  # known to have no profile: not a miss
    with pytest.raises(KeyError):
        cache[("t1", "never-seen")]


def test_entries_expire_after_their_ttl() -> None:
    clock = Clock()
    cache = ProfileL1(size=10, ttl_s=60, clock=clock)
    cache[("t1", "u1")] = ANONYMOUS
    clock.now += 59.9
    assert cache[("t1", "u1")] == ANONYMOUS
    clock.now += 0.1
    with pytest.raises(KeyError):
        cache[("t1", "u1")]
    assert len(cache) == 0


def test_a_full_cache_evicts_the_oldest_write_and_expired_ones_go_first() -> None:
    clock = Clock()
    cache = ProfileL1(size=3, ttl_s=60, clock=clock)
    for user in ("a", "b", "c"):
        cache[("t1", user)] = None
        clock.now += 1
    cache[("t1", "a")] = ANONYMOUS  # re-written: now the newest
    cache[("t1", "d")] = None  # full: "b", the oldest write, makes room

    with pytest.raises(KeyError):
        cache[("t1", "b")]
    assert [cache[("t1", user)] for user in ("c", "a", "d")] == [None, ANONYMOUS, None]

    clock.now += 60  # all expired: the next write clears them out
    cache[("t1", "e")] = None
    assert len(cache) == 1


def test_pop_forgets_an_entry() -> None:
    cache = ProfileL1(size=10, ttl_s=60)
    cache[("t1", "u1")] = ANONYMOUS
    cache.pop(("t1", "u1"))
    cache.pop(("t1", "u1"))  # already gone: nothing to do
    with pytest.raises(KeyError):
        cache[("t1", "u1")]


def test_cached_entries_leave_the_collector_alone() -> None:
    cache = ProfileL1(size=1_000, ttl_s=60)
    for user in range(500):
        cache[("t1", f"u{user}")] = features(LoyaltyTier.RESERVE)
    for _ in range(3):  # nested tuples are untracked from the inside out, at worst a pass each
        gc.collect()

    entries = cache._entries  # white box: what the collector's passes would walk
    assert not any(gc.is_tracked(entry) for entry in entries.values())
    assert cache[("t1", "u7")] is not None


def test_non_positive_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        ProfileL1(size=0, ttl_s=60)
