"""The no-op baseline of bench/journeys.py: the journey's commands, in its order, doing nothing.

A module of its own, and a small one: the workflow sandbox imports a workflow's module afresh
for every run, so the baseline pays for importing this file as the journey pays for importing
``workflows.journey`` (and its package). Left in the bench script, the baseline would pay for
compiling the whole script on every run instead.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from temporal.search_attributes import CUSTOMER_ID, JOURNEY_ID, TENANT_ID

STEP_TIMEOUT = timedelta(seconds=30)
PAUSE = timedelta(seconds=1)


@activity.defn(name="bench.journey_step")
async def noop_step(step: str) -> bool:
    return True


@workflow.defn(name="BenchJourneyShape")
class JourneyShape:
    """Signal-with-start's ``event``, the search attributes, an activity, a one-second timer,
    three more activities: what the bench's journey issues, with tiny payloads."""

    def __init__(self) -> None:
        self._events: list[str] = []

    @workflow.signal(name="event")
    def event(self, event_id: str) -> None:
        self._events.append(event_id)

    @workflow.run
    async def run(self, customer_id: str) -> int:
        workflow.upsert_search_attributes(
            [
                TENANT_ID.value_set("bench"),
                JOURNEY_ID.value_set("bench-shape"),
                CUSTOMER_ID.value_set(customer_id),
            ]
        )
        await self._step("update_traits")
        # The journey's waits are wait_condition with a timeout (they also listen for events).
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: False, timeout=PAUSE)
        await self._step("plan_delivery")
        await self._step("send_message")
        await self._step("close_entry")
        return len(self._events)

    async def _step(self, name: str) -> None:
        await workflow.execute_activity(noop_step, name, start_to_close_timeout=STEP_TIMEOUT)
