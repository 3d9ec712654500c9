"""ChdbStore on a real embedded ClickHouse in a fresh directory per test."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from adapters.analytics import AnalyticsStoreError, ChdbStore, open_store
from domain.analytics import EventType
from tests.integration.analytics.conftest import EVENTS_TABLE, make_event, row_count


def test_open_creates_the_database_and_a_replacing_table(chdb_store: ChdbStore) -> None:
    rows = chdb_store.query(
        "SELECT engine, partition_key, sorting_key FROM system.tables "
        "WHERE database = 'campaign_express' AND name = 'analytics_events'"
    )

    assert rows == [
        (
            "ReplacingMergeTree",
            "toYYYYMM(timestamp)",
            "event_type, timestamp, user_id, event_id",
        )
    ]


def test_insert_lands_every_row_counted_by_event_type(chdb_store: ChdbStore) -> None:
    types = [EventType.BID] * 5 + [EventType.WIN] * 3 + [EventType.NO_BID] * 2
    chdb_store.insert([make_event(i, event_type=t) for i, t in enumerate(types)])

    rows = chdb_store.query(
        f"SELECT event_type, count() FROM {EVENTS_TABLE} GROUP BY event_type ORDER BY event_type"
    )

    assert rows == [("bid", 5), ("no_bid", 2), ("win", 3)]


def test_same_event_in_two_batches_counts_once_with_final(chdb_store: ChdbStore) -> None:
    first, second = make_event(1), make_event(2)
    chdb_store.insert([first])
    chdb_store.insert([first, second])

    assert row_count(chdb_store, final=True) == 2


def test_retried_identical_batch_is_written_once(chdb_store: ChdbStore) -> None:
    batch = [make_event(i) for i in range(20)]
    chdb_store.insert(batch)
    chdb_store.insert(batch)

    # Without FINAL: the insert deduplication token dropped the second write outright.
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
