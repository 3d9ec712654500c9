"""Analytics events into ClickHouse: embedded (chdb) or a server, directly or through JetStream.

- ``AnalyticsBatcher``: in-process sink, buffers and inserts in batches from a worker thread.
- ``JetStreamEventPublisher`` / ``AnalyticsSinkConsumer``: cluster mode, bidders publish and
  the analytics sink inserts.
- ``open_store``: ``ClickHouseHttpStore`` when ``CE_CLICKHOUSE_URL`` is set, else ``ChdbStore``.
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
from adapters.analytics.schema import DEFAULT_DATABASE, TABLE
from adapters.analytics.store import (
    AnalyticsStore,
    AnalyticsStoreError,
    ChdbStore,
    ClickHouseHttpStore,
    open_store,
)
from adapters.analytics.wire import UndecodableEventError, decode_event, encode_event

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
    "UndecodableEventError",
    "decode_event",
    "encode_event",
    "ensure_analytics_stream",
    "open_store",
]
