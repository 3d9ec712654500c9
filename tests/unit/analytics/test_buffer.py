"""The bounded queue between the bid path and the analytics writers."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from adapters.analytics.buffer import ColumnBuffer


def dropped() -> float:
    return REGISTRY.get_sample_value("campaign_analytics_events_dropped_total") or 0.0


def test_rows_come_out_oldest_first_as_columns() -> None:
    buffer = ColumnBuffer(capacity=10, width=2)
    for i in range(5):
        buffer.append((i, f"id-{i}"))

    assert buffer.take(3) == [[0, 1, 2], ["id-0", "id-1", "id-2"]]
    assert len(buffer) == 2
    assert buffer.take(10) == [[3, 4], ["id-3", "id-4"]]
    assert buffer.take(1) == [[], []]


def test_popleft_takes_the_oldest_row_whole() -> None:
    buffer = ColumnBuffer(capacity=10, width=2)
    for i in range(3):
        buffer.append((i, f"id-{i}"))

    assert buffer.popleft() == (0, "id-0")
    assert buffer.take(5) == [[1, 2], ["id-1", "id-2"]]


def test_a_full_buffer_drops_the_oldest_row_and_counts_it() -> None:
    buffer = ColumnBuffer(capacity=3, width=2)
    before = dropped()

    sizes = [buffer.append((i, f"id-{i}")) for i in range(5)]

    assert sizes == [1, 2, 3, 3, 3]
    assert dropped() - before == 2
    assert buffer.take(5) == [[2, 3, 4], ["id-2", "id-3", "id-4"]]


def test_discarding_what_is_left_counts_it(caplog: pytest.LogCaptureFixture) -> None:
    buffer = ColumnBuffer(capacity=10, width=1)
    for name in "abcd":
        buffer.append((name,))
    before = dropped()

    buffer.discard_all("at shutdown")

    assert (len(buffer), dropped() - before) == (0, 4)
    assert "4 events dropped at shutdown" in caplog.text


def test_a_row_of_the_wrong_width_is_refused() -> None:
    buffer = ColumnBuffer(capacity=5, width=2)

    with pytest.raises(ValueError, match="a row of 1 values for 2 columns"):
        buffer.append(("only one",))
    assert buffer.take(5) == [[], []]


@pytest.mark.parametrize(("capacity", "width"), [(0, 1), (1, 0)])
def test_non_positive_sizes_are_refused(capacity: int, width: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        ColumnBuffer(capacity, width)
