"""JourneyScheduleWorkflow: one firing of a schedule-triggered journey's Temporal Schedule.

The Schedule (created when the journey is published, removed when it is paused or archived)
starts this workflow at 00:00 UTC the day before each target day. It walks the audience page
by page through an activity that enters each customer with a run delayed until the target
day's wall time where they live, and continues as new when its history grows long, carrying
the cursor and the running totals.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from activities.journey_audience import (
        AudienceActivities,
        AudienceTotals,
        EnterAudiencePage,
        ScheduledAudience,
    )
    from domain.journey_schedules import day_for_run

# Set by Temporal on every workflow a Schedule starts: the time it was due, even when late.
SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")

PAGE_TIMEOUT = timedelta(minutes=10)
PAGE_HEARTBEAT = timedelta(minutes=1)
PAGE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=2)
)


@workflow.defn(name="JourneySchedule")
class JourneyScheduleWorkflow:
    @workflow.run
    async def run(self, request: ScheduledAudience) -> AudienceTotals:
        day = request.day or day_for_run(self._fired_at())
        totals = request.totals
        cursor = request.after
        while True:
            page = await workflow.execute_activity_method(
                AudienceActivities.enter_page,
                EnterAudiencePage(
                    tenant_id=request.tenant_id,
                    journey_id=request.journey_id,
                    day=day,
                    after=cursor,
                ),
                start_to_close_timeout=PAGE_TIMEOUT,
                heartbeat_timeout=PAGE_HEARTBEAT,
                retry_policy=PAGE_RETRY,
            )
            totals = totals.plus(page.totals)
            if page.next_cursor is None:
                return totals
            cursor = page.next_cursor
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(
                    request.model_copy(update={"day": day, "after": cursor, "totals": totals})
                )

    @staticmethod
    def _fired_at() -> datetime:
        scheduled = workflow.info().typed_search_attributes.get(SCHEDULED_START)
        return scheduled if scheduled is not None else workflow.now()
