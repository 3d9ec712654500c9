from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.customer_events import (
    CustomerEvent,
    EventSource,
    PriorityBand,
    band_of,
    condition_context,
    entered_segments,
    with_traits,
)
from domain.profiles import UserProfile

AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("priority", "band"),
    [(100, PriorityBand.HIGH), (70, PriorityBand.HIGH), (69, PriorityBand.NORMAL),
     (50, PriorityBand.NORMAL), (30, PriorityBand.NORMAL), (29, PriorityBand.LOW),
     (0, PriorityBand.LOW)],
)  # fmt: skip
def test_priority_weights_fall_into_bands(priority: int, band: PriorityBand) -> None:
    assert band_of(priority) is band


def test_traits_merge_into_the_profile_and_null_removes_one() -> None:
    profile = UserProfile(
        tenant_id="t", user_id="c", traits={"email": "old@example.com", "vip": True}
    )

    updated = with_traits(
        profile,
        {"email": "new@example.com", "vip": None, "timezone": "Europe/Paris",
         "segments": ["buyers", "buyers", "eu"]},
    )  # fmt: skip

    assert updated.traits == {"email": "new@example.com"}
    assert updated.timezone == "Europe/Paris"
    assert updated.segments == ["buyers", "eu"]


def test_traits_without_segments_keep_the_segments() -> None:
    profile = UserProfile(tenant_id="t", user_id="c", segments=["eu"])

    assert with_traits(profile, {"first_name": "Ada"}).segments == ["eu"]


def test_segments_entered_are_the_new_ones() -> None:
    before = UserProfile(tenant_id="t", user_id="c", segments=["eu"])
    after = with_traits(before, {"segments": ["eu", "buyers"]})

    assert entered_segments(before, after) == ["buyers"]
    assert entered_segments(None, after) == ["eu", "buyers"]


def test_condition_context_exposes_profile_and_event() -> None:
    profile = UserProfile(
        tenant_id="t", user_id="c", segments=["eu"], timezone="Asia/Tokyo", traits={"tier": 2}
    )

    context = condition_context(profile, {"total": 30})

    assert context == {
        "profile": {"tier": 2, "segments": ["eu"], "loyalty_tier": None, "timezone": "Asia/Tokyo"},
        "event": {"total": 30},
    }


def test_event_reference_carries_no_properties() -> None:
    event = CustomerEvent(
        tenant_id="t", event_id="e1", customer_id="c1", name="cart_abandoned",
        source=EventSource.WEB, occurred_at=AT, received_at=AT, properties={"total": 3},
    )  # fmt: skip

    assert event.ref().model_dump() == {
        "event_id": "e1", "name": "cart_abandoned", "occurred_at": AT,
    }  # fmt: skip
    assert event.dedup_key == "t:e1"
