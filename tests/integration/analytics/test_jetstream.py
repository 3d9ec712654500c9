"""Publisher → JetStream (real NATS server) → sink consumer → chdb, end to end."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NotFoundError

from adapters.analytics import (
    AnalyticsSinkConsumer,
    ChdbStore,
    JetStreamEventPublisher,
    ensure_analytics_stream,
)
from adapters.analytics.schema import DEFAULT_DATABASE, create_table_sql
from tests.integration.analytics.conftest import (
    EVENTS_TABLE,
    JetStreamNames,
    dropped,
    eventually,
    make_event,
    row_count,
)

N = 200


def consumer(
    js: JetStreamContext,
    store: ChdbStore,
    names: JetStreamNames,
    *,
    batch_size: int = 50,
    cls: type[AnalyticsSinkConsumer] = AnalyticsSinkConsumer,
) -> AnalyticsSinkConsumer:
    return cls(
        js,
        store,
        batch_size=batch_size,
        flush_interval_s=0.2,
        stream=names.stream,
        subject=names.subject,
        durable=names.durable,
        ack_wait_s=1.0,
    )


def publisher(
    js: JetStreamContext, names: JetStreamNames, **options: Any
) -> JetStreamEventPublisher:
    return JetStreamEventPublisher(js, stream=names.stream, subject=names.subject, **options)


@contextlib.asynccontextmanager
async def running(sink: AnalyticsSinkConsumer) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(sink.run(stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def acked_everything(js: JetStreamContext, names: JetStreamNames, count: int) -> bool:
    try:
        info = await js.consumer_info(names.stream, names.durable)
    except NotFoundError:  # the sink has not created its durable yet
        return False
    return bool(info.ack_floor.stream_seq >= count and info.num_ack_pending == 0)


async def test_each_published_event_lands_once_despite_duplicates(
    js: JetStreamContext, stream_names: JetStreamNames, chdb_store: ChdbStore
) -> None:
    events = [make_event(i) for i in range(N)]
    source = publisher(js, stream_names)
    await source.start()
    for event in events + events[:30]:  # the first 30 are published twice
        source.emit(event)
    await source.stop()

    stream = await js.stream_info(stream_names.stream)
    assert stream.state.messages == N  # Nats-Msg-Id dropped the repeats

    async with running(consumer(js, chdb_store, stream_names)):
        await eventually(lambda: row_count(chdb_store, final=True) == N)
        await eventually(lambda: acked_everything(js, stream_names, N))

    ids = chdb_store.query(f"SELECT uniqExact(event_id) FROM {EVENTS_TABLE} FINAL")
    assert ids == [(N,)]


class CrashAfterInsert(AnalyticsSinkConsumer):
    """Dies where a real process could: the rows are written, the acks never sent."""

    crashed: asyncio.Event

    async def _acknowledge(self, messages: Sequence[Msg]) -> None:
        self.crashed.set()
        await asyncio.Event().wait()


class RecordDeliveries(AnalyticsSinkConsumer):
    deliveries: list[int]

    async def _acknowledge(self, messages: Sequence[Msg]) -> None:
        self.deliveries.extend(message.metadata.num_delivered or 0 for message in messages)
        await super()._acknowledge(messages)


async def test_crash_between_insert_and_ack_redelivers_without_extra_rows(
    js: JetStreamContext,
    nats_url: str,
    stream_names: JetStreamNames,
    chdb_store: ChdbStore,
) -> None:
    events = [make_event(i) for i in range(N)]
    source = publisher(js, stream_names)
    await source.start()
    for event in events:
        source.emit(event)
    await source.stop()

    doomed_connection = await nats.connect(nats_url, connect_timeout=5)
    doomed = consumer(
        doomed_connection.jetstream(timeout=5),
        chdb_store,
        stream_names,
        batch_size=N,
        cls=CrashAfterInsert,
    )
    assert isinstance(doomed, CrashAfterInsert)
    doomed.crashed = asyncio.Event()
    task = asyncio.create_task(doomed.run(asyncio.Event()))
    await asyncio.wait_for(doomed.crashed.wait(), 30)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await doomed_connection.close()
    assert row_count(chdb_store, final=True) == N

    # A new sink on the same durable gets every unacked message again once ack_wait passes,
    # grouped differently, so only ReplacingMergeTree keeps the count right.
    survivor = consumer(js, chdb_store, stream_names, batch_size=7, cls=RecordDeliveries)
    assert isinstance(survivor, RecordDeliveries)
    survivor.deliveries = []
    async with running(survivor):
        await eventually(lambda: acked_everything(js, stream_names, N))

    assert len(survivor.deliveries) == N
    assert min(survivor.deliveries) >= 2  # every message came a second time
    assert row_count(chdb_store, final=True) == N


async def test_failed_insert_is_naked_and_written_after_recovery(
    js: JetStreamContext,
    stream_names: JetStreamNames,
    chdb_store: ChdbStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    chdb_store.query(f"DROP TABLE {EVENTS_TABLE}")
    source = publisher(js, stream_names)
    await source.start()
    for i in range(20):
        source.emit(make_event(i))
    await source.stop()

    async with running(consumer(js, chdb_store, stream_names)):
        with caplog.at_level(logging.WARNING, logger="adapters.analytics.jetstream"):
            await eventually(lambda: "naking" in caplog.text)
        chdb_store.query(create_table_sql(DEFAULT_DATABASE))
        await eventually(lambda: acked_everything(js, stream_names, 20))

    assert row_count(chdb_store, final=True) == 20


async def test_undecodable_message_is_terminated_and_the_rest_land(
    js: JetStreamContext, stream_names: JetStreamNames, chdb_store: ChdbStore
) -> None:
    await ensure_analytics_stream(js, stream=stream_names.stream, subject=stream_names.subject)
    await js.publish(stream_names.subject, b"{not json", timeout=5)
    await js.publish(stream_names.subject, b'{"event_id": "x", "event_type": "nope"}', timeout=5)
    source = publisher(js, stream_names)
    await source.start()
    for i in range(10):
        source.emit(make_event(i))
    await source.stop()

    async with running(consumer(js, chdb_store, stream_names)):
        await eventually(lambda: acked_everything(js, stream_names, 12))

    assert row_count(chdb_store, final=True) == 10


async def test_publisher_drops_and_counts_what_jetstream_refuses(
    js: JetStreamContext, stream_names: JetStreamNames
) -> None:
    source = publisher(js, stream_names, attempts=2, retry_initial_s=0.01, publish_timeout_s=1.0)
    await source.start()
    await js.delete_stream(stream_names.stream)  # nothing takes the subject any more
    before = dropped()

    for i in range(3):
        source.emit(make_event(i))
    await eventually(lambda: dropped() - before == 3)

    await source.stop()


async def test_ensure_stream_brings_an_existing_stream_to_the_configuration(
    js: JetStreamContext, stream_names: JetStreamNames
) -> None:
    await js.add_stream(
        StreamConfig(
            name=stream_names.stream,
            subjects=[stream_names.subject],
            storage=StorageType.FILE,
            max_age=60.0,
        )
    )

    await ensure_analytics_stream(js, stream=stream_names.stream, subject=stream_names.subject)
    await ensure_analytics_stream(js, stream=stream_names.stream, subject=stream_names.subject)

    config = (await js.stream_info(stream_names.stream)).config
    assert config.max_age == 7 * 24 * 3600
    assert config.duplicate_window == 120
    assert config.storage == StorageType.FILE
