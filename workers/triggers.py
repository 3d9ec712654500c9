"""The trigger evaluator: ingested events in, profiles updated and journeys entered or signalled.

For each event, in order per customer:

1. store it (``customer_events``, once per tenant and event id); an event already processed
   is a duplicate and stops here;
2. apply its ``traits`` to the profile (creating it), noting the segments it newly entered;
3. signal every journey the customer is inside (their open entries) with the event: their
   runs decide whether they were waiting for it, or whether it is an exit criterion;
4. enter the customer into every published journey the event triggers (name and ``where``
   conditions) or whose trigger segment they just entered, if its entry rules allow
   (``activities.journey_entry``);
5. mark it processed, then acknowledge it to the queue.

A crash anywhere before 5 brings the event back (JetStream redelivers what was not
acknowledged; the database queue fetches what is not processed), and every step is safe to
repeat: the store is keyed, traits are set rather than added, entries are keyed by their
event, and runs ignore events they have seen. A failing step (the database or Temporal
unreachable) sends the event back with growing delays, never away.

Events of one customer are processed one after the other, in the order they happened within
a fetched batch; different customers are processed concurrently.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from temporalio.service import RPCError

from activities.journey_entry import JourneyStarter
from adapters.bus.events import EventDelivery, EventQueue
from adapters.db.journeys import (
    CustomerEventRepository,
    CustomerProfiles,
    EntryRepository,
    JourneyRepository,
    LiveJourney,
    Stored,
)
from domain.bidding.ports import Clock
from domain.customer_events import CustomerEvent, condition_context, entered_segments
from domain.entry import Verdict, event_entry_id
from domain.journeys import EventTrigger, SegmentTrigger, all_hold

log = logging.getLogger(__name__)

# An open entry whose run Temporal does not know is left alone this long after it was
# written: its start may still be on the way from another worker.
STALE_ENTRY_AFTER = timedelta(minutes=10)


class Outcome(StrEnum):
    PROCESSED = "processed"
    DUPLICATE = "duplicate"


@dataclass
class Report:
    """What one event did, for logs and tests."""

    outcome: Outcome
    signalled: list[str] = field(default_factory=list)  # journey ids
    entered: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # journey id -> why
    segments_entered: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EvaluatorConfig:
    batch_size: int = 100
    concurrency: int = 8
    fetch_wait_s: float = 0.5
    journeys_ttl_s: float = 1.0  # how long a tenant's list of live journeys is reused


class TriggerEvaluator:
    def __init__(
        self,
        queue: EventQueue,
        *,
        events: CustomerEventRepository,
        profiles: CustomerProfiles,
        journeys: JourneyRepository,
        entries: EntryRepository,
        starter: JourneyStarter,
        clock: Clock,
        config: EvaluatorConfig | None = None,
    ) -> None:
        self._queue = queue
        self._events = events
        self._profiles = profiles
        self._journeys = journeys
        self._entries = entries
        self._starter = starter
        self._clock = clock
        self._config = config or EvaluatorConfig()
        self._live: dict[str, tuple[float, list[LiveJourney]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    # --- the loop -------------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.get_running_loop().create_task(self.run(self._stop), name="triggers")

    async def stop(self) -> None:
        """Finish the batch in hand, then stop."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stop.set()
        await task

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def run(self, stop: asyncio.Event) -> None:
        await self._queue.start()
        while not stop.is_set():
            try:
                deliveries = await self._queue.fetch(
                    self._config.batch_size, self._config.fetch_wait_s
                )
            except Exception as error:  # the queue is away: try again shortly, never give up
                log.warning("triggers: fetching events failed: %r", error)
                await asyncio.sleep(1.0)
                continue
            if not deliveries:
                continue
            try:
                await self.process_batch(deliveries)
            except Exception:
                # A bug, not an outage: the events stay unacknowledged and come back.
                log.exception("triggers: a batch of %d events failed", len(deliveries))
                await asyncio.sleep(1.0)

    async def process_batch(self, deliveries: Sequence[EventDelivery]) -> None:
        by_customer: defaultdict[tuple[str, str], list[EventDelivery]] = defaultdict(list)
        for delivery in deliveries:
            by_customer[(delivery.event.tenant_id, delivery.event.customer_id)].append(delivery)
        slots = asyncio.Semaphore(self._config.concurrency)

        async def customer(queue: list[EventDelivery]) -> None:
            async with slots:
                await self._process_in_order(queue)

        await asyncio.gather(*(customer(queue) for queue in by_customer.values()))

    async def _process_in_order(self, deliveries: list[EventDelivery]) -> None:
        ordered = sorted(deliveries, key=lambda delivery: delivery.event.occurred_at)
        for position, delivery in enumerate(ordered):
            try:
                await self.process(delivery.event)
            except IntegrityError as error:
                # Only a missing tenant makes these writes fail a constraint: it was deleted.
                log.error(
                    "triggers: dropping event %s of tenant %s: %s",
                    delivery.event.event_id,
                    delivery.event.tenant_id,
                    type(error).__name__,
                )
                await delivery.drop()
                continue
            except (SQLAlchemyError, RPCError, OSError, RuntimeError, TimeoutError) as error:
                log.warning(
                    "triggers: event %s of tenant %s will be retried: %r",
                    delivery.event.event_id,
                    delivery.event.tenant_id,
                    error,
                )
                # Later events of the customer wait for it, so they are never applied first.
                for waiting in ordered[position:]:
                    await waiting.retry_later()
                return
            await delivery.ack()

    # --- one event ------------------------------------------------------------------------------

    async def process(self, event: CustomerEvent) -> Report:
        if await self._events.store(event) is Stored.PROCESSED:
            return Report(Outcome.DUPLICATE)
        now = self._clock.now()
        change = await self._profiles.apply_traits(
            event.tenant_id, event.customer_id, event.traits, now
        )
        report = Report(
            Outcome.PROCESSED, segments_entered=entered_segments(change.before, change.after)
        )
        ref = event.ref()
        handled: set[str] = set()
        for entry in await self._entries.open_for(event.tenant_id, event.customer_id):
            handled.add(entry.journey_id)
            if entry.trigger_event_id == event.event_id:
                # This event entered them before (a redelivery): make sure the run started.
                outcome = await self._starter.enter(
                    event.tenant_id,
                    entry.journey_id,
                    event.customer_id,
                    entry_id=entry.entry_id,
                    trigger=ref,
                    at=now,
                )
                _record(report, entry.journey_id, outcome.verdict, outcome.reason)
                continue
            if await self._starter.signal(
                event.tenant_id, entry.journey_id, event.customer_id, ref
            ):
                report.signalled.append(entry.journey_id)
            elif now - entry.entered_at > STALE_ENTRY_AFTER:
                # The run ended (or was terminated) without closing its entry.
                await self._entries.close(entry.entry_id, "run not found", now)
                handled.discard(entry.journey_id)
        context = condition_context(change.after, event.properties)
        for journey in await self._live_journeys(event.tenant_id):
            if journey.journey_id in handled or not _triggers(
                journey, event, context, report.segments_entered
            ):
                continue
            outcome = await self._starter.enter(
                event.tenant_id,
                journey.journey_id,
                event.customer_id,
                entry_id=event_entry_id(journey.journey_id, event.customer_id, event.event_id),
                trigger=ref,
                at=now,
            )
            _record(report, journey.journey_id, outcome.verdict, outcome.reason)
        await self._events.mark_processed(event.tenant_id, event.event_id, self._clock.now())
        return report

    async def _live_journeys(self, tenant_id: str) -> list[LiveJourney]:
        cached = self._live.get(tenant_id)
        moment = self._clock.monotonic()
        if cached is not None and cached[0] > moment:
            return cached[1]
        journeys = await self._journeys.live(tenant_id)
        self._live[tenant_id] = (moment + self._config.journeys_ttl_s, journeys)
        return journeys


def _record(report: Report, journey_id: str, verdict: Verdict, reason: str) -> None:
    if verdict is Verdict.ENTER:
        report.entered.append(journey_id)
    elif verdict is Verdict.INSIDE:
        report.signalled.append(journey_id)
    else:
        report.refused[journey_id] = reason


def _triggers(
    journey: LiveJourney,
    event: CustomerEvent,
    context: dict[str, object],
    segments_entered: Sequence[str],
) -> bool:
    trigger = journey.definition.trigger
    if isinstance(trigger, EventTrigger):
        return trigger.event == event.name and all_hold(trigger.where, dict(context))
    if isinstance(trigger, SegmentTrigger):
        return trigger.segment in segments_entered
    return False
