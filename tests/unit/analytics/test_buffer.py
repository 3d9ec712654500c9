"""The bounded queue between the bid path and an analytics writer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from adapters.analytics.buffer import DropOldestBuffer
from domain.analytics import AnalyticsEvent, EventType


def dropped() -> float:
    return REGISTRY.get_sample_value("campaign_analytics_events_dropped_total") or 0.0


def events(count: int) -> list[AnalyticsEvent]:
    moment = datetime(2026, 11, 28, tzinfo=UTC)
    return [AnalyticsEvent(f"e{i}", moment, EventType.BID) for i in range(count)]


def test_full_buffer_drops_the_oldest_and_counts_it() -> None:
    buffer = DropOldestBuffer(3)
    before = dropped()

    sizes = [buffer.append(event) for event in events(5)]

    assert sizes == [1, 2, 3, 3, 3]
    assert dropped() - before == 2
    assert [event.event_id for event in buffer.take(10)] == ["e2", "e3", "e4"]
    assert len(buffer) == 0


def test_take_removes_the_oldest_first() -> None:
    buffer = DropOldestBuffer(10)
    for event in events(5):
        buffer.append(event)

    assert [event.event_id for event in buffer.take(2)] == ["e0", "e1"]
    assert buffer.popleft().event_id == "e2"
    assert len(buffer) == 2


def test_discarding_what_is_left_counts_it(caplog: pytest.LogCaptureFixture) -> None:
    buffer = DropOldestBuffer(10)
    for event in events(4):
        buffer.append(event)
    before = dropped()

    buffer.discard_all("at shutdown")

    assert dropped() - before == 4
    assert len(buffer) == 0
    assert "4 events dropped at shutdown" in caplog.text


def test_non_positive_capacity_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        DropOldestBuffer(0)
