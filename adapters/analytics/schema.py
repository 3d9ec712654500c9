"""The ``analytics_events`` table and the one conversion of an event into its row.

Both stores (embedded chdb and a ClickHouse server) write the same columnar JSON payload built
here, so a column added to the table is added in this module only.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from domain.analytics import AnalyticsEvent

DEFAULT_DATABASE = "campaign_express"
TABLE = "analytics_events"

COLUMNS: tuple[str, ...] = (
    "timestamp",
    "event_type",
    "user_id",
    "campaign_id",
    "offer_id",
    "bid_price",
    "win",
    "metadata",
    "node_id",
    "event_id",
)

# Database names end up inside SQL text; a strict pattern keeps quoting out of the question.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")

INSERT_FORMAT = "JSONColumns"

# Identical inserts within this many recent blocks are dropped by ClickHouse itself, which
# covers a retried batch whose first attempt did land (timeout after commit). Redeliveries
# regrouped into other batches are the sink's to drop (AnalyticsSinkConsumer).
DEDUPLICATION_WINDOW = 1000

# Plain MergeTree ordered by (event_type, timestamp): reports filter on type and time range, and
# exactly-once rows come from the sink (AnalyticsSinkConsumer looks redelivered events up before
# writing them), not from collapsing on merge, so no event id in the key and no FINAL in reads.
# Measured here (chdb 4.4, one core, process CPU per event with the encoding, 500-event inserts):
#                                              ReplacingMergeTree (type, time,   this table
#                                              user_id, event_id)
#   ~8,600 events/s for 20 s, 4 runs each      ~33 µs (32.9-37.3)               ~31 µs (30.3-32.5)
#   200 inserts back to back, merges included  ~13.9 µs                         ~12.1 µs
#   compressed size, 200,000 rows              15.64 MB                         15.64 MB
# The key saves ~7-13%, not more: millisecond timestamps already order nearly every row, so the
# tail of the old key was rarely compared. What costs is the part each insert makes and its
# merges (~6 ms of CPU per 500-event insert whatever the key): 5,000-event inserts at ~9,500/s cost
# ~8-9 µs an event with either key, so rows per insert is the lever (analytics.batch_size).
ENGINE = "MergeTree"
PARTITION_KEY = "toYYYYMM(timestamp)"
SORTING_KEY: tuple[str, ...] = ("event_type", "timestamp")


def check_identifier(name: str) -> str:
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"not a plain ClickHouse identifier: {name!r}")
    return name


def check_database_name(database: str) -> str:
    return check_identifier(database)


def qualified_table(database: str, table: str = TABLE) -> str:
    return f"`{check_database_name(database)}`.`{check_identifier(table)}`"


def create_database_sql(database: str) -> str:
    return f"CREATE DATABASE IF NOT EXISTS `{check_database_name(database)}`"


def create_table_sql(database: str, *, table: str = TABLE) -> str:
    return f"""
CREATE TABLE IF NOT EXISTS {qualified_table(database, table)}
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
ENGINE = {ENGINE}
PARTITION BY {PARTITION_KEY}
ORDER BY ({", ".join(SORTING_KEY)})
SETTINGS non_replicated_deduplication_window = {DEDUPLICATION_WINDOW}
""".strip()


def insert_statement(database: str) -> str:
    """``INSERT INTO … (columns)`` without the FORMAT clause; callers add their transport's."""
    return f"INSERT INTO {qualified_table(database)} ({', '.join(COLUMNS)})"


def epoch_seconds(moment: datetime) -> float:
    """Seconds since the epoch rounded to the column's milliseconds.

    A JSON number reads the same under every ``date_time_input_format`` and costs a tenth of
    formatting a date string, which matters at thousands of events a second.
    """
    if moment.tzinfo is None:
        # The domain stamps events in UTC; a naive value is taken to be UTC, never local time.
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp(), 3)


# An event as its row, in COLUMNS order: only strings and numbers, which the garbage collector
# does not track (see ColumnBuffer).
EventRow = tuple[float, str, str, str, str, float, bool, str, str, str]


def event_row(event: AnalyticsEvent) -> EventRow:
    """The one conversion of an event into its row. Raises TypeError for metadata that JSON
    cannot hold even as text (a non-string key, say)."""
    return (
        epoch_seconds(event.timestamp),
        event.event_type.value,
        event.user_id,
        event.campaign_id,
        event.offer_id,
        event.bid_price,
        event.win,
        # default=str: an odd metadata value is written as its text rather than lost.
        orjson.dumps(event.metadata, default=str).decode(),
        event.node_id,
        event.event_id,
    )


@dataclass(frozen=True, slots=True)
class EncodedBatch:
    """Rows ready for a store: one ``INSERT_FORMAT`` payload and its deduplication token."""

    payload: bytes
    token: str
    count: int


class BatchEncoder:
    """Builds an ``EncodedBatch`` a slice of rows at a time, the rows given as columns.

    The payload is a JSON object of column arrays: columnar JSON is one orjson call for the
    whole batch and the cheapest text format for the engine to parse (measured against
    JSONEachRow and JSONCompactEachRow). A caller on the bid path's event loop adds slices
    between bids rather than holding the interpreter for a whole large batch.
    """

    def __init__(self) -> None:
        self._columns: list[list[Any]] = [[] for _ in COLUMNS]
        self._digest = hashlib.blake2b(digest_size=16)
        self._count = 0

    def add(self, columns: Sequence[Sequence[Any]]) -> None:
        """Rows given as columns, in COLUMNS order, all of one length."""
        for into, values in zip(self._columns, columns, strict=True):
            into.extend(values)
        event_ids = columns[-1]  # event_id: the last column
        _add_to_token(self._digest, event_ids)
        self._count += len(event_ids)

    def columns(self) -> Iterator[bytes]:
        """The payload's members, a column each, for a caller that yields between them."""
        for name, values in zip(COLUMNS, self._columns, strict=True):
            yield b'"%s":%s' % (name.encode(), orjson.dumps(values))

    def finish(self, columns: Iterable[bytes] | None = None) -> EncodedBatch:
        """The batch, from ``columns()`` (or what a caller collected of it)."""
        members = self.columns() if columns is None else columns
        payload = b"{" + b",".join(members) + b"}"
        return EncodedBatch(payload, self._digest.hexdigest(), self._count)


def encode(events: Sequence[AnalyticsEvent]) -> EncodedBatch:
    encoder = BatchEncoder()
    if events:
        encoder.add(list(zip(*(event_row(event) for event in events), strict=True)))
    return encoder.finish()


def deduplication_token(event_ids: Iterable[str]) -> str:
    """Same events in the same order give the same token: a retried batch is dropped once landed."""
    digest = hashlib.blake2b(digest_size=16)
    _add_to_token(digest, event_ids)
    return digest.hexdigest()


def _add_to_token(digest: hashlib.blake2b, event_ids: Iterable[str]) -> None:
    for event_id in event_ids:
        digest.update(event_id.encode())
        digest.update(b"\0")


def stored_event_ids_sql(database: str) -> str:
    """Which of a set of event ids have a row, with the parameters of ``stored_event_ids_params``.

    The type and time bounds let the sorting key skip all but the granules those events can be
    in, so the lookup reads a sliver of the table however large it grows.
    """
    return (
        # The table name passed check_identifier; values are bound, never spliced in.
        f"SELECT DISTINCT event_id FROM {qualified_table(database)} "  # noqa: S608
        "WHERE event_type IN {event_types:Array(String)} "
        "AND timestamp >= fromUnixTimestamp64Milli({since_ms:Int64}, 'UTC') "
        "AND timestamp <= fromUnixTimestamp64Milli({until_ms:Int64}, 'UTC') "
        "AND event_id IN {event_ids:Array(String)}"
    )


def stored_event_ids_params(events: Sequence[AnalyticsEvent]) -> dict[str, Any]:
    """Query parameters as Python values; each store hands them over its own way."""
    millis = [round(epoch_seconds(event.timestamp) * 1000) for event in events]
    return {
        "event_types": sorted({event.event_type.value for event in events}),
        # One millisecond of slack each way: the stored value was parsed from a float's text.
        "since_ms": min(millis) - 1,
        "until_ms": max(millis) + 1,
        "event_ids": sorted({event.event_id for event in events}),
    }
