"""The trigger evaluator against a real database (SQLite and PostgreSQL) and a real Temporal dev
server running the stand-in "Journey" workflow."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from activities.journey_entry import JourneyStarter
from adapters.bus.events import StoredEventQueue
from adapters.db.tables import customer_events_table, journey_entries_table
from domain.customer_events import CustomerEvent, EventSource
from domain.entry import event_entry_id
from domain.journey_lifecycle import JourneyMove
from domain.journey_runs import JourneyRunInput, workflow_id
from temporal.search_attributes import CUSTOMER_ID, JOURNEY_ID, TENANT_ID
from tests.integration.journeys.conftest import NOW, Kit, definition
from tests.integration.journeys.stand_in import StandInJourney
from tests.support.temporal import running_worker
from workers.triggers import Outcome, TriggerEvaluator


class HandClock:
    def __init__(self, at: datetime) -> None:
        self.at = at
        self.ticks = 0.0

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        # Moves on every read, so the evaluator never reuses its list of live journeys.
        self.ticks += 10.0
        return self.ticks


@dataclass
class Triggers:
    kit: Kit
    client: Client
    clock: HandClock
    evaluator: TriggerEvaluator
    queue: StoredEventQueue

    def event(self, name: str = "cart_abandoned", **overrides: Any) -> CustomerEvent:
        values: dict[str, Any] = {
            "tenant_id": self.kit.tenant_id,
            "event_id": str(uuid.uuid4()),
            "customer_id": "cust-1",
            "name": name,
            "source": EventSource.WEB,
            "occurred_at": self.clock.at,
            "received_at": self.clock.at,
            "properties": {},
            "traits": {},
        }
        values.update(overrides)
        return CustomerEvent.model_validate(values)

    def run(self, journey_id: str, customer_id: str = "cust-1") -> Any:
        return self.client.get_workflow_handle(
            workflow_id(self.kit.tenant_id, journey_id, customer_id)
        )

    async def leave(self, journey_id: str, customer_id: str = "cust-1") -> None:
        """The customer finishes the journey: the run ends and closes its entry, as the real
        workflow's last activity does."""
        handle = self.run(journey_id, customer_id)
        started: JourneyRunInput = await handle.query(StandInJourney.started_with)
        await handle.signal(StandInJourney.leave)
        await handle.result()
        await self.kit.entries.close(started.entry_id, "exit", self.clock.at)


@pytest.fixture
async def triggers(kit: Kit, local_env: WorkflowEnvironment) -> AsyncIterator[Triggers]:
    clock = HandClock(NOW)
    async with running_worker(local_env.client, workflows=[StandInJourney]) as task_queue:

        async def client() -> Client:
            return local_env.client

        queue = StoredEventQueue(kit.events)
        evaluator = TriggerEvaluator(
            queue,
            events=kit.events,
            profiles=kit.profiles,
            journeys=kit.journeys,
            entries=kit.entries,
            starter=JourneyStarter(kit.entries, client, task_queue=task_queue),
            clock=clock,
        )
        yield Triggers(kit, local_env.client, clock, evaluator, queue)


async def test_triggering_event_starts_the_journey_with_the_event_as_signal(
    triggers: Triggers,
) -> None:
    journey_id = await triggers.kit.publish(definition())
    event = triggers.event(properties={"total": 30}, traits={"email": "ada@example.com"})

    report = await triggers.evaluator.process(event)

    assert report.entered == [journey_id]
    handle = triggers.run(journey_id)
    started: JourneyRunInput = await handle.query(StandInJourney.started_with)
    assert started.trigger_event is not None
    assert started.trigger_event.event_id == event.event_id
    assert (started.journey_version, started.entry_number) == (1, 1)
    assert await handle.query(StandInJourney.signals) == [event.event_id]
    description = await handle.describe()
    attributes = description.typed_search_attributes
    assert attributes.get(TENANT_ID) == triggers.kit.tenant_id
    assert attributes.get(JOURNEY_ID) == journey_id
    assert attributes.get(CUSTOMER_ID) == "cust-1"
    profile = await triggers.kit.profiles.get(triggers.kit.tenant_id, "cust-1")
    assert profile is not None
    assert profile.traits == {"email": "ada@example.com"}


async def test_later_events_are_signalled_to_the_running_journey(triggers: Triggers) -> None:
    journey_id = await triggers.kit.publish(definition())
    first = triggers.event()
    purchase = triggers.event("purchase")
    again = triggers.event()

    await triggers.evaluator.process(first)
    report = await triggers.evaluator.process(purchase)
    repeat = await triggers.evaluator.process(again)

    assert report.signalled == [journey_id]
    assert report.entered == []
    assert repeat.signalled == [journey_id]
    assert repeat.entered == []
    signals = await triggers.run(journey_id).query(StandInJourney.signals)
    assert signals == [first.event_id, purchase.event_id, again.event_id]
    assert len(await triggers.kit.entries.history(journey_id, "cust-1")) == 1


async def test_traits_apply_before_conditions_are_evaluated(triggers: Triggers) -> None:
    vip_only = definition(
        trigger={
            "type": "event",
            "event": "cart_abandoned",
            "where": [
                {"path": "event.total", "op": "gte", "value": 100},
                {"path": "profile.tier", "op": "eq", "value": "vip"},
            ],
        }
    )
    journey_id = await triggers.kit.publish(vip_only)

    small = await triggers.evaluator.process(
        triggers.event(properties={"total": 20}, traits={"tier": "vip"})
    )
    big = await triggers.evaluator.process(
        triggers.event(properties={"total": 120}, traits={"tier": "vip"})
    )

    assert small.entered == []
    assert big.entered == [journey_id]


async def test_entering_a_segment_starts_its_journey_once(triggers: Triggers) -> None:
    journey_id = await triggers.kit.publish(
        definition(trigger={"type": "segment", "segment": "vip"}, entry={"reentry": True})
    )

    joined = await triggers.evaluator.process(triggers.event("login", traits={"segments": ["vip"]}))
    await triggers.leave(journey_id)
    still_vip = await triggers.evaluator.process(
        triggers.event("login", traits={"segments": ["vip", "eu"]})
    )

    assert joined.segments_entered == ["vip"]
    assert joined.entered == [journey_id]
    assert still_vip.segments_entered == ["eu"]
    assert still_vip.entered == []


async def test_reentry_off_admits_a_customer_once(triggers: Triggers) -> None:
    journey_id = await triggers.kit.publish(definition(entry={"reentry": False}))

    await triggers.evaluator.process(triggers.event())
    await triggers.leave(journey_id)
    second = await triggers.evaluator.process(triggers.event())

    assert second.entered == []
    assert "re-entry" in second.refused[journey_id]


async def test_max_entries_and_min_interval_limit_reentry(triggers: Triggers) -> None:
    journey_id = await triggers.kit.publish(
        definition(entry={"reentry": True, "max_entries": 2, "min_interval": "P1D"})
    )

    await triggers.evaluator.process(triggers.event())
    await triggers.leave(journey_id)
    triggers.clock.at += timedelta(hours=2)
    too_soon = await triggers.evaluator.process(triggers.event())
    triggers.clock.at += timedelta(days=1)
    second = await triggers.evaluator.process(triggers.event())
    await triggers.leave(journey_id)
    triggers.clock.at += timedelta(days=2)
    third = await triggers.evaluator.process(triggers.event())

    assert journey_id in too_soon.refused
    assert second.entered == [journey_id]
    assert "2 times" in third.refused[journey_id]
    started: JourneyRunInput = await triggers.run(journey_id).query(StandInJourney.started_with)
    assert started.entry_number == 2


async def test_paused_journey_admits_no_one_and_resumed_one_does(triggers: Triggers) -> None:
    journey_id = await triggers.kit.publish(definition())
    await triggers.kit.journeys.move(triggers.kit.tenant_id, journey_id, JourneyMove.PAUSE, NOW)

    paused = await triggers.evaluator.process(triggers.event())
    with pytest.raises(RPCError) as missing:
        await triggers.run(journey_id).describe()
    await triggers.kit.journeys.move(triggers.kit.tenant_id, journey_id, JourneyMove.RESUME, NOW)
    resumed = await triggers.evaluator.process(triggers.event())

    assert paused.entered == []
    assert journey_id not in paused.refused
    assert missing.value.status == RPCStatusCode.NOT_FOUND
    assert resumed.entered == [journey_id]


async def test_customers_inside_a_paused_journey_still_get_events(triggers: Triggers) -> None:
    journey_id = await triggers.kit.publish(definition())
    await triggers.evaluator.process(triggers.event())
    await triggers.kit.journeys.move(triggers.kit.tenant_id, journey_id, JourneyMove.PAUSE, NOW)

    purchase = triggers.event("purchase")
    report = await triggers.evaluator.process(purchase)

    assert report.signalled == [journey_id]
    assert purchase.event_id in await triggers.run(journey_id).query(StandInJourney.signals)


async def test_redelivered_event_does_not_enter_twice(triggers: Triggers) -> None:
    journey_id = await triggers.kit.publish(definition(entry={"reentry": True}))
    event = triggers.event()
    await triggers.evaluator.process(event)
    # A crash after the run started but before the event was marked processed.
    async with triggers.kit.database.async_session.begin() as session:
        await session.execute(
            update(customer_events_table)
            .where(customer_events_table.c.event_id == event.event_id)
            .values(processed_at=None)
        )

    again = await triggers.evaluator.process(event)
    duplicate = await triggers.evaluator.process(event)

    assert again.entered == [journey_id]  # the same entry, found again
    assert duplicate.outcome is Outcome.DUPLICATE
    assert len(await triggers.kit.entries.history(journey_id, "cust-1")) == 1
    handle = triggers.run(journey_id)
    assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
    assert await handle.query(StandInJourney.signals) == [event.event_id, event.event_id]


async def test_crash_between_entry_and_start_is_finished_on_redelivery(triggers: Triggers) -> None:
    journey_id = await triggers.kit.publish(definition())
    event = triggers.event()
    # The first attempt wrote the entry and died before starting the run.
    entry_id = event_entry_id(journey_id, "cust-1", event.event_id)
    await triggers.kit.entries.admit(
        triggers.kit.tenant_id,
        journey_id,
        "cust-1",
        entry_id=entry_id,
        trigger_event_id=event.event_id,
        at=NOW,
    )

    report = await triggers.evaluator.process(event)

    assert report.entered == [journey_id]
    started: JourneyRunInput = await triggers.run(journey_id).query(StandInJourney.started_with)
    assert started.entry_id == entry_id


async def test_stale_open_entry_is_closed_and_the_customer_enters_again(
    triggers: Triggers,
) -> None:
    journey_id = await triggers.kit.publish(definition(entry={"reentry": True}))
    # An entry whose run was terminated by an operator before it could close the entry.
    await triggers.kit.entries.admit(
        triggers.kit.tenant_id,
        journey_id,
        "cust-1",
        entry_id="lost-entry",
        trigger_event_id="old",
        at=NOW - timedelta(hours=1),
    )

    report = await triggers.evaluator.process(triggers.event())

    assert report.entered == [journey_id]
    async with triggers.kit.database.async_session() as session:
        closed = (
            (
                await session.execute(
                    journey_entries_table.select().where(journey_entries_table.c.id == "lost-entry")
                )
            )
            .mappings()
            .one()
        )
    assert closed["exit_reason"] == "run not found"


async def test_customer_inside_an_earlier_run_gets_the_event_and_no_new_entry(
    triggers: Triggers,
) -> None:
    journey_id = await triggers.kit.publish(definition(entry={"reentry": True}))
    first = triggers.event()
    await triggers.evaluator.process(first)
    # The database says the customer left, but the run is still finishing.
    started: JourneyRunInput = await triggers.run(journey_id).query(StandInJourney.started_with)
    await triggers.kit.entries.close(started.entry_id, "exit", NOW)

    second = triggers.event()
    report = await triggers.evaluator.process(second)

    assert report.entered == []
    assert report.signalled == [journey_id]
    assert len(await triggers.kit.entries.history(journey_id, "cust-1")) == 1
    assert second.event_id in await triggers.run(journey_id).query(StandInJourney.signals)


async def test_stored_queue_feeds_the_evaluator_in_priority_order(triggers: Triggers) -> None:
    journey_id = await triggers.kit.publish(definition(entry={"reentry": True}))
    low = triggers.event("browse", customer_id="a", priority=10)
    high = triggers.event(customer_id="b", priority=90)
    await triggers.queue.publish([low, high])

    deliveries = await triggers.queue.fetch(1, 0.1)
    await triggers.evaluator.process_batch(deliveries)
    rest = await triggers.queue.fetch(10, 0.1)
    await triggers.evaluator.process_batch(rest)

    assert [d.event.event_id for d in deliveries] == [high.event_id]
    assert [d.event.event_id for d in rest] == [low.event_id]
    assert await triggers.queue.fetch(10, 0.05) == []
    assert (
        await triggers.run(journey_id, "b").describe()
    ).status is WorkflowExecutionStatus.RUNNING
