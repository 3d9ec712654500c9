"""ChdbStore on a real embedded ClickHouse in a fresh directory per test."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters.analytics import AnalyticsStoreError, ChdbStore, open_store
from adapters.analytics.migration import MIGRATING_TABLE
from adapters.analytics.schema import create_table_sql
from adapters.analytics.store import open_chdb_session
from domain.analytics import EventType
from tests.integration.analytics.conftest import (
    EVENTS_TABLE,
    insert_into,
    legacy_table_sql,
    make_event,
    row_count,
)

TABLE_SHAPES = (
    "SELECT name, engine, sorting_key FROM system.tables "
    "WHERE database = 'campaign_express' ORDER BY name"
)
MIGRATING = f"campaign_express.{MIGRATING_TABLE}"


@contextmanager
def raw_session(path: Path) -> Iterator[Any]:
    """chdb on ``path`` without the store: the tables are as the test leaves them."""
    path.mkdir(parents=True, exist_ok=True)
    session = open_chdb_session(path)
    try:
        session.query("CREATE DATABASE IF NOT EXISTS campaign_express")
        yield session
    finally:
        session.close()


def test_open_creates_the_database_and_a_merge_tree_table(chdb_store: ChdbStore) -> None:
    rows = chdb_store.query(
        "SELECT engine, partition_key, sorting_key FROM system.tables "
        "WHERE database = 'campaign_express' AND name = 'analytics_events'"
    )

    assert rows == [("MergeTree", "toYYYYMM(timestamp)", "event_type, timestamp")]
    assert chdb_store.migration is None


def test_insert_lands_every_row_counted_by_event_type(chdb_store: ChdbStore) -> None:
    types = [EventType.BID] * 5 + [EventType.WIN] * 3 + [EventType.NO_BID] * 2
    chdb_store.insert([make_event(i, event_type=t) for i, t in enumerate(types)])

    rows = chdb_store.query(
        f"SELECT event_type, count() FROM {EVENTS_TABLE} GROUP BY event_type ORDER BY event_type"
    )

    assert rows == [("bid", 5), ("no_bid", 2), ("win", 3)]


def test_stored_event_ids_names_the_events_that_have_rows(chdb_store: ChdbStore) -> None:
    odd = make_event(3, event_id="it's \\ odd", event_type=EventType.WIN)
    stored = [make_event(1), make_event(2), odd]
    chdb_store.insert(stored)
    never_written = make_event(4)

    found = chdb_store.stored_event_ids([stored[0], odd, never_written])

    assert found == {stored[0].event_id, odd.event_id}
    assert chdb_store.stored_event_ids([]) == set()


def test_older_table_is_rebuilt_with_its_rows_and_kept(
    chdb_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    events = [make_event(i) for i in range(4)]
    with raw_session(chdb_path) as session:
        session.query(legacy_table_sql("campaign_express"))
        insert_into(session, EVENTS_TABLE, events[:3])
        # A redelivered event the old table had not merged away yet.
        insert_into(session, EVENTS_TABLE, [events[0], events[3]])

    with caplog.at_level(logging.WARNING, logger="adapters.analytics.migration"):
        store = ChdbStore(chdb_path)
    try:
        assert store.migration is not None
        archive = f"campaign_express.{store.migration.archived_as}"
        assert store.migration.archived_as.startswith("analytics_events_v1_")
        assert store.migration.rows_copied == 4
        assert store.query(TABLE_SHAPES) == [
            ("analytics_events", "MergeTree", "event_type, timestamp"),
            (
                store.migration.archived_as,
                "ReplacingMergeTree",
                "event_type, timestamp, user_id, event_id",
            ),
        ]
        assert row_count(store) == 4
        assert sorted(row[0] for row in store.query(f"SELECT event_id FROM {EVENTS_TABLE}")) == (
            sorted(event.event_id for event in events)
        )
        # Nothing deleted: the old table keeps its rows, and the log says what to do.
        assert store.query(f"SELECT count() FROM {archive} FINAL") == [(4,)]
        assert f"DROP TABLE `campaign_express`.`{store.migration.archived_as}`" in caplog.text
    finally:
        store.close()

    reopened = ChdbStore(chdb_path)
    try:
        assert reopened.migration is None
        assert row_count(reopened) == 4
    finally:
        reopened.close()


def test_rebuild_interrupted_before_the_swap_is_done_again(chdb_path: Path) -> None:
    events = [make_event(i) for i in range(5)]
    with raw_session(chdb_path) as session:
        session.query(legacy_table_sql("campaign_express"))
        insert_into(session, EVENTS_TABLE, events)
        # The copy had reached its second row when the process died.
        session.query(create_table_sql("campaign_express", table=MIGRATING_TABLE))
        insert_into(session, MIGRATING, events[:2])

    store = ChdbStore(chdb_path)
    try:
        assert store.migration is not None
        assert row_count(store) == 5
        assert [name for name, _, _ in store.query(TABLE_SHAPES)] == [
            "analytics_events",
            store.migration.archived_as,
        ]
    finally:
        store.close()


def test_rebuild_interrupted_after_the_swap_archives_the_old_rows(
    chdb_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    events = [make_event(i) for i in range(5)]
    with raw_session(chdb_path) as session:
        # Swapped, not yet renamed: the old rows wait under the migrating name.
        session.query(create_table_sql("campaign_express"))
        insert_into(session, EVENTS_TABLE, events)
        session.query(legacy_table_sql("campaign_express", table=MIGRATING_TABLE))
        insert_into(session, MIGRATING, events)

    with caplog.at_level(logging.WARNING, logger="adapters.analytics.migration"):
        store = ChdbStore(chdb_path)
    try:
        assert store.migration is None
        [current, archived] = store.query(TABLE_SHAPES)
        assert current == ("analytics_events", "MergeTree", "event_type, timestamp")
        assert archived[0].startswith("analytics_events_v1_")
        assert row_count(store) == 5
        assert row_count(store, table=f"campaign_express.{archived[0]}") == 5
        assert "DROP TABLE" in caplog.text
    finally:
        store.close()


def test_retried_identical_batch_is_written_once(chdb_store: ChdbStore) -> None:
    batch = [make_event(i) for i in range(20)]
    chdb_store.insert(batch)
    chdb_store.insert(batch)

    # The insert deduplication token dropped the second write outright.
    assert row_count(chdb_store) == 20


def test_row_keeps_the_event_values(chdb_store: ChdbStore) -> None:
    event = make_event(
        7,
        event_type=EventType.WIN,
        timestamp=datetime(2026, 11, 28, 9, 30, 15, 123456, tzinfo=UTC),
        bid_price=2.75,
        win=True,
        metadata={"seat": "s1", "floor": 0.5, "tags": ["a", "b"]},
    )
    chdb_store.insert([event])

    [row] = chdb_store.query(
        "SELECT timestamp, event_type, user_id, campaign_id, offer_id, bid_price, win, "
        f"metadata, node_id, event_id FROM {EVENTS_TABLE}"
    )

    assert row[0] == datetime(2026, 11, 28, 9, 30, 15, 123000, tzinfo=UTC)
    assert row[1:7] == ("win", "user-7", "campaign-1", "offer-7", 2.75, True)
    assert orjson.loads(row[7]) == {"seat": "s1", "floor": 0.5, "tags": ["a", "b"]}
    assert row[7] == '{"seat":"s1","floor":0.5,"tags":["a","b"]}'
    assert row[8:] == ("node-a", event.event_id)


def test_naive_timestamp_is_stored_as_utc(chdb_store: ChdbStore) -> None:
    chdb_store.insert([make_event(timestamp=datetime(2026, 1, 2, 3, 4, 5))])

    assert chdb_store.query(f"SELECT timestamp FROM {EVENTS_TABLE}") == [
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),)
    ]


def test_rows_survive_closing_and_reopening_the_directory(chdb_path: Path) -> None:
    store = ChdbStore(chdb_path)
    store.insert([make_event(i) for i in range(3)])
    store.close()

    reopened = ChdbStore(chdb_path)
    try:
        assert row_count(reopened) == 3
    finally:
        reopened.close()


def test_database_name_is_configurable(chdb_path: Path) -> None:
    store = ChdbStore(chdb_path, database="reports_eu")
    try:
        store.insert([make_event()])
        assert row_count(store, table="reports_eu.analytics_events") == 1
    finally:
        store.close()


def test_unsafe_database_name_is_refused(chdb_path: Path) -> None:
    with pytest.raises(ValueError, match="identifier"):
        ChdbStore(chdb_path, database="x; DROP TABLE y")


def test_bad_sql_raises_store_error(chdb_store: ChdbStore) -> None:
    with pytest.raises(AnalyticsStoreError, match="UNKNOWN_TABLE"):
        chdb_store.query("SELECT * FROM campaign_express.nope")


def test_closed_store_refuses_inserts(chdb_path: Path) -> None:
    store = ChdbStore(chdb_path)
    store.close()

    with pytest.raises(AnalyticsStoreError, match="closed"):
        store.insert([make_event()])


def test_open_store_without_url_is_chdb_in_the_given_path(chdb_path: Path) -> None:
    store = open_store(None, chdb_path)
    try:
        assert isinstance(store, ChdbStore)
        store.insert([make_event()])
        assert row_count(store) == 1
    finally:
        store.close()


def test_second_directory_is_refused_while_the_first_is_open(
    chdb_store: ChdbStore, tmp_path: Path
) -> None:
    with pytest.raises(AnalyticsStoreError, match="cannot open chdb"):
        ChdbStore(tmp_path / "another")

    # The refusal left the first store working.
    chdb_store.insert([make_event()])
    assert row_count(chdb_store) == 1
