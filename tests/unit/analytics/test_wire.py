"""Analytics events on the bus: one JSON shape both ways."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.analytics.wire import (
    UndecodableEventError,
    decode_event,
    decode_events,
    encode_event,
    encode_events,
)
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


def several(count: int) -> list[AnalyticsEvent]:
    return [
        AnalyticsEvent(
            event_id=f"e{i}",
            timestamp=datetime(2026, 11, 28, 12, 0, i, tzinfo=UTC),
            event_type=EventType.BID,
            metadata={"note": "line one\nline two"},
        )
        for i in range(count)
    ]


def test_several_events_share_one_message_in_order() -> None:
    events = several(3)

    body = encode_events([encode_event(event) for event in events])

    # Newlines inside values are escaped: only the separators are real line breaks.
    assert body.count(b"\n") == 2
    assert decode_events(body) == (events, [])


def test_single_event_message_of_an_older_publisher_is_read() -> None:
    [event] = several(1)

    assert decode_events(encode_event(event)) == ([event], [])


def test_bad_line_is_refused_without_costing_its_neighbours() -> None:
    first, second = several(2)
    body = encode_events(
        [
            encode_event(first),
            b'{"event_id": "x", "timestamp": "2026-01-01T00:00:00+00:00", "event_type": "new"}',
            encode_event(second),
        ]
    )

    events, refused = decode_events(body)

    assert events == [first, second]
    assert len(refused) == 1
    assert "not an analytics event" in str(refused[0])


@pytest.mark.parametrize("body", [b"", b"\n\n"])
def test_empty_message_is_refused(body: bytes) -> None:
    events, refused = decode_events(body)

    assert events == []
    assert len(refused) == 1
