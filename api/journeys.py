"""The API's side of journeys: their repository, and the Temporal Schedule of a
schedule-triggered journey.

A published journey with a schedule trigger has one Schedule, id
``journey-schedule-{tenant}-{journey}``, firing ``JourneySchedule`` at 00:00 UTC the day
before each target day (``domain.journey_schedules``). Publishing creates or replaces it,
pausing and archiving delete it, resuming creates it again. The workflow it starts checks the
journey is still published before entering anyone, so a Schedule that outlives its journey
(Temporal was down when it was paused) enters no one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from fastapi import HTTPException
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from activities.journey_audience import ScheduledAudience
from adapters.db.journeys import JourneyRepository
from domain.bidding.ports import Clock
from domain.journey_schedules import fire_times, last_start, target_day
from domain.journeys import JourneyDefinition, ScheduleTrigger
from temporal.search_attributes import JOURNEY_ID, TENANT_ID
from temporal.task_queues import PLATFORM
from workflows.journey_schedule import JourneyScheduleWorkflow

log = logging.getLogger(__name__)

# A run that could not start on time (server or workers down) still starts this much later;
# customers whose local time has passed by then are skipped by the run.
CATCHUP_WINDOW = timedelta(hours=12)
RPC_TIMEOUT = timedelta(seconds=10)


@dataclass
class JourneyServices:
    """Built by ``workers.runtime``; the journey routes read it from app state."""

    journeys: JourneyRepository
    # Connected on first use: only schedule-triggered journeys need Temporal here.
    temporal: Callable[[], Awaitable[Client]]
    clock: Clock
    task_queue: str = PLATFORM  # where scheduled runs go


class ScheduleInPastError(ValueError):
    """A one-off schedule whose day has already passed everywhere."""


def schedule_id(tenant_id: str, journey_id: str) -> str:
    return f"journey-schedule-{tenant_id}-{journey_id}"


def _temporal_weekday(python_weekday: int) -> int:
    """Temporal counts days of the week from Sunday (0), Python from Monday."""
    return (python_weekday + 1) % 7


def schedule_spec(trigger: ScheduleTrigger, now: datetime) -> ScheduleSpec:
    """When the Schedule fires, in UTC; raises ``ScheduleInPastError`` for a one-off day that
    has passed everywhere."""
    fires = fire_times(trigger)
    midnight = (ScheduleRange(0),)
    if fires.once is None:
        return ScheduleSpec(
            calendars=[
                ScheduleCalendarSpec(
                    second=midnight,
                    minute=midnight,
                    hour=midnight,
                    day_of_week=[
                        ScheduleRange(day)
                        for day in sorted(_temporal_weekday(day) for day in fires.weekdays)
                    ],
                    comment="the day before each target weekday",
                )
            ],
            time_zone_name="UTC",
        )
    day = target_day(trigger)
    assert day is not None  # a one-off schedule has its day
    at = datetime.combine(fires.once, time(0), tzinfo=UTC)
    if at <= now:
        # Published late: fire at the next whole minute, for the zones still to come.
        at = (now + timedelta(minutes=1)).replace(second=0, microsecond=0)
    if at >= last_start(day, trigger.at):
        raise ScheduleInPastError(f"{day} at {trigger.at} has passed in every time zone")
    return ScheduleSpec(
        calendars=[
            ScheduleCalendarSpec(
                second=(ScheduleRange(0),),
                minute=(ScheduleRange(at.minute),),
                hour=(ScheduleRange(at.hour),),
                day_of_month=(ScheduleRange(at.day),),
                month=(ScheduleRange(at.month),),
                year=(ScheduleRange(at.year),),
                comment=f"once, for {day}",
            )
        ],
        time_zone_name="UTC",
    )


def _unavailable(error: Exception) -> HTTPException:
    log.warning("temporal call failed: %s", error)
    return HTTPException(
        status_code=503,
        detail={
            "code": "workflows_unavailable",
            "message": "the journey is saved, but its schedule could not be set: try again",
        },
        headers={"Retry-After": "2"},
    )


async def _client(services: JourneyServices) -> Client:
    try:
        return await services.temporal()
    except (RuntimeError, OSError) as error:
        raise _unavailable(error) from error


async def remove_schedule(services: JourneyServices, tenant_id: str, journey_id: str) -> None:
    client = await _client(services)
    try:
        await client.get_schedule_handle(schedule_id(tenant_id, journey_id)).delete(
            rpc_timeout=RPC_TIMEOUT
        )
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise _unavailable(error) from error


async def set_schedule(
    services: JourneyServices,
    tenant_id: str,
    journey_id: str,
    definition: JourneyDefinition | None,
) -> None:
    """Make the journey's Schedule match ``definition`` (its live version, or None when it
    admits no one): created or replaced for a schedule trigger, removed otherwise."""
    trigger = definition.trigger if definition is not None else None
    if not isinstance(trigger, ScheduleTrigger):
        await remove_schedule(services, tenant_id, journey_id)
        return
    spec = schedule_spec(trigger, services.clock.now())
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            JourneyScheduleWorkflow.run,
            ScheduledAudience(tenant_id=tenant_id, journey_id=journey_id, day=target_day(trigger)),
            id=f"journey-audience-{tenant_id}-{journey_id}",
            task_queue=services.task_queue,
            typed_search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(TENANT_ID, tenant_id),
                    SearchAttributePair(JOURNEY_ID, journey_id),
                ]
            ),
        ),
        spec=spec,
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=CATCHUP_WINDOW),
    )
    await remove_schedule(services, tenant_id, journey_id)
    client = await _client(services)
    try:
        await client.create_schedule(
            schedule_id(tenant_id, journey_id), schedule, rpc_timeout=RPC_TIMEOUT
        )
    except ScheduleAlreadyRunningError:
        # Another publish of the same journey got there between our delete and create.
        return
    except RPCError as error:
        raise _unavailable(error) from error


def check_schedule(definition: JourneyDefinition, now: datetime) -> None:
    """Raise ``ScheduleInPastError`` when the definition's schedule can no longer fire."""
    if isinstance(definition.trigger, ScheduleTrigger):
        schedule_spec(definition.trigger, now)


def needs_schedule_sync(*definitions: JourneyDefinition | None) -> bool:
    """Whether any of these versions is schedule-triggered: only then is Temporal asked."""
    return any(
        definition is not None and isinstance(definition.trigger, ScheduleTrigger)
        for definition in definitions
    )
