"""Schedule-triggered journeys: the audience run on Temporal's time-skipping server (days pass
in a moment) and a Schedule firing on the dev server, with the real audience activity over a
real database and the stand-in "Journey" workflow."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleHandle,
    WorkflowHandle,
)
from temporalio.testing import WorkflowEnvironment

from activities.journey_audience import AudienceActivities, AudienceTotals, ScheduledAudience
from activities.journey_entry import JourneyStarter
from adapters.system import SystemClock
from api.journeys import JourneyServices, schedule_id, set_schedule
from domain.entry import scheduled_entry_id
from domain.journey_lifecycle import JourneyMove
from domain.journey_runs import workflow_id
from domain.journey_schedules import day_for_run
from domain.journeys import JourneyDefinition
from tests.integration.journeys.conftest import Kit, definition
from tests.integration.journeys.stand_in import StandInJourney
from tests.support.temporal import new_task_queue, running_worker, time_skipping_server
from workflows.journey_schedule import SCHEDULED_START, JourneyScheduleWorkflow

CUSTOMERS = {
    "tokyo": ("Asia/Tokyo", ["vip"]),
    "paris": ("Europe/Paris", ["vip"]),
    "new-york": ("America/New_York", ["vip"]),
    "lagos": ("Africa/Lagos", []),  # not in the segment
}


def scheduled(**trigger: Any) -> JourneyDefinition:
    return definition(trigger={"type": "schedule", "at": "09:00", **trigger})


async def _customers(kit: Kit) -> None:
    for customer_id, (timezone, segments) in CUSTOMERS.items():
        await kit.profiles.apply_traits(
            kit.tenant_id,
            customer_id,
            {"timezone": timezone, "segments": segments},
            datetime.now(UTC),
        )


@pytest.fixture
async def skipping() -> AsyncIterator[WorkflowEnvironment]:
    async with time_skipping_server() as env:
        yield env


def _workers(kit: Kit, client: Client, task_queue: str) -> AudienceActivities:
    async def temporal() -> Client:
        return client

    return AudienceActivities(
        kit.journeys,
        kit.profiles,
        JourneyStarter(kit.entries, temporal, task_queue=task_queue),
        SystemClock(),
    )


async def test_scheduled_audience_starts_each_customer_at_their_local_time(
    kit: Kit, skipping: WorkflowEnvironment
) -> None:
    day = (datetime.now(UTC) + timedelta(days=3)).date()
    journey_id = await kit.publish(scheduled(date=day.isoformat(), segment="vip"))
    await _customers(kit)
    queue = new_task_queue()
    activities = _workers(kit, skipping.client, queue)

    async with running_worker(
        skipping.client,
        workflows=[JourneyScheduleWorkflow, StandInJourney],
        activities=[activities.enter_page],
        task_queue=queue,
    ):
        totals = await skipping.client.execute_workflow(
            JourneyScheduleWorkflow.run,
            ScheduledAudience(tenant_id=kit.tenant_id, journey_id=journey_id, day=day),
            id=f"audience-{journey_id}",
            task_queue=queue,
        )
        await skipping.sleep(timedelta(days=4))
        began = {
            customer: await skipping.client.get_workflow_handle(
                workflow_id(kit.tenant_id, journey_id, customer)
            ).query(StandInJourney.began_at)
            for customer in ("tokyo", "paris", "new-york")
        }

    assert totals == AudienceTotals(entered=3)
    expected = {"tokyo": 0, "paris": 8, "new-york": 14}  # 09:00 local, in UTC hours
    for customer, hour in expected.items():
        at = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
        # The delay was computed on this machine's clock, the start on the server's.
        assert abs(began[customer] - at) < timedelta(seconds=1), customer
    assert await kit.entries.history(journey_id, "lagos") == []


async def test_audience_run_applies_entry_rules_and_pauses(
    kit: Kit, skipping: WorkflowEnvironment
) -> None:
    day = (datetime.now(UTC) + timedelta(days=3)).date()
    once = await kit.publish(scheduled(date=day.isoformat(), segment="vip"))
    paused = await kit.publish(scheduled(date=day.isoformat()))
    await kit.journeys.move(kit.tenant_id, paused, JourneyMove.PAUSE, datetime.now(UTC))
    await _customers(kit)
    # Paris went through the journey before, and re-entry is off.
    await kit.entries.admit(
        kit.tenant_id,
        once,
        "paris",
        entry_id="earlier",
        trigger_event_id=None,
        at=datetime.now(UTC),
    )
    await kit.entries.close("earlier", "exit", datetime.now(UTC))
    queue = new_task_queue()
    activities = _workers(kit, skipping.client, queue)

    async with running_worker(
        skipping.client,
        workflows=[JourneyScheduleWorkflow, StandInJourney],
        activities=[activities.enter_page],
        task_queue=queue,
    ):
        totals = [
            await skipping.client.execute_workflow(
                JourneyScheduleWorkflow.run,
                ScheduledAudience(tenant_id=kit.tenant_id, journey_id=journey_id, day=day),
                id=f"audience-{journey_id}-{attempt}",
                task_queue=queue,
            )
            for journey_id in (once, paused)
            for attempt in (1, 2)  # a second run the same day enters no one twice
        ]

    assert totals[0] == AudienceTotals(entered=2, refused=1)
    assert totals[1] == totals[0]  # the same entries, found again
    assert totals[2] == totals[3] == AudienceTotals()  # paused: nobody
    assert len(await kit.entries.history(once, "tokyo")) == 1
    assert len(await kit.entries.history(once, "paris")) == 1
    assert await kit.entries.history(paused, "tokyo") == []


async def test_schedule_firing_enters_the_audience_for_the_next_day(
    kit: Kit, local_env: WorkflowEnvironment
) -> None:
    journey_id = await kit.publish(scheduled(weekdays=list(range(7))))
    await _customers(kit)
    queue = new_task_queue()
    activities = _workers(kit, local_env.client, queue)

    async def temporal() -> Client:
        return local_env.client

    services = JourneyServices(kit.journeys, temporal, SystemClock(), task_queue=queue)
    live = await kit.journeys.live_one(kit.tenant_id, journey_id)
    assert live is not None
    async with running_worker(
        local_env.client,
        workflows=[JourneyScheduleWorkflow, StandInJourney],
        activities=[activities.enter_page],
        task_queue=queue,
    ):
        await set_schedule(services, kit.tenant_id, journey_id, live.definition)
        schedule = local_env.client.get_schedule_handle(schedule_id(kit.tenant_id, journey_id))
        await schedule.trigger()
        try:
            run = await _first_run(local_env.client, schedule)
            result = await run.result()
            fired_at = (await run.describe()).typed_search_attributes.get(SCHEDULED_START)
        finally:
            await schedule.delete()

    assert result == AudienceTotals(entered=4)
    assert fired_at is not None
    entry_id = scheduled_entry_id(journey_id, "tokyo", day_for_run(fired_at))
    open_entries = await kit.entries.open_for(kit.tenant_id, "tokyo")
    assert [entry.entry_id for entry in open_entries] == [entry_id]


async def _first_run(
    client: Client, schedule: ScheduleHandle
) -> WorkflowHandle[Any, AudienceTotals]:
    for _ in range(400):
        description = await schedule.describe()
        if description.info.recent_actions:
            action = description.info.recent_actions[0].action
            assert isinstance(action, ScheduleActionExecutionStartWorkflow)
            return client.get_workflow_handle(
                action.workflow_id, run_id=action.first_execution_run_id, result_type=AudienceTotals
            )
        await asyncio.sleep(0.05)
    raise AssertionError("the schedule never started its workflow")
