"""Loyalty boost, strategies and pacing as plain functions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.bidding.pricing import day_fraction, loyalty_boost, offered_cpm, pacing_participation
from domain.profiles import LoyaltyTier


@pytest.mark.parametrize(
    ("tier", "expected"),
    [(None, 1.0), (LoyaltyTier.GREEN, 1.0), (LoyaltyTier.GOLD, 1.15), (LoyaltyTier.RESERVE, 1.3)],
)
def test_loyalty_boost_follows_the_tiers(tier: LoyaltyTier | None, expected: float) -> None:
    assert loyalty_boost(tier) == expected


def test_score_scaled_price_never_exceeds_max_bid() -> None:
    assert offered_cpm(False, 4.0, 0.5) == 2.0
    assert offered_cpm(False, 4.0, 1.2) == 4.0
    assert offered_cpm(True, 4.0, 0.1) == 4.0


def test_day_fraction() -> None:
    assert day_fraction(datetime(2026, 1, 1, 12, tzinfo=UTC)) == 0.5


def test_pacing_bids_freely_on_schedule() -> None:
    assert pacing_participation(0, 1_000, 0.0) == 1.0
    assert pacing_participation(500, 1_000, 0.5) == 1.0
    assert pacing_participation(10, None, 0.0) == 1.0


def test_pacing_slows_down_ahead_of_schedule_and_stops_when_spent() -> None:
    ahead = pacing_participation(700, 1_000, 0.25)
    further = pacing_participation(900, 1_000, 0.25)
    assert 0 < further < ahead < 1
    assert pacing_participation(1_000, 1_000, 0.25) == 0.0
