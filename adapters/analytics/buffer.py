"""The bounded in-memory queues the analytics sinks put between the bid path and their writer."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from adapters import metrics

logger = logging.getLogger(__name__)

Event = TypeVar("Event")
Row = TypeVar("Row")


def encoded_or_dropped(encode: Callable[[Event], Row], event: Event) -> Row | None:
    """``encode(event)``, for a sink's ``emit``; None, with the event counted as dropped and
    logged, when JSON cannot hold it (a non-string metadata key, say). Refused on emit, alone:
    found later, it would cost the batch or message it went into."""
    try:
        return encode(event)
    except TypeError:
        metrics.analytics_events_dropped.inc()
        logger.exception("analytics: dropped an event JSON cannot hold: %r", event)
        return None


class ColumnBuffer:
    """FIFO of rows of ``width`` values holding at most ``capacity``; when full, the oldest row
    makes room.

    During an outage the freshest events are the ones worth keeping, and the bid path must
    never wait, so ``append`` never blocks and never refuses. Every row lost here, on append
    or at shutdown, is counted in ``campaign_analytics_events_dropped``.

    Rows are kept a column each. Rows waiting seconds for their writer are what the garbage
    collector's young passes walk, and a row object (an event, or even a tuple) each made
    those passes take ~4 ms under load in `up`. Column deques of strings, bytes and numbers
    hold nothing it tracks, so waiting rows cost the collector nothing.
    """

    __slots__ = ("_capacity", "_columns")

    def __init__(self, capacity: int, width: int) -> None:
        if capacity <= 0 or width <= 0:
            raise ValueError("capacity and width must be positive")
        self._capacity = capacity
        self._columns: tuple[deque[Any], ...] = tuple(deque() for _ in range(width))

    def __len__(self) -> int:
        return len(self._columns[0])

    def append(self, row: Sequence[Any]) -> int:
        """Queues ``row`` and returns how many rows are now waiting."""
        columns = self._columns
        if len(row) != len(columns):  # checked first: a half-appended row would skew columns
            raise ValueError(f"a row of {len(row)} values for {len(columns)} columns")
        if len(columns[0]) >= self._capacity:
            for column in columns:
                column.popleft()
            metrics.analytics_events_dropped.inc()
        for column, value in zip(columns, row, strict=False):
            column.append(value)
        return len(columns[0])

    def oldest(self, column: int) -> Any:
        """The oldest row's value in ``column``, left in the buffer."""
        return self._columns[column][0]

    def popleft(self) -> tuple[Any, ...]:
        """The oldest row, removed from the buffer."""
        return tuple(column.popleft() for column in self._columns)

    def take(self, count: int) -> list[list[Any]]:
        """Up to ``count`` of the oldest rows, removed from the buffer, as columns."""
        taken = min(count, len(self))
        return [[column.popleft() for _ in range(taken)] for column in self._columns]

    def discard_all(self, why: str) -> None:
        """Empties the buffer, counting and logging what is lost."""
        _count_discarded(len(self), why)
        for column in self._columns:
            column.clear()


def _count_discarded(count: int, why: str) -> None:
    if count:
        metrics.analytics_events_dropped.inc(count)
        logger.error("analytics: %d events dropped %s", count, why)
