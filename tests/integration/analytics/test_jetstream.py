"""Publisher → JetStream (real NATS server) → sink consumer → chdb, end to end."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NotFoundError

from adapters.analytics import (
    AnalyticsSinkConsumer,
    AnalyticsStore,
    ChdbStore,
    ClickHouseHttpStore,
    JetStreamEventPublisher,
    encode_event,
    encode_events,
    ensure_analytics_stream,
)
from adapters.analytics.schema import DEFAULT_DATABASE, create_table_sql
from domain.analytics import AnalyticsEvent
from tests.integration.analytics.conftest import (
    EVENTS_TABLE,
    JetStreamNames,
    RecordingStore,
    dropped,
    eventually,
    make_event,
    row_count,
)
from tests.support.chdb_http import ChdbHttpFront

N = 200


def consumer(
    js: JetStreamContext,
    store: AnalyticsStore,
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


async def test_events_travel_many_to_a_message_and_land_once(
    js: JetStreamContext, stream_names: JetStreamNames, chdb_store: ChdbStore
) -> None:
    events = [make_event(i) for i in range(N)]
    source = publisher(js, stream_names, events_per_message=50)
    await source.start()
    for event in events:  # no await in between: the publisher finds all of them waiting
        source.emit(event)
    await source.stop()

    stream = await js.stream_info(stream_names.stream)
    assert stream.state.messages == N // 50

    async with running(consumer(js, chdb_store, stream_names)):
        await eventually(lambda: acked_everything(js, stream_names, N // 50))

    assert row_count(chdb_store) == N
    ids = chdb_store.query(f"SELECT event_id FROM {EVENTS_TABLE} ORDER BY timestamp")
    assert [row[0] for row in ids] == [event.event_id for event in events]


async def test_messages_stay_within_their_size_and_a_bigger_event_is_dropped_alone(
    js: JetStreamContext, stream_names: JetStreamNames
) -> None:
    at = datetime(2026, 11, 28, 12, 0, 0, 1_000, tzinfo=UTC)  # one length for every line
    events = [make_event(i, timestamp=at) for i in range(5)]
    line = len(encode_event(events[0]))
    assert {len(encode_event(event)) for event in events} == {line}
    two_lines = 2 * line + 1  # two events and the newline between them
    source = publisher(js, stream_names, max_message_bytes=two_lines)
    await source.start()
    before = dropped()
    source.emit(make_event(9, metadata={"note": "x" * two_lines}))  # alone, past the limit
    for event in events:
        source.emit(event)
    await source.stop()

    assert dropped() - before == 1
    sizes = []
    for sequence in range(1, 4):
        message = await js.get_msg(stream_names.stream, sequence)
        sizes.append(len(message.data or b""))
    assert sizes == [two_lines, two_lines, line]
    assert (await js.stream_info(stream_names.stream)).state.messages == 3


async def test_an_event_json_cannot_hold_is_dropped_alone(
    js: JetStreamContext, stream_names: JetStreamNames
) -> None:
    source = publisher(js, stream_names, events_per_message=3)
    await source.start()
    before = dropped()
    source.emit(make_event(0))
    source.emit(make_event(1, metadata={1: "a key JSON cannot hold"}))
    source.emit(make_event(2))
    source.emit(make_event(3))
    await source.stop()

    assert dropped() - before == 1
    stream = await js.stream_info(stream_names.stream)
    assert stream.state.messages == 1  # the other three, in one message: the publisher went on


async def test_retried_publishes_are_dropped_by_the_stream(
    js: JetStreamContext, stream_names: JetStreamNames, chdb_store: ChdbStore
) -> None:
    # Acks cannot come back within a microsecond, so every message is sent attempts times:
    # each copy after the first carries the same Nats-Msg-Id and the stream drops it.
    source = publisher(
        js,
        stream_names,
        events_per_message=10,
        attempts=3,
        publish_timeout_s=1e-6,
        retry_initial_s=0.01,
    )
    await source.start()
    for i in range(30):
        source.emit(make_event(i))
    await source.stop()

    assert (await js.stream_info(stream_names.stream)).state.messages == 3
    async with running(consumer(js, chdb_store, stream_names)):
        await eventually(lambda: acked_everything(js, stream_names, 3))
    assert row_count(chdb_store) == 30


async def test_single_event_messages_of_older_publishers_are_read(
    js: JetStreamContext, stream_names: JetStreamNames, chdb_store: ChdbStore
) -> None:
    await ensure_analytics_stream(js, stream=stream_names.stream, subject=stream_names.subject)
    singles = [make_event(i) for i in range(5)]
    for event in singles:  # what the first release published: one event, named by its id
        await js.publish(
            stream_names.subject,
            encode_event(event),
            timeout=5,
            headers={"Nats-Msg-Id": event.event_id},
        )
    source = publisher(js, stream_names)
    await source.start()
    for i in range(5, 25):
        source.emit(make_event(i))
    await source.stop()

    async with running(consumer(js, chdb_store, stream_names, batch_size=500)):
        await eventually(lambda: acked_everything(js, stream_names, 6))

    assert row_count(chdb_store) == 25


async def test_event_in_two_messages_of_one_batch_is_written_once(
    js: JetStreamContext, stream_names: JetStreamNames, chdb_store: ChdbStore
) -> None:
    await ensure_analytics_stream(js, stream=stream_names.stream, subject=stream_names.subject)
    events = [make_event(i) for i in range(4)]
    for group, name in ((events[:3], "first"), (events[1:], "second")):
        await js.publish(
            stream_names.subject,
            encode_events([encode_event(event) for event in group]),
            timeout=5,
            headers={"Nats-Msg-Id": name},
        )

    async with running(consumer(js, chdb_store, stream_names, batch_size=500)):
        await eventually(lambda: acked_everything(js, stream_names, 2))

    assert row_count(chdb_store) == 4


async def held_batches(
    js: JetStreamContext,
    store: RecordingStore,
    names: JetStreamNames,
    messages: Sequence[Sequence[AnalyticsEvent]],
    *,
    batch_size: int,
    max_insert_rows: int,
) -> list[int]:
    """The inserts a sink holding full batches 1 s apart makes of ``messages``, a backlog
    published before it starts (the timer, 60 s, stays out of it)."""
    sink = AnalyticsSinkConsumer(
        js,
        store,
        batch_size=batch_size,
        flush_interval_s=60,
        min_insert_interval_s=1.0,
        max_insert_rows=max_insert_rows,
        stream=names.stream,
        subject=names.subject,
        durable=names.durable,
        ack_wait_s=90,
    )
    await ensure_analytics_stream(js, stream=names.stream, subject=names.subject)
    for events in messages:
        await js.publish(names.subject, encode_events([encode_event(e) for e in events]))
    async with running(sink):
        await eventually(lambda: acked_everything(js, names, len(messages)))
    assert row_count(store) == sum(len(events) for events in messages)
    return store.inserts


async def test_full_batches_wait_out_the_insert_interval_and_grow_meanwhile(
    js: JetStreamContext, stream_names: JetStreamNames, recording_store: RecordingStore
) -> None:
    one_event_each = [[make_event(i)] for i in range(30)]

    inserts = await held_batches(
        js, recording_store, stream_names, one_event_each, batch_size=10, max_insert_rows=100
    )

    # The first full batch goes at once; the next 20 arrive well inside the interval and go
    # as one insert after it, not as two more of 10.
    assert inserts == [10, 20]


async def test_a_held_batch_passes_its_row_limit_by_one_message_at_most(
    js: JetStreamContext, stream_names: JetStreamNames, recording_store: RecordingStore
) -> None:
    full_messages = [[make_event(100 * m + i) for i in range(100)] for m in range(8)]

    inserts = await held_batches(
        js, recording_store, stream_names, full_messages, batch_size=100, max_insert_rows=250
    )

    # Sized by the messages it sees, not by a guess: the first batch goes at once and held
    # ones stop within a message of 250.
    assert inserts == [100, 300, 300, 100]


def test_the_sink_refuses_an_ack_wait_its_batches_could_outlast(
    js: JetStreamContext, chdb_store: ChdbStore
) -> None:
    with pytest.raises(ValueError, match="ack_wait_s"):
        AnalyticsSinkConsumer(
            js, chdb_store, batch_size=10, flush_interval_s=1, min_insert_interval_s=30
        )
    with pytest.raises(ValueError, match="max_insert_rows"):
        AnalyticsSinkConsumer(js, chdb_store, batch_size=10, flush_interval_s=1, max_insert_rows=5)


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


async def crash_after_insert(
    nats_url: str, store: AnalyticsStore, names: JetStreamNames, *, batch_size: int
) -> None:
    """Runs a sink until it has written its first batch, then kills it before its acks."""
    doomed_connection = await nats.connect(nats_url, connect_timeout=5)
    doomed = consumer(
        doomed_connection.jetstream(timeout=5),
        store,
        names,
        batch_size=batch_size,
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


async def test_restarted_sink_does_not_write_again_what_its_predecessor_wrote(
    js: JetStreamContext,
    nats_url: str,
    stream_names: JetStreamNames,
    chdb_store: ChdbStore,
) -> None:
    events = [make_event(i) for i in range(N)]
    source = publisher(js, stream_names, events_per_message=10)
    await source.start()
    for event in events:
        source.emit(event)
    await source.stop()
    await crash_after_insert(nats_url, chdb_store, stream_names, batch_size=N)
    assert row_count(chdb_store) == N

    # A new sink on the same durable gets every unacked message again once ack_wait passes,
    # grouped into other batches, so neither the insert token nor memory would catch them:
    # the lookup of redelivered events in the store does.
    survivor = consumer(js, chdb_store, stream_names, batch_size=25, cls=RecordDeliveries)
    assert isinstance(survivor, RecordDeliveries)
    survivor.deliveries = []
    async with running(survivor):
        await eventually(lambda: acked_everything(js, stream_names, N // 10))

    assert len(survivor.deliveries) == N // 10
    assert min(survivor.deliveries) >= 2  # every message came a second time
    assert row_count(chdb_store) == N


async def test_insert_that_timed_out_but_landed_is_not_written_twice(
    js: JetStreamContext,
    stream_names: JetStreamNames,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = publisher(js, stream_names, events_per_message=10)
    await source.start()
    for i in range(40):
        source.emit(make_event(i))
    await source.stop()
    with ChdbHttpFront(tmp_path / "chdb-http") as front:
        store = ClickHouseHttpStore(front.url, send_receive_timeout_s=1.0)
        try:
            front.pause()  # the insert reaches the server, which answers only after resuming
            try:
                async with running(consumer(js, store, stream_names, batch_size=40)):
                    with caplog.at_level(logging.WARNING, logger="adapters.analytics.jetstream"):
                        await eventually(lambda: "naking" in caplog.text)
            finally:
                front.resume()
            # The server ran the insert it held; the sink believed it failed and naked.
            await eventually(lambda: row_count(store) == 40)

            async with running(consumer(js, store, stream_names, batch_size=15)):
                await eventually(lambda: acked_everything(js, stream_names, 4))

            assert row_count(store) == 40
        finally:
            store.close()


async def test_failed_insert_is_naked_and_written_after_recovery(
    js: JetStreamContext,
    stream_names: JetStreamNames,
    chdb_store: ChdbStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    chdb_store.query(f"DROP TABLE {EVENTS_TABLE}")
    source = publisher(js, stream_names, events_per_message=5)
    await source.start()
    for i in range(20):
        source.emit(make_event(i))
    await source.stop()

    async with running(consumer(js, chdb_store, stream_names)):
        with caplog.at_level(logging.WARNING, logger="adapters.analytics.jetstream"):
            await eventually(lambda: "naking" in caplog.text)
        chdb_store.query(create_table_sql(DEFAULT_DATABASE))
        await eventually(lambda: acked_everything(js, stream_names, 4))

    assert row_count(chdb_store) == 20


async def test_undecodable_message_is_terminated_and_the_rest_land(
    js: JetStreamContext, stream_names: JetStreamNames, chdb_store: ChdbStore
) -> None:
    await ensure_analytics_stream(js, stream=stream_names.stream, subject=stream_names.subject)
    await js.publish(stream_names.subject, b"{not json", timeout=5)
    await js.publish(stream_names.subject, b'{"event_id": "x", "event_type": "nope"}', timeout=5)
    # One unreadable line among readable ones costs that line only.
    mixed = [encode_event(make_event(10)), b"{not json", encode_event(make_event(11))]
    await js.publish(stream_names.subject, encode_events(mixed), timeout=5)
    source = publisher(js, stream_names)
    await source.start()
    for i in range(10):
        source.emit(make_event(i))
    await source.stop()

    async with running(consumer(js, chdb_store, stream_names)):
        await eventually(lambda: acked_everything(js, stream_names, 4))

    assert row_count(chdb_store) == 12


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


async def test_cancelled_drain_counts_only_what_was_not_acknowledged(
    js: JetStreamContext, stream_names: JetStreamNames, caplog: pytest.LogCaptureFixture
) -> None:
    # Two messages go out together; the stream takes one and refuses the other (too big for
    # it), whose retry is still waiting when the drain deadline cancels the publisher.
    source = publisher(
        js, stream_names, events_per_message=1, retry_initial_s=30.0, drain_timeout_s=0.3
    )
    await source.start()
    config = (await js.stream_info(stream_names.stream)).config
    small, big = make_event(0), make_event(1, metadata={"note": "x" * 2_000})
    config.max_msg_size = len(encode_event(small)) + 100
    await js.update_stream(config)
    before = dropped()

    source.emit(small)
    source.emit(big)
    await eventually(lambda: "1 of 2 publishes failed (attempt 1)" in caplog.text)
    await source.stop()  # the retry sleeps meanwhile
    assert await stream_holds(js, stream_names, 1)

    assert dropped() - before == 1  # the refused one, not the one the stream acknowledged


async def stream_holds(js: JetStreamContext, names: JetStreamNames, count: int) -> bool:
    return bool((await js.stream_info(names.stream)).state.messages == count)


async def test_stop_cancelled_still_counts_what_never_left(
    js: JetStreamContext, stream_names: JetStreamNames
) -> None:
    # One message in flight at a time, and its publish failing: two events never leave.
    source = publisher(
        js, stream_names, events_per_message=1, messages_in_flight=1, retry_initial_s=30.0
    )
    await source.start()
    await js.delete_stream(stream_names.stream)
    before = dropped()
    for i in range(3):
        source.emit(make_event(i))
    stopping = asyncio.create_task(source.stop())
    await asyncio.sleep(0.1)
    stopping.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await stopping

    assert dropped() - before == 3


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
