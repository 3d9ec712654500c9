"""Cluster-mode analytics: bidders publish events to JetStream, the analytics sink writes them.

Each event reaches ClickHouse once:

- a publisher packs up to ``events_per_message`` events in one message (``wire``) named, in
  ``Nats-Msg-Id``, by a digest of their ids; a retried publish whose first attempt landed has
  the same name, and the stream drops it inside its duplicate window;
- the sink acknowledges after the insert returned, so a crash in between (or a lost ack, or a
  failed insert that did land) brings the message back. A message delivered before is checked
  against the store, and events that already have a row are acknowledged without a second one.

Packing is what makes JetStream affordable on the bid path's core (figures in
``JetStreamEventPublisher``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

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
from adapters.analytics.buffer import ColumnBuffer, encoded_or_dropped
from adapters.analytics.schema import deduplication_token
from adapters.analytics.store import AnalyticsStore
from adapters.analytics.wire import decode_events, encode_event, encode_events
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


@dataclass(frozen=True, slots=True)
class _Outgoing:
    """One message to publish: how many events it holds, its body and its JetStream name."""

    events: int
    body: bytes
    message_id: str


class JetStreamEventPublisher:
    """An ``EventSink`` that publishes to JetStream from a background task.

    ``emit`` (event-loop thread only) encodes the event and appends its line and id to a
    ``ColumnBuffer`` of ``queue_max`` events, and returns. The task packs waiting events into
    messages of up to ``events_per_message`` events and ``max_message_bytes`` (keep it within
    the server's ``max_payload``, 1 MiB by default; an event that alone would pass it is dropped
    on ``emit``), and publishes up to ``messages_in_flight`` at a time, awaiting their
    acks together. With fewer than a message's worth waiting it lingers up to ``linger_s`` for
    more: analytics are written in batches of seconds anyway, and a fuller message is CPU saved
    on the bid path's core. A message still failing after ``attempts`` tries is dropped and its
    events counted.

    Measured here (publisher pinned to one core, nats-server 2.9 on loopback), process CPU per
    event, the load generator's own cost taken out:

    ====================================  ====================  ====================
    load                                  one event a message   100 events a message
    ====================================  ====================  ====================
    20,000 emitted at once                ~29 µs (~26,000/s)    ~2 µs (~400,000/s)
    8,000/s, 8 events each millisecond    ~47 µs                ~6-8 µs
    4,000/s, 4 events each millisecond    ~60 µs                ~6-7 µs
    ====================================  ====================  ====================

    What is left at a steady rate is mostly the kernel moving ~40 KB messages over loopback.
    """

    def __init__(
        self,
        js: JetStreamContext,
        *,
        subject: str = SUBJECT,
        stream: str = STREAM,
        queue_max: int = 200_000,
        events_per_message: int = 100,
        max_message_bytes: int = 256 * 1024,
        linger_s: float = 0.05,
        messages_in_flight: int = 8,
        attempts: int = 4,
        publish_timeout_s: float = 2.0,
        retry_initial_s: float = 0.1,
        drain_timeout_s: float = 30.0,
    ) -> None:
        if min(queue_max, events_per_message, max_message_bytes, messages_in_flight) <= 0:
            raise ValueError(
                "queue_max, events_per_message, max_message_bytes and messages_in_flight "
                "must be positive"
            )
        if attempts <= 0 or linger_s < 0:
            raise ValueError("attempts must be positive and linger_s not negative")
        self._js = js
        self._subject = subject
        self._stream = stream
        self._events_per_message = events_per_message
        self._max_message_bytes = max_message_bytes
        self._linger_s = linger_s
        self._messages_in_flight = messages_in_flight
        self._attempts = attempts
        self._publish_timeout_s = publish_timeout_s
        self._retry_initial_s = retry_initial_s
        self._drain_timeout_s = drain_timeout_s
        self._buffer = ColumnBuffer(queue_max, 2)  # an event's wire line, and its id
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Events waiting in memory, not counting messages being published."""
        return len(self._buffer)

    def emit(self, event: AnalyticsEvent) -> None:
        # Encoded now, not when packed: bytes in columns are nothing the collector tracks.
        line = encoded_or_dropped(encode_event, event)
        if line is None:
            return
        if len(line) > self._max_message_bytes:
            # Alone it would fill a message past the limit and fail it on every attempt.
            metrics.analytics_events_dropped.inc()
            logger.error(
                "analytics: dropped event %s: %d bytes encoded, messages hold %d",
                event.event_id,
                len(line),
                self._max_message_bytes,
            )
            return
        waiting = self._buffer.append((line, event.event_id))
        if not self._wake.is_set():
            self._wake.set()
        if waiting >= self._events_per_message and not self._full.is_set():
            self._full.set()

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
        self._full.set()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(task, self._drain_timeout_s)
        finally:  # stop() itself cancelled, too: what never left is counted all the same
            self._buffer.discard_all("unpublished at shutdown")

    async def _run(self) -> None:
        while True:
            if not self._buffer:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            # A message short of events_per_message goes out only once the linger has passed
            # (or at shutdown); until then its events wait for company.
            partial = self._stopping
            if len(self._buffer) < self._events_per_message and not partial:
                self._full.clear()
                try:
                    await asyncio.wait_for(self._full.wait(), self._linger_s)
                except TimeoutError:
                    partial = True
            unsettled = self._pack(partial=partial)
            try:
                await self._publish_all(unsettled)
            except asyncio.CancelledError:
                # Cancelled at the drain deadline: whether the messages not yet acknowledged
                # reached the stream is unknown, and they will not be retried, so they count as
                # dropped. Those acknowledged on an earlier attempt are no longer in the list.
                metrics.analytics_events_dropped.inc(sum(m.events for m in unsettled))
                raise

    def _pack(self, *, partial: bool) -> list[_Outgoing]:
        messages: list[_Outgoing] = []
        while self._buffer and len(messages) < self._messages_in_flight:
            if not partial and len(self._buffer) < self._events_per_message:
                break
            lines: list[bytes] = []
            event_ids: list[str] = []
            size = 0
            while self._buffer and len(lines) < self._events_per_message:
                if lines and size + len(self._buffer.oldest(0)) > self._max_message_bytes:
                    break
                line, event_id = self._buffer.popleft()
                lines.append(line)
                event_ids.append(event_id)
                size += len(line) + 1  # its line and the newline after it
            messages.append(
                _Outgoing(len(lines), encode_events(lines), deduplication_token(event_ids))
            )
        return messages

    async def _publish_all(self, unsettled: list[_Outgoing]) -> None:
        """Publishes ``unsettled``, retrying failures; the list keeps, at every await, the
        messages not yet acknowledged (each leaves it as its ack comes), and is empty on
        return (sent or counted as dropped)."""
        for attempt in range(self._attempts):
            if attempt:
                await asyncio.sleep(self._retry_initial_s * 2 ** (attempt - 1))
            results = await asyncio.gather(
                *(self._settle(message, unsettled) for message in list(unsettled)),
                return_exceptions=True,
            )
            errors = [result for result in results if isinstance(result, Exception)]
            if not unsettled:
                return
            logger.warning(
                "analytics: %d of %d publishes failed (attempt %d): %s",
                len(errors),
                len(results),
                attempt + 1,
                errors[0],
            )
        lost = sum(message.events for message in unsettled)
        unsettled.clear()
        metrics.analytics_events_dropped.inc(lost)
        logger.error("analytics: dropped %d events JetStream would not take", lost)

    async def _settle(self, message: _Outgoing, unsettled: list[_Outgoing]) -> None:
        await self._publish(message)
        unsettled[:] = [waiting for waiting in unsettled if waiting is not message]

    async def _publish(self, message: _Outgoing) -> None:
        await self._js.publish(
            self._subject,
            message.body,
            timeout=self._publish_timeout_s,
            # The same name on every attempt: a retry of a publish that did land is dropped.
            headers={"Nats-Msg-Id": message.message_id},
        )


@dataclass(frozen=True, slots=True)
class _Delivery:
    message: Msg
    events: list[AnalyticsEvent]

    @property
    def redelivered(self) -> bool:
        return (self.message.metadata.num_delivered or 1) > 1


class AnalyticsSinkConsumer:
    """Durable pull consumer writing JetStream analytics events into a store in batches.

    A batch closes at ``batch_size`` events or ``flush_interval_s`` after its first message,
    and a full one is written at least ``min_insert_interval_s`` after the previous insert:
    until then it keeps growing, up to ``max_insert_rows`` events (a message's worth more at
    most: a message is acknowledged whole). ClickHouse pays per insert (a part to merge
    each), so under load inserts stay seconds apart and get bigger instead of more frequent,
    as in the in-process writer. Messages are acknowledged after the insert returned; a failed
    insert naks them with a growing delay, so they come back (at-least-once). Exactly one row
    per event:

    - an event twice in one batch is written once;
    - events of a message delivered before are looked up in the store first, and those with a
      row are acknowledged without being written again. Only redeliveries pay for the lookup,
      and it asks the store, not this process's memory, so it holds however long the sink was
      down, whichever of several sinks sharing the durable wrote the row, and when an insert
      reported a failure but did land.

    What it cannot see is an insert still running elsewhere: a sink whose insert outlasts
    ``ack_wait_s`` may race another sink given the same message meanwhile.
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
        min_insert_interval_s: float = 0.0,
        max_insert_rows: int = 50_000,
        ack_wait_s: float = 30.0,
        max_deliver: int = 10_000,
        nak_delay_max_s: float = 60.0,
        fetch_wait_max_s: float = 1.0,
    ) -> None:
        if batch_size <= 0 or flush_interval_s <= 0:
            raise ValueError("batch_size and flush_interval_s must be positive")
        if min_insert_interval_s < 0 or max_insert_rows < batch_size:
            raise ValueError(
                "min_insert_interval_s must not be negative, max_insert_rows not below batch_size"
            )
        if ack_wait_s <= max(flush_interval_s, min_insert_interval_s):
            # A batch held open longer than ack_wait would be redelivered while still pending.
            raise ValueError(
                "ack_wait_s must be longer than flush_interval_s and min_insert_interval_s"
            )
        self._js = js
        self._store = store
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._min_insert_interval_s = min_insert_interval_s
        self._max_insert_rows = max_insert_rows
        self._last_insert = -math.inf  # on the event loop's clock
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
                deliveries = await self._collect(subscription, stop)
                if deliveries:
                    await self._process(deliveries)
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
            # Enough unacked messages for a batch being collected (one event a message at
            # worst) plus one being naked.
            max_ack_pending=max(1000, 2 * self._max_insert_rows),
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
    ) -> list[_Delivery]:
        loop = asyncio.get_running_loop()
        deliveries: list[_Delivery] = []
        events = 0
        # Messages carry one event (older publishers) or up to a hundred, fewer when traffic
        # is light: a batch's first fetch takes one message, and later fetches are sized by the
        # biggest message seen so far, so a batch passes its limit by a message's worth at most
        # (sizing by the last batch's messages let a surge after a quiet spell overshoot 25x).
        largest = 0
        deadline: float | None = None  # flush_interval_s after the batch's first message
        earliest = self._last_insert + self._min_insert_interval_s  # for a full batch
        while not stop.is_set():
            now = loop.time()
            if deadline is not None and now >= deadline:
                break
            full = events >= self._batch_size
            if full and now >= earliest:
                break
            # Short waits keep stop responsive; a full batch wakes for its insert interval.
            wakes = [now + self._fetch_wait_max_s]
            if deadline is not None:
                wakes.append(deadline)
            if full:
                wakes.append(earliest)
            wait = min(wakes) - now
            if wait < 0.01:
                break
            if events >= self._max_insert_rows:  # as big as an insert gets: wait, fetch no more
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
                continue
            room = (self._max_insert_rows if full else self._batch_size) - events
            want = max(1, room // largest) if largest else 1
            try:
                fetched = await subscription.fetch(want, timeout=wait)
            except (NatsTimeoutError, TimeoutError):
                continue
            except ConnectionClosedError:
                raise
            except NatsError as exc:
                # A reconnect or a server-side hiccup: messages held so far stay unacked and
                # are still this batch's; try again shortly.
                logger.warning("analytics: fetch failed, retrying: %s", exc)
                await asyncio.sleep(wait)
                continue
            if fetched and deadline is None:
                deadline = loop.time() + self._flush_interval_s
            for message in fetched:
                delivery = await self._decode(message)
                if delivery is not None:
                    deliveries.append(delivery)
                    events += len(delivery.events)
                    largest = max(largest, len(delivery.events))
        return deliveries

    async def _decode(self, message: Msg) -> _Delivery | None:
        events, refused = decode_events(message.data)
        if refused:
            logger.error(
                "analytics: %d undecodable lines in a message of %d (first: %s)",
                len(refused),
                len(refused) + len(events),
                refused[0],
            )
        if not events:
            # Redelivering it would never help.
            await message.term()
            return None
        return _Delivery(message, events)

    async def _process(self, deliveries: Sequence[_Delivery]) -> None:
        unique: dict[str, AnalyticsEvent] = {}
        suspects: set[str] = set()
        for delivery in deliveries:
            for event in delivery.events:
                unique.setdefault(event.event_id, event)
                if delivery.redelivered:
                    suspects.add(event.event_id)
        received = sum(len(delivery.events) for delivery in deliveries)
        try:
            stored: set[str] = set()
            if suspects:
                stored = await asyncio.to_thread(
                    self._store.stored_event_ids, [unique[event_id] for event_id in suspects]
                )
            batch = [event for event_id, event in unique.items() if event_id not in stored]
            if batch:  # an insert of nothing makes no part: it does not start the interval
                self._last_insert = asyncio.get_running_loop().time()
            await asyncio.to_thread(self._store.insert, batch)
        except Exception as exc:
            logger.warning("analytics: insert of %d events failed, naking: %s", received, exc)
            for delivery in deliveries:
                await delivery.message.nak(delay=self._nak_delay(delivery.message))
            return
        if len(batch) < received:
            logger.info(
                "analytics: %d of %d events already written (redelivered or repeated), "
                "acknowledged without a second row",
                received - len(batch),
                received,
            )
        metrics.analytics_events_batched.inc(len(batch))
        await self._acknowledge([delivery.message for delivery in deliveries])

    async def _acknowledge(self, messages: Sequence[Msg]) -> None:
        """Acks after a successful insert. Tests override it to crash between the two."""
        for message in messages:
            await message.ack()
        metrics.nats_messages_processed.labels(subject=self._subject).inc(len(messages))

    def _nak_delay(self, message: Msg) -> float:
        deliveries = message.metadata.num_delivered or 1
        return float(min(self._nak_delay_max_s, 0.5 * 2 ** min(deliveries - 1, 16)))
