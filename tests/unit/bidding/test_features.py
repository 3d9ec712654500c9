"""The context block of CoLaNet's input, and the key the pipeline caches it under."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from domain.bidding.features import context_inputs, context_vector_of
from domain.openrtb import BidRequest, bid_request_from

# A Monday, 23:30:15 UTC.
NOW = datetime(2026, 11, 30, 23, 30, 15, tzinfo=UTC)


def request(**device: object) -> BidRequest:
    return bid_request_from(
        {
            "id": "r1",
            "imp": [{"id": "1", "banner": {"w": 300, "h": 250}}],
            "site": {"id": "s1"},
            "device": {"devicetype": 4, **device},
            "user": {"id": "u1"},
        }
    )


def test_context_reads_the_device_placement_and_local_time() -> None:
    bid_request = request(geo={"utcoffset": 60, "country": "USA"})
    vector = context_vector_of(context_inputs(bid_request, bid_request.imp[0], 1.0, NOW))
    local_hours = 0.5  # 00:30 on Tuesday, an hour ahead of UTC
    assert vector[4] == 1.0  # device type
    assert math.isclose(vector[9], (math.sin(2 * math.pi * local_hours / 24) + 1) / 2, rel_tol=1e-6)
    assert vector[11:18].tolist() == [0, 1, 0, 0, 0, 0, 0]  # Tuesday
    assert vector[18:21].tolist() == [1, 0, 0]  # site, not app or dooh
    assert vector[21:25].tolist() == [1, 0, 0, 0]  # banner only
    assert vector[26:28].tolist() == [1, 1]  # a user id; no regulation against profiles
    assert vector[28:32].sum() == 1.0  # one country slot


def test_the_key_changes_with_the_minute_not_within_it() -> None:
    bid_request = request()
    imp = bid_request.imp[0]
    key = context_inputs(bid_request, imp, 1.0, NOW)
    assert context_inputs(bid_request, imp, 1.0, NOW + timedelta(seconds=30)) == key
    assert context_inputs(bid_request, imp, 1.0, NOW + timedelta(minutes=1)) != key
    assert context_inputs(bid_request, imp, 2.0, NOW) != key


def test_shared_context_vectors_cannot_be_written() -> None:
    bid_request = request()
    vector = context_vector_of(context_inputs(bid_request, bid_request.imp[0], 1.0, NOW))
    assert not vector.flags.writeable
