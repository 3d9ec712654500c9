"""ClickHouseHttpStore through clickhouse-connect against the chdb HTTP front (a subprocess)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import clickhouse_connect
import pytest

from adapters.analytics import (
    AnalyticsBatcher,
    AnalyticsStoreError,
    ChdbStore,
    ClickHouseHttpStore,
    open_store,
)
from adapters.analytics.schema import COLUMNS, INSERT_FORMAT, encode
from domain.analytics import EventType
from tests.integration.analytics.conftest import (
    EVENTS_TABLE,
    dropped,
    eventually,
    legacy_table_sql,
    make_event,
    row_count,
)
from tests.support.chdb_http import ChdbHttpFront


@pytest.fixture(scope="module")
def shared_front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbHttpFront]:
    with ChdbHttpFront(tmp_path_factory.mktemp("chdb-http")) as front:
        yield front


@pytest.fixture
def front(tmp_path: Path) -> Iterator[ChdbHttpFront]:
    """A front of this test's own, for tests that stop or freeze it."""
    with ChdbHttpFront(tmp_path / "chdb-http") as own:
        yield own


@pytest.fixture
def database() -> str:
    return f"ce_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def http_store(shared_front: ChdbHttpFront, database: str) -> Iterator[ClickHouseHttpStore]:
    store = ClickHouseHttpStore(shared_front.url, database=database)
    yield store
    store.close()


def test_rows_land_with_counts_by_event_type(
    http_store: ClickHouseHttpStore, database: str
) -> None:
    types = [EventType.BID] * 4 + [EventType.LOSS] * 2
    http_store.insert([make_event(i, event_type=t) for i, t in enumerate(types)])

    rows = http_store.query(
        f"SELECT event_type, count() FROM {database}.analytics_events "
        "GROUP BY event_type ORDER BY event_type"
    )

    assert rows == [("bid", 4), ("loss", 2)]


def test_stored_event_ids_answer_like_the_chdb_store(
    http_store: ClickHouseHttpStore, chdb_store: ChdbStore
) -> None:
    odd = make_event(3, event_id="it's \\ odd", event_type=EventType.LOSS)
    stored = [make_event(1), make_event(2), odd]
    asked = [stored[1], odd, make_event(4)]
    http_store.insert(stored)
    chdb_store.insert(stored)

    over_http = http_store.stored_event_ids(asked)

    assert over_http == {stored[1].event_id, odd.event_id}
    assert over_http == chdb_store.stored_event_ids(asked)


def test_older_table_is_rebuilt_over_http(shared_front: ChdbHttpFront, database: str) -> None:
    events = [make_event(i) for i in range(6)]
    legacy = clickhouse_connect.get_client(dsn=shared_front.url, autogenerate_session_id=False)
    try:
        legacy.command(f"CREATE DATABASE {database}")
        legacy.command(legacy_table_sql(database))
        for batch in (events[:4], events[2:]):  # two events delivered twice
            legacy.raw_insert(
                f"{database}.analytics_events",
                column_names=COLUMNS,
                insert_block=encode(batch).payload,
                fmt=INSERT_FORMAT,
            )
    finally:
        legacy.close()

    store = ClickHouseHttpStore(shared_front.url, database=database)
    try:
        assert store.migration is not None
        assert store.migration.rows_copied == 6
        assert store.query(
            "SELECT engine, sorting_key FROM system.tables "
            f"WHERE database = '{database}' AND name = 'analytics_events'"
        ) == [("MergeTree", "event_type, timestamp")]
        assert row_count(store, table=f"{database}.analytics_events") == 6
    finally:
        store.close()


def test_retried_identical_batch_is_written_once(
    http_store: ClickHouseHttpStore, database: str
) -> None:
    batch = [make_event(i) for i in range(10)]
    http_store.insert(batch)
    http_store.insert(batch)

    assert row_count(http_store, table=f"{database}.analytics_events") == 10


def test_query_answers_like_the_chdb_store(
    http_store: ClickHouseHttpStore, database: str, chdb_store: ChdbStore
) -> None:
    events = [
        make_event(
            i,
            timestamp=datetime(2026, 11, 28, 9, 30, i, 250000, tzinfo=UTC),
            win=i % 2 == 0,
            bid_price=0.5 * i,
            metadata={"i": i},
        )
        for i in range(3)
    ]
    http_store.insert(events)
    chdb_store.insert(events)
    columns = "timestamp, event_type, user_id, bid_price, win, metadata, event_id"

    over_http = http_store.query(
        f"SELECT {columns} FROM {database}.analytics_events ORDER BY timestamp"
    )
    embedded = chdb_store.query(f"SELECT {columns} FROM {EVENTS_TABLE} ORDER BY timestamp")

    assert over_http == embedded
    assert over_http[1][0] == datetime(2026, 11, 28, 9, 30, 1, 250000, tzinfo=UTC)


def test_unreachable_server_raises_store_error(tmp_path: Path) -> None:
    stopped = ChdbHttpFront(tmp_path / "never-started")

    with pytest.raises(AnalyticsStoreError, match="cannot reach ClickHouse"):
        ClickHouseHttpStore(stopped.url, connect_timeout_s=1.0)


def test_open_store_with_url_talks_http(shared_front: ChdbHttpFront, tmp_path: Path) -> None:
    store = open_store(shared_front.url, tmp_path / "unused", database="ce_open_store")
    try:
        assert isinstance(store, ClickHouseHttpStore)
        assert not (tmp_path / "unused").exists()
    finally:
        store.close()


async def test_batcher_keeps_the_batch_through_a_server_outage(
    front: ChdbHttpFront, caplog: pytest.LogCaptureFixture
) -> None:
    store = ClickHouseHttpStore(front.url, connect_timeout_s=1.0)
    batcher = AnalyticsBatcher(
        store, batch_size=5, flush_interval_s=3600.0, queue_max=100, retry_initial_s=0.05
    )
    batcher.start()
    before = dropped()
    front.stop()
    try:
        with caplog.at_level(logging.WARNING, logger="adapters.analytics.batcher"):
            for i in range(5):
                batcher.emit(make_event(i))
            await eventually(lambda: "retrying" in caplog.text)
    finally:
        front.start()  # same port, same data directory

    await eventually(lambda: row_count(store) == 5)
    await batcher.stop()
    store.close()
    assert dropped() == before


async def test_emit_returns_while_the_store_is_stalled(front: ChdbHttpFront) -> None:
    store = ClickHouseHttpStore(front.url, send_receive_timeout_s=120.0)
    batcher = AnalyticsBatcher(store, batch_size=10, flush_interval_s=3600.0, queue_max=10_000)
    batcher.start()
    front.pause()
    try:
        for i in range(10):
            batcher.emit(make_event(i))
        # The first batch is now inside an insert the frozen server will not answer.
        await eventually(lambda: batcher.pending == 0)

        for i in range(10, 505):
            batcher.emit(make_event(i))

        assert batcher.pending == 495
    finally:
        front.resume()
    await batcher.stop()
    assert row_count(store) == 505
    store.close()
