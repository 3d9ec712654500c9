"""The bounded in-memory queue both analytics sinks put between the bid path and their writer."""

from __future__ import annotations

import logging
from collections import deque

from adapters import metrics
from domain.analytics import AnalyticsEvent

logger = logging.getLogger(__name__)


class DropOldestBuffer:
    """FIFO of events holding at most ``capacity``; when full, the oldest makes room.

    During an outage the freshest events are the ones worth keeping, and the bid path must
    never wait, so ``append`` never blocks and never refuses. Every event lost here, on append
    or at shutdown, is counted in ``campaign_analytics_events_dropped``.
    """

    __slots__ = ("_capacity", "_events")

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._events: deque[AnalyticsEvent] = deque()

    def __len__(self) -> int:
        return len(self._events)

    def append(self, event: AnalyticsEvent) -> int:
        """Queues ``event`` and returns how many events are now waiting."""
        events = self._events
        if len(events) >= self._capacity:
            events.popleft()
            metrics.analytics_events_dropped.inc()
        events.append(event)
        return len(events)

    def popleft(self) -> AnalyticsEvent:
        return self._events.popleft()

    def take(self, count: int) -> list[AnalyticsEvent]:
        """Up to ``count`` of the oldest events, removed from the buffer."""
        events = self._events
        return [events.popleft() for _ in range(min(count, len(events)))]

    def discard_all(self, why: str) -> None:
        """Empties the buffer, counting and logging what is lost."""
        if self._events:
            metrics.analytics_events_dropped.inc(len(self._events))
            logger.error("analytics: %d events dropped %s", len(self._events), why)
            self._events.clear()
