"""Fixtures for analytics: a fresh chdb directory per test, JetStream names per test."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from prometheus_client import REGISTRY

from adapters.analytics import ChdbStore
from adapters.analytics.schema import COLUMNS, INSERT_FORMAT, TABLE, EncodedBatch, encode
from domain.analytics import AnalyticsEvent, EventType

EVENTS_TABLE = "campaign_express.analytics_events"


def legacy_table_sql(database: str, table: str = TABLE) -> str:
    """The table as the first release created it: rows collapsed by event id on merge."""
    return f"""
CREATE TABLE `{database}`.`{table}`
(
    timestamp   DateTime64(3, 'UTC'),
    event_type  LowCardinality(String),
    user_id     String,
    campaign_id String,
    offer_id    String,
    bid_price   Float64,
    win         Bool,
    metadata    String,
    node_id     LowCardinality(String),
    event_id    String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (event_type, timestamp, user_id, event_id)
SETTINGS non_replicated_deduplication_window = 1000
"""


def insert_into(session: Any, table: str, events: list[AnalyticsEvent]) -> None:
    """Rows straight into ``table`` through a raw chdb session, bypassing the store."""
    with session.send_insert(f"INSERT INTO {table} ({', '.join(COLUMNS)})", INSERT_FORMAT) as w:
        w.append(encode(events).payload)
        w.finish()


def make_event(index: int = 0, **overrides: Any) -> AnalyticsEvent:
    fields: dict[str, Any] = {
        "event_id": uuid.uuid4().hex,
        "timestamp": datetime(2026, 11, 28, 12, 0, tzinfo=UTC) + timedelta(milliseconds=index),
        "event_type": EventType.BID,
        "user_id": f"user-{index}",
        "campaign_id": "campaign-1",
        "offer_id": f"offer-{index % 16}",
        "bid_price": 1.5,
        "win": False,
        "metadata": {"imp": str(index)},
        "node_id": "node-a",
    }
    fields.update(overrides)
    return AnalyticsEvent(**fields)


def counter(name: str) -> float:
    return REGISTRY.get_sample_value(f"{name}_total") or 0.0


def dropped() -> float:
    return counter("campaign_analytics_events_dropped")


def batched() -> float:
    return counter("campaign_analytics_events_batched")


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]], *, within_s: float = 20.0
) -> None:
    """Polls until the background work under test has happened (a deadline, not a timing check)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        outcome = condition()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within_s} s")
        await asyncio.sleep(0.02)


def row_count(store: Any, *, table: str = EVENTS_TABLE) -> int:
    # A plain count: one row per event is the writers' promise, no FINAL or merge behind it.
    rows = store.query(f"SELECT count() FROM {table}")
    return int(rows[0][0])


@pytest.fixture
def chdb_path(tmp_path: Path) -> Path:
    return tmp_path / "clickhouse"


@pytest.fixture
def chdb_store(chdb_path: Path) -> Iterator[ChdbStore]:
    # chdb allows one open data directory per process: closing it lets the next test open its own.
    store = ChdbStore(chdb_path)
    yield store
    store.close()


class RecordingStore(ChdbStore):
    """The real store, remembering how many events each insert carried (both writers insert
    through ``insert_encoded``); ``hold`` keeps an insert in flight (on its worker thread)
    until released."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.inserts: list[int] = []
        self.hold = threading.Event()
        self.hold.set()
        self.inserting = threading.Event()

    def insert_encoded(self, batch: EncodedBatch) -> None:
        self.inserting.set()
        self.hold.wait()
        super().insert_encoded(batch)
        self.inserts.append(batch.count)


@pytest.fixture
def recording_store(chdb_path: Path) -> Iterator[RecordingStore]:
    store = RecordingStore(chdb_path)
    yield store
    store.hold.set()  # a test that failed while holding an insert must not hang the teardown
    store.close()


@dataclass(frozen=True)
class JetStreamNames:
    stream: str
    subject: str
    durable: str


@pytest.fixture
async def nats_client(nats_url: str) -> AsyncIterator[NatsClient]:
    client = await nats.connect(nats_url, connect_timeout=5)
    yield client
    await client.drain()


@pytest.fixture
def js(nats_client: NatsClient) -> JetStreamContext:
    return nats_client.jetstream(timeout=5)


@pytest.fixture
async def stream_names(js: JetStreamContext) -> AsyncIterator[JetStreamNames]:
    """Names of this test's own stream, so no test sees another's messages."""
    tag = uuid.uuid4().hex[:12]
    names = JetStreamNames(
        stream=f"analytics-test-{tag}",
        subject=f"analytics-test.{tag}.events",
        durable=f"analytics-sink-test-{tag}",
    )
    yield names
    with contextlib.suppress(NotFoundError):
        await js.delete_stream(names.stream)
