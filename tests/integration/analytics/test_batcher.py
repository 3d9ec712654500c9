"""AnalyticsBatcher writing into a real chdb store."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from adapters.analytics import AnalyticsBatcher, ChdbStore
from adapters.analytics.schema import DEFAULT_DATABASE, create_table_sql
from tests.integration.analytics.conftest import (
    EVENTS_TABLE,
    RecordingStore,
    batched,
    dropped,
    eventually,
    make_event,
    row_count,
)

NEVER_S = 3600.0


def drop_table(store: ChdbStore) -> None:
    store.query(f"DROP TABLE {EVENTS_TABLE}")


def restore_table(store: ChdbStore) -> None:
    store.query(create_table_sql(DEFAULT_DATABASE))


async def test_full_batches_are_written_without_waiting_for_the_interval(
    chdb_store: ChdbStore,
) -> None:
    batcher = AnalyticsBatcher(chdb_store, batch_size=10, flush_interval_s=NEVER_S, queue_max=1000)
    batcher.start()
    before = batched()
    for i in range(5):
        batcher.emit(make_event(i))
    await asyncio.sleep(0.1)

    # Short of a batch: it waits for the timer (or stop), not written in a batch of 5.
    assert (row_count(chdb_store), batcher.pending) == (0, 5)

    for i in range(5, 25):
        batcher.emit(make_event(i))
    # Rows show before the writer task, back from its thread, has counted them.
    await eventually(lambda: row_count(chdb_store) == 25 and batched() - before == 25)
    await batcher.stop()


def started_batcher(store: ChdbStore, **options: Any) -> AnalyticsBatcher:
    """Batches of 10, no timer and no insert interval unless ``options`` say otherwise."""
    settings: dict[str, Any] = {"batch_size": 10, "flush_interval_s": NEVER_S, "queue_max": 1000}
    batcher = AnalyticsBatcher(store, **(settings | options))
    batcher.start()
    return batcher


async def test_inserts_keep_their_interval_and_batches_grow_meanwhile(
    recording_store: RecordingStore,
) -> None:
    batcher = started_batcher(recording_store, min_insert_interval_s=NEVER_S)
    for i in range(10):
        batcher.emit(make_event(i))
    await eventually(lambda: recording_store.inserts == [10])

    for i in range(10, 45):
        batcher.emit(make_event(i))
    await asyncio.sleep(0.2)
    assert (recording_store.inserts, batcher.pending) == ([10], 35)

    # Stopping does not wait out the interval: what grew meanwhile goes in one insert.
    await batcher.stop()
    assert recording_store.inserts == [10, 35]
    assert row_count(recording_store) == 45


async def test_events_arriving_during_an_insert_wait_out_the_interval(
    recording_store: RecordingStore,
) -> None:
    batcher = started_batcher(recording_store, min_insert_interval_s=NEVER_S)
    recording_store.hold.clear()
    for i in range(10):
        batcher.emit(make_event(i))
    await eventually(recording_store.inserting.is_set)

    for i in range(10, 30):  # a full batch more while the first is being written
        batcher.emit(make_event(i))
    recording_store.hold.set()
    await eventually(lambda: recording_store.inserts == [10])
    await asyncio.sleep(0.2)

    assert (recording_store.inserts, batcher.pending) == ([10], 20)
    await batcher.stop()
    assert recording_store.inserts == [10, 20]


async def test_the_timer_writes_at_its_pace_whatever_the_insert_interval(
    recording_store: RecordingStore,
) -> None:
    batcher = started_batcher(recording_store, flush_interval_s=0.05, min_insert_interval_s=NEVER_S)
    for i in range(10):
        batcher.emit(make_event(i))
    await eventually(lambda: recording_store.inserts == [10])

    for i in range(10, 13):
        batcher.emit(make_event(i))

    await eventually(lambda: recording_store.inserts == [10, 3])
    await batcher.stop()


async def test_an_insert_carries_at_most_max_insert_rows(
    recording_store: RecordingStore,
) -> None:
    batcher = started_batcher(recording_store, max_insert_rows=15)
    for i in range(40):
        batcher.emit(make_event(i))

    await eventually(lambda: row_count(recording_store) == 40)
    await batcher.stop()
    assert recording_store.inserts == [15, 15, 10]


async def test_partial_batch_is_written_when_the_interval_passes(chdb_store: ChdbStore) -> None:
    batcher = AnalyticsBatcher(chdb_store, batch_size=1000, flush_interval_s=0.1, queue_max=1000)
    batcher.start()
    for i in range(3):
        batcher.emit(make_event(i))

    await eventually(lambda: row_count(chdb_store) == 3)

    await batcher.stop()


async def test_stop_writes_what_is_left(chdb_store: ChdbStore) -> None:
    batcher = AnalyticsBatcher(
        chdb_store, batch_size=1000, flush_interval_s=NEVER_S, queue_max=1000
    )
    batcher.start()
    for i in range(7):
        batcher.emit(make_event(i))

    await batcher.stop()

    assert row_count(chdb_store) == 7
    assert batcher.pending == 0


async def test_full_queue_drops_the_oldest_and_counts_them(chdb_store: ChdbStore) -> None:
    batcher = AnalyticsBatcher(chdb_store, batch_size=100, flush_interval_s=NEVER_S, queue_max=5)
    batcher.start()
    before = dropped()
    events = [make_event(i) for i in range(8)]

    for event in events:  # no await in between: the writer task never runs meanwhile
        batcher.emit(event)

    assert dropped() - before == 3
    assert batcher.pending == 5
    await batcher.stop()
    rows = chdb_store.query(f"SELECT event_id FROM {EVENTS_TABLE} ORDER BY timestamp")
    assert [row[0] for row in rows] == [event.event_id for event in events[3:]]


async def test_an_event_its_row_cannot_hold_is_dropped_alone(chdb_store: ChdbStore) -> None:
    batcher = AnalyticsBatcher(chdb_store, batch_size=100, flush_interval_s=NEVER_S, queue_max=10)
    batcher.start()
    before = dropped()

    batcher.emit(make_event(0))
    batcher.emit(make_event(1, metadata={("not", "a string key"): 1}))  # JSON cannot hold it
    batcher.emit(make_event(2))

    assert dropped() - before == 1
    await batcher.stop()
    assert row_count(chdb_store) == 2


async def test_failed_insert_is_retried_until_the_store_recovers(
    chdb_store: ChdbStore, caplog: pytest.LogCaptureFixture
) -> None:
    drop_table(chdb_store)
    batcher = AnalyticsBatcher(
        chdb_store, batch_size=5, flush_interval_s=NEVER_S, queue_max=100, retry_initial_s=0.05
    )
    batcher.start()
    before = dropped()
    with caplog.at_level(logging.WARNING, logger="adapters.analytics.batcher"):
        for i in range(5):
            batcher.emit(make_event(i))
        await eventually(lambda: "retrying" in caplog.text)

    restore_table(chdb_store)
    await eventually(lambda: row_count(chdb_store) == 5)

    # The loop is still alive: later events are written too.
    for i in range(5, 10):
        batcher.emit(make_event(i))
    await eventually(lambda: row_count(chdb_store) == 10)
    await batcher.stop()
    assert dropped() == before


async def test_overflow_during_retries_drops_the_oldest_waiting(
    chdb_store: ChdbStore, caplog: pytest.LogCaptureFixture
) -> None:
    drop_table(chdb_store)
    batcher = AnalyticsBatcher(
        chdb_store, batch_size=5, flush_interval_s=NEVER_S, queue_max=10, retry_initial_s=0.05
    )
    batcher.start()
    before = dropped()
    in_flight = [make_event(i) for i in range(5)]
    with caplog.at_level(logging.WARNING, logger="adapters.analytics.batcher"):
        for event in in_flight:
            batcher.emit(event)
        await eventually(lambda: "retrying" in caplog.text)
    later = [make_event(i) for i in range(5, 20)]

    for event in later:
        batcher.emit(event)

    assert dropped() - before == 5
    restore_table(chdb_store)
    await batcher.stop()
    rows = chdb_store.query(f"SELECT event_id FROM {EVENTS_TABLE} ORDER BY timestamp")
    assert [row[0] for row in rows] == [e.event_id for e in in_flight + later[5:]]


async def test_stop_gives_up_and_counts_when_the_store_stays_down(
    chdb_store: ChdbStore,
) -> None:
    drop_table(chdb_store)
    batcher = AnalyticsBatcher(
        chdb_store,
        batch_size=2,
        flush_interval_s=NEVER_S,
        queue_max=100,
        retry_initial_s=0.05,
        drain_timeout_s=0.5,
    )
    batcher.start()
    before = dropped()
    for i in range(5):
        batcher.emit(make_event(i))

    await batcher.stop()

    assert dropped() - before == 5
    assert batcher.pending == 0


def test_non_positive_sizes_are_refused(chdb_store: ChdbStore) -> None:
    with pytest.raises(ValueError, match="positive"):
        AnalyticsBatcher(chdb_store, batch_size=0, flush_interval_s=1.0, queue_max=10)
    with pytest.raises(ValueError, match="max_insert_rows"):
        AnalyticsBatcher(
            chdb_store, batch_size=10, flush_interval_s=1.0, queue_max=10, max_insert_rows=5
        )
