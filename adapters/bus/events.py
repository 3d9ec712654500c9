"""The customer event queue between ingest and the trigger evaluator.

Two implementations behind one interface (``EventQueue``): JetStream when ``CE_NATS_URL`` is
set, the database when it is not (``up`` on one machine). Both promise the same thing: once
``publish`` returns, the events are durable, and each is handed to ``fetch`` until a consumer
``ack``\\ s it, however often consumers crash in between. Duplicates (the same tenant and event
id) are reported by ``publish`` and not queued again.

**JetStream.** Stream ``events``, subjects ``events.high``, ``events.normal``, ``events.low``
(one per priority band), WorkQueue retention: a message is deleted once acknowledged, so the
stream holds exactly the backlog, and when it reaches ``max_bytes`` new publishes are refused
(the ingest route answers 503, the sender retries) rather than old events dropped. The events
themselves are kept in the database by the evaluator, which is where journeys read them, so
nothing is lost by not keeping acknowledged messages. ``Nats-Msg-Id`` is ``<tenant>:<event
id>``: a publish repeated inside ``duplicate_window_s`` is dropped by the server and reported
as a duplicate. Each band has its own durable pull consumer (explicit acks, unlimited
redeliveries); ``fetch`` asks the high band first and goes down only when a band is empty, so a
backlog of low-priority events never delays a high-priority one by more than one batch.

**Database.** ``publish`` inserts the events into ``customer_events`` (a duplicate is a row
already there) before returning; unprocessed rows (``processed_at`` null) are the queue,
fetched most urgent first, then oldest first. A process that publishes wakes its own consumer
at once; other processes poll. After a crash, the unprocessed rows are simply fetched again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from adapters import metrics
from adapters.db.journeys import CustomerEventRepository
from domain.customer_events import BANDS_BY_URGENCY, CustomerEvent, PriorityBand

log = logging.getLogger(__name__)

STREAM = "events"
SUBJECT_PREFIX = "events"
DURABLE_PREFIX = "triggers"


class EventQueueUnavailable(RuntimeError):
    """The queue did not take the events; none of them counts as accepted."""


@dataclass(frozen=True, slots=True)
class Accepted:
    accepted: int
    duplicates: int


class EventDelivery(Protocol):
    """One event handed to a consumer, until it says what became of it."""

    @property
    def event(self) -> CustomerEvent: ...

    @property
    def redelivered(self) -> bool: ...

    async def ack(self) -> None:
        """Done with: never delivered again."""

    async def retry_later(self) -> None:
        """Not done: deliver it again after a delay that grows with each attempt."""

    async def drop(self) -> None:
        """Never deliverable (its tenant is gone): give up on it for good."""


class EventQueue(Protocol):
    async def start(self) -> None: ...

    async def publish(self, events: Sequence[CustomerEvent]) -> Accepted:
        """Durably queue ``events``; raises ``EventQueueUnavailable`` when it could not."""

    async def fetch(self, max_events: int, wait_s: float) -> list[EventDelivery]:
        """Up to ``max_events``, waiting at most about ``wait_s`` when none is ready."""


def _unique(events: Sequence[CustomerEvent]) -> list[CustomerEvent]:
    """The first of each (tenant, event id) in the batch."""
    seen: dict[str, CustomerEvent] = {}
    for event in events:
        seen.setdefault(event.dedup_key, event)
    return list(seen.values())


def retry_delay_s(attempt: int, maximum_s: float = 60.0) -> float:
    """0.5 s after the first failure, doubling up to ``maximum_s``."""
    return float(min(maximum_s, 0.5 * 2 ** min(max(attempt - 1, 0), 16)))


# --- JetStream -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JetStreamConfig:
    stream: str = STREAM
    subject_prefix: str = SUBJECT_PREFIX
    durable_prefix: str = DURABLE_PREFIX
    duplicate_window_s: float = 600.0
    max_bytes: int = 8 * 1024**3
    ack_wait_s: float = 60.0
    max_ack_pending: int = 10_000
    publish_timeout_s: float = 5.0
    publishes_in_flight: int = 64
    # How long an empty high or normal band is waited on before asking the next band.
    band_wait_s: float = 0.05

    def subject(self, band: PriorityBand) -> str:
        return f"{self.subject_prefix}.{band.value}"

    def durable(self, band: PriorityBand) -> str:
        return f"{self.durable_prefix}-{band.value}"


@dataclass(slots=True)
class _JetStreamDelivery:
    message: Msg
    event: CustomerEvent
    subject: str

    @property
    def redelivered(self) -> bool:
        return (self.message.metadata.num_delivered or 1) > 1

    async def ack(self) -> None:
        await self.message.ack()
        metrics.nats_messages_processed.labels(subject=self.subject).inc()

    async def retry_later(self) -> None:
        await self.message.nak(delay=retry_delay_s(self.message.metadata.num_delivered or 1))

    async def drop(self) -> None:
        await self.message.term()


class JetStreamEventQueue:
    def __init__(self, js: JetStreamContext, config: JetStreamConfig | None = None) -> None:
        self._js = js
        self._config = config or JetStreamConfig()
        self._subscriptions: dict[PriorityBand, JetStreamContext.PullSubscription] = {}

    @property
    def config(self) -> JetStreamConfig:
        return self._config

    async def start(self) -> None:
        """Creates the stream (or brings it to this configuration)."""
        config = self._config
        stream = StreamConfig(
            name=config.stream,
            subjects=[config.subject(band) for band in BANDS_BY_URGENCY],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            discard=DiscardPolicy.NEW,
            max_bytes=config.max_bytes,
            duplicate_window=config.duplicate_window_s,
        )
        try:
            await self._js.add_stream(stream)
        except BadRequestError:
            await self._js.update_stream(stream)

    async def publish(self, events: Sequence[CustomerEvent]) -> Accepted:
        unique = _unique(events)
        slots = asyncio.Semaphore(self._config.publishes_in_flight)

        async def one(event: CustomerEvent) -> bool:
            async with slots:
                ack = await self._js.publish(
                    self._config.subject(event.band),
                    event.model_dump_json().encode(),
                    timeout=self._config.publish_timeout_s,
                    # A publish repeated (by a client retry, or by this loop) is dropped.
                    headers={"Nats-Msg-Id": event.dedup_key},
                )
                return bool(ack.duplicate)

        try:
            duplicates = await asyncio.gather(*(one(event) for event in unique))
        except (NatsError, TimeoutError, OSError) as error:
            # Some may have landed: a retry of the whole batch finds those as duplicates.
            raise EventQueueUnavailable(f"JetStream did not take the events: {error!r}") from error
        repeated = sum(duplicates) + len(events) - len(unique)
        return Accepted(accepted=len(events) - repeated, duplicates=repeated)

    async def fetch(self, max_events: int, wait_s: float) -> list[EventDelivery]:
        config = self._config
        for position, band in enumerate(BANDS_BY_URGENCY):
            last = position == len(BANDS_BY_URGENCY) - 1
            wait = max(wait_s, config.band_wait_s) if last else config.band_wait_s
            subscription = await self._subscription(band)
            try:
                messages = await subscription.fetch(max_events, timeout=wait)
            except (NatsTimeoutError, TimeoutError):
                continue
            deliveries = [await self._decode(message, band) for message in messages]
            found = [delivery for delivery in deliveries if delivery is not None]
            if found:
                return list(found)
        return []

    async def _decode(self, message: Msg, band: PriorityBand) -> EventDelivery | None:
        try:
            event = CustomerEvent.model_validate_json(message.data)
        except ValidationError as error:
            # Only our own ingest publishes here; a body it did not write never will decode.
            log.error("events: dropping an undecodable message on %s: %s", message.subject, error)
            await message.term()
            return None
        return _JetStreamDelivery(message, event, self._config.subject(band))

    async def _subscription(self, band: PriorityBand) -> JetStreamContext.PullSubscription:
        subscription = self._subscriptions.get(band)
        if subscription is not None:
            return subscription
        config = self._config
        consumer = ConsumerConfig(
            durable_name=config.durable(band),
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=config.ack_wait_s,
            # Never give up on an accepted event: a failing one comes back with backoff.
            max_deliver=-1,
            max_ack_pending=config.max_ack_pending,
            filter_subject=config.subject(band),
        )
        try:
            await self._js.add_consumer(config.stream, consumer)
        except BadRequestError as error:
            log.warning("events: keeping consumer %s as it is: %s", config.durable(band), error)
        subscription = await self._js.pull_subscribe_bind(
            durable=config.durable(band), stream=config.stream
        )
        self._subscriptions[band] = subscription
        return subscription

    async def close(self) -> None:
        for subscription in self._subscriptions.values():
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        self._subscriptions.clear()


# --- the database ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Held:
    """An event this process was handed: in a consumer's hands, or waiting out a retry delay."""

    attempts: int = 0
    not_before: float = 0.0
    in_flight: bool = False


class StoredEventQueue:
    """The queue as the unprocessed rows of ``customer_events``.

    Meant for one consuming process per database (``up``); a second one would be handed the
    same rows, which processing tolerates (it is idempotent) but wastes.
    """

    def __init__(self, events: CustomerEventRepository, *, poll_interval_s: float = 0.5) -> None:
        self._events = events
        self._poll_interval_s = poll_interval_s
        self._wake = asyncio.Event()
        self._held: dict[tuple[str, str], _Held] = {}

    async def start(self) -> None:
        return None

    async def publish(self, events: Sequence[CustomerEvent]) -> Accepted:
        unique = _unique(events)
        try:
            new = await self._events.store_new(unique)
        except (SQLAlchemyError, OSError) as error:
            raise EventQueueUnavailable(f"the database did not take the events: {error}") from error
        self._wake.set()
        return Accepted(accepted=len(new), duplicates=len(events) - len(new))

    async def fetch(self, max_events: int, wait_s: float) -> list[EventDelivery]:
        deadline = time.monotonic() + wait_s
        while True:
            self._wake.clear()
            now = time.monotonic()
            skip = [
                key for key, held in self._held.items() if held.in_flight or held.not_before > now
            ]
            found = await self._events.pending(max_events, skip=skip)
            if found:
                deliveries: list[EventDelivery] = []
                for event in found:
                    held = self._held.setdefault((event.tenant_id, event.event_id), _Held())
                    held.in_flight = True
                    deliveries.append(_StoredDelivery(self, event, held.attempts > 0))
                return deliveries
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(remaining, self._poll_interval_s))

    async def settle(self, event: CustomerEvent, *, retry: bool, drop: bool = False) -> None:
        key = (event.tenant_id, event.event_id)
        if drop:
            # The row stays, for the record, but leaves the queue.
            await self._events.mark_processed(event.tenant_id, event.event_id, datetime.now(UTC))
        if not retry:
            self._held.pop(key, None)
            return
        held = self._held.setdefault(key, _Held())
        held.attempts += 1
        held.in_flight = False
        held.not_before = time.monotonic() + retry_delay_s(held.attempts)


@dataclass(frozen=True, slots=True)
class _StoredDelivery:
    queue: StoredEventQueue
    event: CustomerEvent
    redelivered: bool

    async def ack(self) -> None:
        await self.queue.settle(self.event, retry=False)

    async def retry_later(self) -> None:
        await self.queue.settle(self.event, retry=True)

    async def drop(self) -> None:
        await self.queue.settle(self.event, retry=False, drop=True)
