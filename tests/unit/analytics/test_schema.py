"""The analytics table's DDL and the event → column payload."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from adapters.analytics.schema import (
    COLUMNS,
    BatchEncoder,
    create_database_sql,
    create_table_sql,
    deduplication_token,
    encode,
    epoch_seconds,
    event_row,
    insert_statement,
    stored_event_ids_params,
    stored_event_ids_sql,
)
from domain.analytics import AnalyticsEvent, EventType


def event(event_id: str = "e1", **overrides: object) -> AnalyticsEvent:
    fields: dict[str, object] = {
        "event_id": event_id,
        "timestamp": datetime(2026, 11, 28, 12, 0, 0, 123456, tzinfo=UTC),
        "event_type": EventType.WIN,
        "user_id": "u1",
        "campaign_id": "c1",
        "offer_id": "o1",
        "bid_price": 2.5,
        "win": True,
        "metadata": {"b": 1, "a": [1, 2]},
        "node_id": "n1",
    }
    fields.update(overrides)
    return AnalyticsEvent(**fields)  # type: ignore[arg-type]


def ids(*events: AnalyticsEvent) -> list[str]:
    return [event.event_id for event in events]


def test_table_is_a_merge_tree_sorted_by_type_and_time() -> None:
    ddl = create_table_sql("campaign_express")

    assert "CREATE TABLE IF NOT EXISTS `campaign_express`.`analytics_events`" in ddl
    assert "ENGINE = MergeTree\n" in ddl
    assert "PARTITION BY toYYYYMM(timestamp)" in ddl
    assert "ORDER BY (event_type, timestamp)\n" in ddl
    # A retried identical insert stays a no-op without any key help.
    assert "non_replicated_deduplication_window = 1000" in ddl


def test_table_may_be_created_under_another_name() -> None:
    ddl = create_table_sql("campaign_express", table="analytics_events_migrating")

    assert "CREATE TABLE IF NOT EXISTS `campaign_express`.`analytics_events_migrating`" in ddl


@pytest.mark.parametrize("table", ["", "a-b", "x`; DROP TABLE y"])
def test_table_name_that_is_not_a_plain_identifier_is_refused(table: str) -> None:
    with pytest.raises(ValueError, match="identifier"):
        create_table_sql("campaign_express", table=table)


def test_every_column_is_declared_and_inserted() -> None:
    ddl = create_table_sql("campaign_express")

    for column in COLUMNS:
        assert f"\n    {column} " in ddl
    assert insert_statement("campaign_express").endswith(f"({', '.join(COLUMNS)})")


@pytest.mark.parametrize("name", ["", "1db", "db-name", "a.b", "x; DROP TABLE y", "`q`"])
def test_database_name_that_is_not_a_plain_identifier_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="identifier"):
        create_database_sql(name)


def test_payload_has_one_array_per_column_in_batch_order() -> None:
    batch = [event("e1"), event("e2", win=False, event_type=EventType.LOSS)]

    columns = orjson.loads(encode(batch).payload)

    assert tuple(columns) == COLUMNS
    assert columns["event_id"] == ["e1", "e2"]
    assert columns["event_type"] == ["win", "loss"]
    assert columns["win"] == [True, False]
    assert columns["timestamp"] == [1795867200.123, 1795867200.123]


def test_metadata_becomes_compact_json_text() -> None:
    columns = orjson.loads(
        encode([event(metadata={"seat": "s1", "when": datetime(2026, 1, 1)})]).payload
    )

    # Values JSON cannot carry are written as text rather than failing the batch.
    assert columns["metadata"] == ['{"seat":"s1","when":"2026-01-01T00:00:00"}']


def test_naive_timestamp_counts_as_utc_and_offsets_are_honoured() -> None:
    aware = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

    assert epoch_seconds(aware.replace(tzinfo=None)) == epoch_seconds(aware)
    assert epoch_seconds(aware.astimezone(timezone(timedelta(hours=5)))) == epoch_seconds(aware)


def test_deduplication_token_follows_the_batch_and_its_order() -> None:
    first, second = event("e1"), event("e2")

    assert deduplication_token(ids(first, second)) == deduplication_token(ids(first, second))
    assert deduplication_token(ids(first, second)) != deduplication_token(ids(second, first))
    assert deduplication_token(ids(first)) != deduplication_token(ids(first, second))


def test_a_batch_encoded_in_slices_is_the_batch_encoded_at_once() -> None:
    events = [event(f"e{i}", user_id=f"u{i}", metadata={"i": i}) for i in range(7)]
    columns = list(zip(*(event_row(item) for item in events), strict=True))
    encoder = BatchEncoder()
    for start in range(0, len(events), 3):
        encoder.add([column[start : start + 3] for column in columns])

    sliced = encoder.finish()

    assert sliced == encode(events)
    assert (sliced.token, sliced.count) == (deduplication_token(ids(*events)), 7)
    # Assembled column by column, it is still one JSON object of the table's columns.
    assert list(orjson.loads(sliced.payload)) == list(COLUMNS)


def test_rows_hold_nothing_the_garbage_collector_tracks() -> None:
    row = event_row(event("e1", metadata={"reason": EventType.LOSS, "count": 3}))

    assert [value for value in row if gc.is_tracked(value)] == []
    assert row[-1] == "e1"


def test_stored_ids_lookup_is_bounded_by_the_events_types_and_times() -> None:
    early = event("e1", timestamp=datetime(2026, 11, 28, 12, 0, 0, 5000, tzinfo=UTC))
    late = event("e2", timestamp=datetime(2026, 11, 28, 12, 0, 1, 0, tzinfo=UTC))
    loss = event("e3", event_type=EventType.LOSS, timestamp=early.timestamp)

    params = stored_event_ids_params([late, early, loss, late])

    assert params == {
        "event_types": ["loss", "win"],
        # A millisecond of slack each side of the earliest and latest event.
        "since_ms": 1795867200005 - 1,
        "until_ms": 1795867201000 + 1,
        "event_ids": ["e1", "e2", "e3"],
    }
    sql = stored_event_ids_sql("campaign_express")
    for name in params:
        assert "{" + name + ":" in sql
    assert "`campaign_express`.`analytics_events`" in sql
