"""The bounded queues between the bid path and the analytics writers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from adapters.analytics.buffer import ColumnBuffer, DropOldestBuffer
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


# --- ColumnBuffer: the in-process batcher's rows, a column each ---------------------------


def test_rows_come_out_oldest_first_as_columns() -> None:
    buffer = ColumnBuffer(capacity=10, width=2)
    for i in range(5):
        buffer.append((i, f"id-{i}"))

    assert buffer.take(3) == [[0, 1, 2], ["id-0", "id-1", "id-2"]]
    assert len(buffer) == 2
    assert buffer.take(10) == [[3, 4], ["id-3", "id-4"]]
    assert buffer.take(1) == [[], []]


def test_a_full_column_buffer_drops_the_oldest_row_and_counts_it() -> None:
    buffer = ColumnBuffer(capacity=2, width=2)
    before = dropped()

    for i in range(3):
        assert buffer.append((i, f"id-{i}")) == min(i + 1, 2)

    assert dropped() - before == 1
    assert buffer.take(2) == [[1, 2], ["id-1", "id-2"]]


def test_discarding_rows_counts_what_was_waiting() -> None:
    buffer = ColumnBuffer(capacity=5, width=1)
    buffer.append(("a",))
    buffer.append(("b",))
    before = dropped()

    buffer.discard_all("in a test")

    assert (len(buffer), dropped() - before) == (0, 2)


def test_a_row_of_the_wrong_width_is_refused() -> None:
    buffer = ColumnBuffer(capacity=5, width=2)

    with pytest.raises(ValueError, match="a row of 1 values for 2 columns"):
        buffer.append(("only one",))
    assert buffer.take(5) == [[], []]
