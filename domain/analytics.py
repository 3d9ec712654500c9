"""Analytics events: what the bid path, notices and (later) journeys record for reporting.

The fields are the seed's ``analytics_events`` columns plus ``event_id``, which makes delivery
idempotent end to end (JetStream dedup window, ReplacingMergeTree in ClickHouse).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class EventType(StrEnum):
    BID = "bid"
    NO_BID = "no_bid"
    WIN = "win"
    BILLING = "billing"
    LOSS = "loss"


@dataclass(frozen=True, slots=True)
class AnalyticsEvent:
    event_id: str
    timestamp: datetime
    event_type: EventType
    user_id: str = ""
    campaign_id: str = ""
    offer_id: str = ""
    bid_price: float = 0.0
    win: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    node_id: str = ""


class EventSink(Protocol):
    """Takes events without waiting: the bid path must never block on analytics."""

    def emit(self, event: AnalyticsEvent) -> None: ...
