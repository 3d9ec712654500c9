"""Analytics events as JSON on the bus: the one encoder and decoder for JetStream messages.

A message carries one event as a JSON object, or several as JSON lines (one object per line;
orjson escapes newlines inside strings, so a line break only ever separates events). A single
event is the one-line case of the same format, so a sink reads messages of either kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from domain.analytics import AnalyticsEvent, EventType


class UndecodableEventError(ValueError):
    """A message body that is not an analytics event; redelivering it would never help."""


def encode_event(event: AnalyticsEvent) -> bytes:
    timestamp = event.timestamp if event.timestamp.tzinfo else event.timestamp.replace(tzinfo=UTC)
    return orjson.dumps(
        {
            "event_id": event.event_id,
            "timestamp": timestamp,
            "event_type": event.event_type.value,
            "user_id": event.user_id,
            "campaign_id": event.campaign_id,
            "offer_id": event.offer_id,
            "bid_price": event.bid_price,
            "win": event.win,
            "metadata": event.metadata,
            "node_id": event.node_id,
        },
        default=str,
    )


def decode_event(data: bytes) -> AnalyticsEvent:
    try:
        body: Any = orjson.loads(data)
        if not isinstance(body, dict):
            raise TypeError("not a JSON object")
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise TypeError("metadata is not a JSON object")
        return AnalyticsEvent(
            event_id=str(body["event_id"]),
            timestamp=datetime.fromisoformat(body["timestamp"]),
            event_type=EventType(body["event_type"]),
            user_id=str(body.get("user_id", "")),
            campaign_id=str(body.get("campaign_id", "")),
            offer_id=str(body.get("offer_id", "")),
            bid_price=float(body.get("bid_price", 0.0)),
            win=bool(body.get("win", False)),
            metadata=metadata,
            node_id=str(body.get("node_id", "")),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise UndecodableEventError(f"not an analytics event: {exc}") from exc


def encode_events(lines: Sequence[bytes]) -> bytes:
    """One message body from events already encoded with ``encode_event``."""
    return b"\n".join(lines)


def decode_events(data: bytes) -> tuple[list[AnalyticsEvent], list[UndecodableEventError]]:
    """The events of a message body, and what refused to decode, line by line.

    One bad line does not cost its neighbours: a sink older than its publishers may meet an
    event it cannot read (a new event type, say) inside a message of readable ones.
    """
    events: list[AnalyticsEvent] = []
    refused: list[UndecodableEventError] = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            events.append(decode_event(line))
        except UndecodableEventError as exc:
            refused.append(exc)
    if not events and not refused:
        refused.append(UndecodableEventError("an empty message"))
    return events, refused
