"""Analytics events on the bus: one JSON shape both ways."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.analytics.wire import UndecodableEventError, decode_event, encode_event
from domain.analytics import AnalyticsEvent, EventType


def test_event_survives_the_round_trip() -> None:
    event = AnalyticsEvent(
        event_id="e1",
        timestamp=datetime(2026, 11, 28, 12, 0, 0, 123456, tzinfo=UTC),
        event_type=EventType.BILLING,
        user_id="u1",
        campaign_id="c1",
        offer_id="o1",
        bid_price=3.25,
        win=True,
        metadata={"seat": "s1", "n": [1, 2]},
        node_id="n1",
    )

    assert decode_event(encode_event(event)) == event


def test_naive_timestamp_travels_as_utc() -> None:
    event = AnalyticsEvent(event_id="e1", timestamp=datetime(2026, 1, 1), event_type=EventType.BID)

    decoded = decode_event(encode_event(event))

    assert decoded.timestamp == datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b'{"timestamp": "2026-01-01T00:00:00+00:00", "event_type": "bid"}',
        b'{"event_id": "e", "timestamp": "2026-01-01T00:00:00+00:00", "event_type": "nope"}',
        b'{"event_id": "e", "timestamp": "yesterday", "event_type": "bid"}',
        b'{"event_id": "e", "timestamp": "2026-01-01T00:00:00+00:00", "event_type": "bid",'
        b' "metadata": [1]}',
    ],
)
def test_body_that_is_not_an_event_is_refused(body: bytes) -> None:
    with pytest.raises(UndecodableEventError):
        decode_event(body)
