"""The analytics sink process: JetStream analytics events into ClickHouse, in batches.

``campaign-express analytics-sink`` runs this in cluster mode; bidders publish with
``JetStreamEventPublisher``. Several sinks may run at once: they share the durable consumer.
"""

from __future__ import annotations

import asyncio
import logging

from adapters.analytics import (
    DURABLE,
    AnalyticsSinkConsumer,
    open_store,
)
from adapters.bus.nats_client import connect_nats
from adapters.settings import Settings

logger = logging.getLogger(__name__)

JETSTREAM_API_TIMEOUT_S = 5.0


class AnalyticsSinkConfigError(RuntimeError):
    """The sink cannot run with these settings."""


async def run_analytics_sink(
    settings: Settings,
    stop: asyncio.Event,
    *,
    durable: str = DURABLE,
) -> None:
    """Consumes until ``stop`` is set, then writes the batch in hand and closes everything."""
    stream, subject = settings.analytics.stream, settings.analytics.subject
    if not settings.nats_url:
        raise AnalyticsSinkConfigError(
            "the analytics sink reads events from JetStream: set CE_NATS_URL "
            "(e.g. nats://127.0.0.1:4222)"
        )
    store = await asyncio.to_thread(open_store, settings.clickhouse_url, settings.clickhouse_path)
    try:
        connection = await connect_nats(
            settings.nats_url, f"campaign-express-analytics-sink-{settings.node_id}"
        )
        try:
            consumer = AnalyticsSinkConsumer(
                connection.jetstream(timeout=JETSTREAM_API_TIMEOUT_S),
                store,
                settings.analytics.batch_size,
                settings.analytics.flush_interval_s,
                min_insert_interval_s=settings.analytics.min_insert_interval_s,
                max_insert_rows=settings.analytics.max_insert_rows,
                stream=stream,
                subject=subject,
                durable=durable,
            )
            logger.info("analytics sink consuming %s (durable %s)", subject, durable)
            await consumer.run(stop)
        finally:
            # Drain sends the last acks before the connection closes.
            await connection.drain()
    finally:
        await asyncio.to_thread(store.close)
