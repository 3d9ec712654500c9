"""Entering a schedule-triggered journey's audience, one page of customers at a time.

The journey's Temporal Schedule starts ``JourneyScheduleWorkflow`` the day before each target
day (``domain.journey_schedules``); the workflow calls ``enter_page`` until the audience is
exhausted. For each customer the activity computes the target day's wall time in the
customer's time zone and enters them (entry rules apply) with a run that starts then.

A page is safe to retry: entries are keyed by (journey, customer, day), so a customer the
first attempt entered is found entered, not entered twice. Nothing happens for a journey that
is no longer published (paused or archived after the Schedule fired).
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field
from temporalio import activity

from activities.journey_entry import JourneyStarter
from adapters.db.journeys import CustomerProfiles, JourneyRepository
from domain.bidding.ports import Clock
from domain.delivery import zone
from domain.entry import Verdict, scheduled_entry_id
from domain.journey_schedules import applies_on, local_start
from domain.journeys import ScheduleTrigger

PAGE_SIZE = 200


class AudienceTotals(BaseModel):
    model_config = ConfigDict(frozen=True)

    entered: int = 0
    inside: int = 0  # already in the journey: left there
    refused: int = 0  # the entry rules said no
    too_late: int = 0  # the local time had passed where they live

    def plus(self, other: AudienceTotals) -> AudienceTotals:
        return AudienceTotals(
            entered=self.entered + other.entered,
            inside=self.inside + other.inside,
            refused=self.refused + other.refused,
            too_late=self.too_late + other.too_late,
        )


class ScheduledAudience(BaseModel):
    """What the Schedule starts the workflow with; ``day`` is set for a one-off schedule (and
    carried across continue-as-new), otherwise derived from when the Schedule fired."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str
    journey_id: str
    day: date | None = None
    after: str | None = None
    totals: AudienceTotals = Field(default_factory=AudienceTotals)


class EnterAudiencePage(BaseModel):
    model_config = ConfigDict(frozen=True)

    tenant_id: str
    journey_id: str
    day: date
    after: str | None = None
    page_size: int = Field(default=PAGE_SIZE, gt=0, le=1000)


class AudiencePage(BaseModel):
    model_config = ConfigDict(frozen=True)

    totals: AudienceTotals
    next_cursor: str | None
    stopped: str = ""  # why nobody was entered at all, if so


class AudienceActivities:
    def __init__(
        self,
        journeys: JourneyRepository,
        profiles: CustomerProfiles,
        starter: JourneyStarter,
        clock: Clock,
    ) -> None:
        self._journeys = journeys
        self._profiles = profiles
        self._starter = starter
        self._clock = clock

    def all(self) -> list[object]:
        return [self.enter_page]

    @activity.defn(name="journey.enter_audience_page")
    async def enter_page(self, request: EnterAudiencePage) -> AudiencePage:
        journey = await self._journeys.live_one(request.tenant_id, request.journey_id)
        if journey is None:
            return AudiencePage(totals=AudienceTotals(), next_cursor=None, stopped="not published")
        trigger = journey.definition.trigger
        if not isinstance(trigger, ScheduleTrigger) or not applies_on(trigger, request.day):
            return AudiencePage(
                totals=AudienceTotals(), next_cursor=None, stopped="not scheduled that day"
            )
        customers, cursor = await self._profiles.customers(
            request.tenant_id, segment=trigger.segment, after=request.after, limit=request.page_size
        )
        counts = {"entered": 0, "inside": 0, "refused": 0, "too_late": 0}
        for customer in customers:
            activity.heartbeat(customer.user_id)
            starts_at = local_start(request.day, trigger.at, zone(customer.timezone))
            now = self._clock.now()
            if starts_at <= now:
                counts["too_late"] += 1
                continue
            outcome = await self._starter.enter(
                request.tenant_id,
                request.journey_id,
                customer.user_id,
                entry_id=scheduled_entry_id(request.journey_id, customer.user_id, request.day),
                trigger=None,
                at=starts_at,
                start_delay=starts_at - now,
            )
            if outcome.verdict is Verdict.ENTER:
                counts["entered"] += 1
            elif outcome.verdict is Verdict.INSIDE:
                counts["inside"] += 1
            else:
                counts["refused"] += 1
        return AudiencePage(totals=AudienceTotals(**counts), next_cursor=cursor)
