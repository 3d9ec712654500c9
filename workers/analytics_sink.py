"""The analytics sink process: JetStream analytics events into ClickHouse, in batches.

``campaign-express analytics-sink`` runs this in cluster mode; bidders publish with
``JetStreamEventPublisher``. Several sinks may run at once: they share the durable consumer.
"""

from __future__ import annotations

import asyncio
import logging

import nats

from adapters.analytics import (
    DURABLE,
    STREAM,
    SUBJECT,
    AnalyticsSinkConsumer,
    open_store,
)
from adapters.settings import Settings

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
JETSTREAM_API_TIMEOUT_S = 5.0


class AnalyticsSinkConfigError(RuntimeError):
    """The sink cannot run with these settings."""


async def run_analytics_sink(
    settings: Settings,
    stop: asyncio.Event,
    *,
    stream: str = STREAM,
    subject: str = SUBJECT,
    durable: str = DURABLE,
) -> None:
    """Consumes until ``stop`` is set, then writes the batch in hand and closes everything."""
    if not settings.nats_url:
        raise AnalyticsSinkConfigError(
            "the analytics sink reads events from JetStream: set CE_NATS_URL "
            "(e.g. nats://127.0.0.1:4222)"
        )
    store = await asyncio.to_thread(open_store, settings.clickhouse_url, settings.clickhouse_path)
    try:
        connection = await nats.connect(
            settings.nats_url,
            name=f"campaign-express-analytics-sink-{settings.node_id}",
            connect_timeout=CONNECT_TIMEOUT_S,
            # A long-running consumer rides out server restarts instead of exiting.
            max_reconnect_attempts=-1,
        )
        try:
            consumer = AnalyticsSinkConsumer(
                connection.jetstream(timeout=JETSTREAM_API_TIMEOUT_S),
                store,
                settings.analytics.batch_size,
                settings.analytics.flush_interval_s,
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
