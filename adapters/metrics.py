"""Prometheus metrics, named as the seed names them. One registry per process.

The bid path, the fleet and the analytics sink all record here; ``/metrics`` on
``CE_METRICS_PORT`` serves them.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# `*_created` series double the output and no dashboard or alert reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Bids live in the low milliseconds: the default buckets would put them all in the first one.
_BID_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25)
_INFERENCE_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2)

bid_requests = Counter(
    "campaign_bid_requests",
    "OpenRTB bid requests by outcome (bid, no_bid, invalid, timeout, error).",
    ["outcome"],
)
bid_latency = Histogram(
    "campaign_bid_latency_seconds",
    "Time from receiving a bid request to the response being ready.",
    ["transport"],
    buckets=_BID_BUCKETS,
)
inference_duration = Histogram(
    "campaign_inference_duration_seconds",
    "CoLaNet forward pass for one batch.",
    ["backend"],
    buckets=_INFERENCE_BUCKETS,
)
inference_batch_rows = Histogram(
    "campaign_inference_batch_rows",
    "Feature rows per CoLaNet batch.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
cache_hits = Counter("campaign_cache_hits", "Profile cache hits by tier.", ["tier"])
cache_misses = Counter("campaign_cache_misses", "Profile cache misses by tier.", ["tier"])
nats_messages_processed = Counter(
    "campaign_nats_messages_processed",
    "NATS messages handled, by subject.",
    ["subject"],
)
analytics_events_batched = Counter(
    "campaign_analytics_events_batched",
    "Analytics events written to ClickHouse in batches.",
)
analytics_events_dropped = Counter(
    "campaign_analytics_events_dropped",
    "Analytics events dropped because the queue was full (the bid path never waits).",
)
active_campaigns = Gauge("campaign_active_campaigns", "Biddable campaigns in this process.")
agent_queue_depth = Gauge(
    "campaign_agent_queue_depth", "Bid requests waiting for an agent in this bidder process."
)
notices = Counter(
    "campaign_notices", "Win, billing and loss notices by kind and result.", ["kind", "result"]
)
# At zero from the start: increase() cannot see a series that first appears at 1, and the
# CampaignBudgetExceeded alert must fire on the first such notice.
for _kind in ("win", "billing"):
    notices.labels(_kind, "over_budget")
dependency_errors = Counter(
    "campaign_dependency_errors",
    "Calls to a dependency that failed or were refused by its circuit breaker.",
    ["dependency"],
)

gc_pause = Histogram(
    "campaign_gc_pause_seconds",
    "Cyclic garbage collector passes by generation; each stops the event loop, bids included.",
    ["generation"],
    buckets=(1e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1),
)
_gc_pause_by_generation = [gc_pause.labels(str(generation)) for generation in range(3)]
_gc_started = 0.0


def _time_gc_pass(phase: str, info: dict[str, Any]) -> None:
    global _gc_started
    if phase == "start":
        _gc_started = time.perf_counter()
    else:
        _gc_pause_by_generation[info["generation"]].observe(time.perf_counter() - _gc_started)


def observe_gc_pauses() -> None:
    """Time every collector pass into ``campaign_gc_pause_seconds`` (once per process)."""
    if _time_gc_pass not in gc.callbacks:
        gc.callbacks.append(_time_gc_pass)
