"""The analytics sink process loop against the real NATS server and chdb."""

from __future__ import annotations

import asyncio

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from adapters.analytics import ChdbStore, JetStreamEventPublisher
from adapters.settings import Settings
from tests.integration.analytics.conftest import JetStreamNames, eventually, make_event, row_count
from workers.analytics_sink import run_analytics_sink


async def test_sink_writes_published_events_and_stops_cleanly(
    js: JetStreamContext, nats_url: str, stream_names: JetStreamNames
) -> None:
    settings = Settings(
        nats_url=nats_url,
        analytics={
            "flush_interval_s": 0.2,
            "stream": stream_names.stream,
            "subject": stream_names.subject,
        },
    )
    stop = asyncio.Event()
    sink = asyncio.create_task(run_analytics_sink(settings, stop, durable=stream_names.durable))
    source = JetStreamEventPublisher(js, stream=stream_names.stream, subject=stream_names.subject)
    await source.start()
    for i in range(40):
        source.emit(make_event(i))
    await source.stop()

    published = (await js.stream_info(stream_names.stream)).state.last_seq

    async def all_acked() -> bool:
        try:
            info = await js.consumer_info(stream_names.stream, stream_names.durable)
        except NotFoundError:
            return False
        return bool(info.ack_floor.stream_seq >= published and info.num_ack_pending == 0)

    await eventually(all_acked)
    stop.set()
    await asyncio.wait_for(sink, 30)

    # The sink closed its chdb directory, so this process may open it again.
    store = ChdbStore(settings.clickhouse_path)
    try:
        assert row_count(store) == 40
    finally:
        store.close()
