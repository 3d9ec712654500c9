"""The ``analytics_events`` table and the one conversion of an event into its row.

Both stores (embedded chdb and a ClickHouse server) write the same columnar JSON payload built
here, so a column added to the table is added in this module only.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime

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
# regrouped into different batches are left to ReplacingMergeTree.
DEDUPLICATION_WINDOW = 1000


def check_database_name(database: str) -> str:
    if not _IDENTIFIER.fullmatch(database):
        raise ValueError(f"not a plain ClickHouse identifier: {database!r}")
    return database


def qualified_table(database: str) -> str:
    return f"`{check_database_name(database)}`.`{TABLE}`"


def create_database_sql(database: str) -> str:
    return f"CREATE DATABASE IF NOT EXISTS `{check_database_name(database)}`"


def create_table_sql(database: str) -> str:
    # ORDER BY ends in event_id so a redelivered event collapses into one row on merge; exact
    # counts read with FINAL.
    return f"""
CREATE TABLE IF NOT EXISTS {qualified_table(database)}
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


def encode_batch(events: Sequence[AnalyticsEvent]) -> bytes:
    """The batch as one ``INSERT_FORMAT`` payload: a JSON object of column arrays.

    Columnar JSON is one orjson call for the whole batch and the cheapest text format for the
    engine to parse (measured against JSONEachRow and JSONCompactEachRow).
    """
    return orjson.dumps(
        {
            "timestamp": [epoch_seconds(event.timestamp) for event in events],
            "event_type": [event.event_type.value for event in events],
            "user_id": [event.user_id for event in events],
            "campaign_id": [event.campaign_id for event in events],
            "offer_id": [event.offer_id for event in events],
            "bid_price": [event.bid_price for event in events],
            "win": [event.win for event in events],
            # default=str: one odd metadata value must not make the whole batch unwritable.
            "metadata": [orjson.dumps(event.metadata, default=str).decode() for event in events],
            "node_id": [event.node_id for event in events],
            "event_id": [event.event_id for event in events],
        }
    )


def deduplication_token(events: Sequence[AnalyticsEvent]) -> str:
    """Same events in the same order give the same token: a retried batch is dropped once landed."""
    digest = hashlib.blake2b(digest_size=16)
    for event in events:
        digest.update(event.event_id.encode())
        digest.update(b"\0")
    return digest.hexdigest()
