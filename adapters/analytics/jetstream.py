"""Cluster-mode analytics: bidders publish events to JetStream, the analytics sink writes them.

Delivery is at-least-once end to end. Publishers set ``Nats-Msg-Id`` to the event id, so the
stream drops a re-published event inside its duplicate window; the sink acknowledges only after
the insert returned, so a crash in between redelivers, and ReplacingMergeTree collapses the
second copy (exact counts read with FINAL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence

from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError

from adapters import metrics
from adapters.analytics.store import AnalyticsStore
from adapters.analytics.wire import UndecodableEventError, decode_event, encode_event
from domain.analytics import AnalyticsEvent

logger = logging.getLogger(__name__)

STREAM = "analytics"
SUBJECT = "analytics.events"
DURABLE = "analytics-sink"
MAX_AGE_S = 7 * 24 * 3600.0
DUPLICATE_WINDOW_S = 120.0


async def ensure_analytics_stream(
    js: JetStreamContext, *, stream: str = STREAM, subject: str = SUBJECT
) -> None:
    """Creates the stream, or brings an existing one to this configuration."""
    config = StreamConfig(
        name=stream,
        subjects=[subject],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=MAX_AGE_S,
        duplicate_window=DUPLICATE_WINDOW_S,
    )
    try:
        await js.add_stream(config)
    except BadRequestError:
        # The name is taken with another configuration (an older deployment's): update it.
        await js.update_stream(config)


class JetStreamEventPublisher:
    """An ``EventSink`` that publishes to JetStream from a background task.

    ``emit`` (event-loop thread only) appends to a bounded buffer and returns; when
    ``queue_max`` events are waiting the oldest is dropped and counted. The task publishes in
    groups of ``group_size``, awaiting their acks together; an event still failing after
    ``attempts`` tries is dropped and counted.
    """

    def __init__(
        self,
        js: JetStreamContext,
        *,
        subject: str = SUBJECT,
        stream: str = STREAM,
        queue_max: int = 200_000,
        group_size: int = 64,
        attempts: int = 4,
        publish_timeout_s: float = 2.0,
        retry_initial_s: float = 0.1,
        drain_timeout_s: float = 30.0,
    ) -> None:
        if queue_max <= 0 or group_size <= 0 or attempts <= 0:
            raise ValueError("queue_max, group_size and attempts must be positive")
        self._js = js
        self._subject = subject
        self._stream = stream
        self._queue_max = queue_max
        self._group_size = group_size
        self._attempts = attempts
        self._publish_timeout_s = publish_timeout_s
        self._retry_initial_s = retry_initial_s
        self._drain_timeout_s = drain_timeout_s
        self._buffer: deque[AnalyticsEvent] = deque()
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def emit(self, event: AnalyticsEvent) -> None:
        if len(self._buffer) >= self._queue_max:
            self._buffer.popleft()
            metrics.analytics_events_dropped.inc()
        self._buffer.append(event)
        if not self._wake.is_set():
            self._wake.set()

    async def start(self) -> None:
        """Makes sure the stream exists, then starts publishing in the background."""
        if self._task is not None:
            raise RuntimeError("the analytics publisher is already started")
        await ensure_analytics_stream(self._js, stream=self._stream, subject=self._subject)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="analytics-publisher")

    async def stop(self) -> None:
        """Publishes what is left; after ``drain_timeout_s`` the rest is dropped and counted."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, self._drain_timeout_s)
        if self._buffer:
            metrics.analytics_events_dropped.inc(len(self._buffer))
            logger.error("analytics: %d events not published at shutdown", len(self._buffer))
            self._buffer.clear()

    async def _run(self) -> None:
        while True:
            if not self._buffer:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            count = min(self._group_size, len(self._buffer))
            group = [self._buffer.popleft() for _ in range(count)]
            try:
                await self._publish_group(group)
            except asyncio.CancelledError:
                # Cancelled mid-group at the drain deadline: whether these reached the stream
                # is unknown, and they will not be retried, so they count as dropped.
                metrics.analytics_events_dropped.inc(len(group))
                raise

    async def _publish_group(self, group: Sequence[AnalyticsEvent]) -> None:
        waiting = list(group)
        for attempt in range(self._attempts):
            if attempt:
                await asyncio.sleep(self._retry_initial_s * 2 ** (attempt - 1))
            results = await asyncio.gather(
                *(self._publish(event) for event in waiting), return_exceptions=True
            )
            failed = [
                (event, result)
                for event, result in zip(waiting, results, strict=True)
                if isinstance(result, Exception)
            ]
            if not failed:
                return
            waiting = [event for event, _ in failed]
            logger.warning(
                "analytics: %d of %d publishes failed (attempt %d): %s",
                len(failed),
                len(results),
                attempt + 1,
                failed[0][1],
            )
        metrics.analytics_events_dropped.inc(len(waiting))
        logger.error("analytics: dropped %d events JetStream would not take", len(waiting))

    async def _publish(self, event: AnalyticsEvent) -> None:
        await self._js.publish(
            self._subject,
            encode_event(event),
            timeout=self._publish_timeout_s,
            headers={"Nats-Msg-Id": event.event_id},
        )


class AnalyticsSinkConsumer:
    """Durable pull consumer writing JetStream analytics events into a store in batches.

    A batch closes at ``batch_size`` messages or ``flush_interval_s`` after its first message.
    Messages are acknowledged after the insert returned; a failed insert naks them with a
    growing delay, so they come back (at-least-once).
    """

    def __init__(
        self,
        js: JetStreamContext,
        store: AnalyticsStore,
        batch_size: int,
        flush_interval_s: float,
        *,
        stream: str = STREAM,
        subject: str = SUBJECT,
        durable: str = DURABLE,
        ack_wait_s: float = 30.0,
        max_deliver: int = 10_000,
        nak_delay_max_s: float = 60.0,
        fetch_wait_max_s: float = 1.0,
    ) -> None:
        if batch_size <= 0 or flush_interval_s <= 0:
            raise ValueError("batch_size and flush_interval_s must be positive")
        if ack_wait_s <= flush_interval_s:
            # A batch held open longer than ack_wait would be redelivered while still pending.
            raise ValueError("ack_wait_s must be longer than flush_interval_s")
        self._js = js
        self._store = store
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._stream = stream
        self._subject = subject
        self._durable = durable
        self._ack_wait_s = ack_wait_s
        self._max_deliver = max_deliver
        self._nak_delay_max_s = nak_delay_max_s
        self._fetch_wait_max_s = fetch_wait_max_s

    async def run(self, stop: asyncio.Event) -> None:
        """Consumes until ``stop`` is set; the batch in hand is written and acked first."""
        await ensure_analytics_stream(self._js, stream=self._stream, subject=self._subject)
        subscription = await self._subscribe()
        try:
            while not stop.is_set():
                messages = await self._collect(subscription, stop)
                if messages:
                    await self._process(messages)
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        config = ConsumerConfig(
            durable_name=self._durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self._ack_wait_s,
            max_deliver=self._max_deliver,
            # Enough unacked messages for a batch being collected plus one being naked.
            max_ack_pending=max(1000, 4 * self._batch_size),
            filter_subject=self._subject,
        )
        try:
            await self._js.add_consumer(self._stream, config)
        except BadRequestError as exc:
            # An existing durable with settings the server will not change in place: use it.
            logger.warning("analytics: keeping consumer %s as it is: %s", self._durable, exc)
        return await self._js.pull_subscribe_bind(durable=self._durable, stream=self._stream)

    async def _collect(
        self, subscription: JetStreamContext.PullSubscription, stop: asyncio.Event
    ) -> list[Msg]:
        loop = asyncio.get_running_loop()
        messages: list[Msg] = []
        deadline: float | None = None
        while len(messages) < self._batch_size and not stop.is_set():
            now = loop.time()
            if deadline is not None and now >= deadline:
                break
            # Short fetches keep stop responsive; the batch deadline runs from its first message.
            wait = self._fetch_wait_max_s if deadline is None else deadline - now
            wait = min(wait, self._fetch_wait_max_s)
            if wait < 0.01:
                break
            try:
                fetched = await subscription.fetch(self._batch_size - len(messages), timeout=wait)
            except (NatsTimeoutError, TimeoutError):
                continue
            except ConnectionClosedError:
                raise
            except NatsError as exc:
                # A reconnect or a server-side hiccup: messages held so far stay unacked and
                # are still this batch's; try again shortly.
                logger.warning("analytics: fetch failed, retrying: %s", exc)
                await asyncio.sleep(min(wait, self._fetch_wait_max_s))
                continue
            if fetched and deadline is None:
                deadline = loop.time() + self._flush_interval_s
            messages.extend(fetched)
        return messages

    async def _process(self, messages: Sequence[Msg]) -> None:
        events: list[AnalyticsEvent] = []
        decoded: list[Msg] = []
        for message in messages:
            try:
                events.append(decode_event(message.data))
            except UndecodableEventError as exc:
                logger.error("analytics: terminating an undecodable message: %s", exc)
                await message.term()
                continue
            decoded.append(message)
        if not decoded:
            return
        try:
            await asyncio.to_thread(self._store.insert, events)
        except Exception as exc:
            logger.warning("analytics: insert of %d events failed, naking: %s", len(events), exc)
            for message in decoded:
                await message.nak(delay=self._nak_delay(message))
            return
        metrics.analytics_events_batched.inc(len(events))
        await self._acknowledge(decoded)

    async def _acknowledge(self, messages: Sequence[Msg]) -> None:
        """Acks after a successful insert. Tests override it to crash between the two."""
        for message in messages:
            await message.ack()
        metrics.nats_messages_processed.labels(subject=self._subject).inc(len(messages))

    def _nak_delay(self, message: Msg) -> float:
        deliveries = message.metadata.num_delivered or 1
        return float(min(self._nak_delay_max_s, 0.5 * 2 ** min(deliveries - 1, 16)))
