"""Analytics events into ClickHouse: embedded (chdb) or a server, directly or through JetStream.

- ``AnalyticsBatcher``: in-process sink, buffers and inserts in batches from a worker thread.
- ``JetStreamEventPublisher`` / ``AnalyticsSinkConsumer``: cluster mode, bidders publish and
  the analytics sink inserts.
- ``open_store``: ``ClickHouseHttpStore`` when ``CE_CLICKHOUSE_URL`` is set, else ``ChdbStore``;
  opening a store creates ``analytics_events`` or rebuilds an older definition of it
  (``migration``).
"""

from adapters.analytics.batcher import AnalyticsBatcher
from adapters.analytics.jetstream import (
    DURABLE,
    STREAM,
    SUBJECT,
    AnalyticsSinkConsumer,
    JetStreamEventPublisher,
    ensure_analytics_stream,
)
from adapters.analytics.migration import Migration
from adapters.analytics.schema import DEFAULT_DATABASE, TABLE
from adapters.analytics.store import (
    AnalyticsStore,
    AnalyticsStoreError,
    ChdbStore,
    ClickHouseHttpStore,
    open_store,
)
from adapters.analytics.wire import (
    UndecodableEventError,
    decode_event,
    decode_events,
    encode_event,
    encode_events,
)

__all__ = [
    "DEFAULT_DATABASE",
    "DURABLE",
    "STREAM",
    "SUBJECT",
    "TABLE",
    "AnalyticsBatcher",
    "AnalyticsSinkConsumer",
    "AnalyticsStore",
    "AnalyticsStoreError",
    "ChdbStore",
    "ClickHouseHttpStore",
    "JetStreamEventPublisher",
    "Migration",
    "UndecodableEventError",
    "decode_event",
    "decode_events",
    "encode_event",
    "encode_events",
    "ensure_analytics_stream",
    "open_store",
]
