"""Collector pauses are timed into a histogram operators can read next to bid latency."""

from __future__ import annotations

import gc

from prometheus_client import REGISTRY

from adapters import metrics


def full_passes() -> float:
    value = REGISTRY.get_sample_value("campaign_gc_pause_seconds_count", {"generation": "2"})
    return value or 0.0


def test_every_collector_pass_is_timed_once() -> None:
    metrics.observe_gc_pauses()
    metrics.observe_gc_pauses()  # a second call must not time each pass twice
    before = full_passes()
    gc.collect()
    assert full_passes() == before + 1
