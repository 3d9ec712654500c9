"""A stand-in registered as "Journey", the real workflow's name: it records what it is started
with and every ``event`` signal, and ends when told to (as a customer leaving the journey)."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

from domain.journey_runs import CustomerEventRef, JourneyRunInput


@workflow.defn(name="Journey")
class StandInJourney:
    def __init__(self) -> None:
        self._events: list[str] = []
        self._input: JourneyRunInput | None = None
        self._leave = False
        self._began: datetime | None = None

    @workflow.signal(name="event")
    def event(self, ref: CustomerEventRef) -> None:
        self._events.append(ref.event_id)

    @workflow.signal
    def leave(self) -> None:
        self._leave = True

    @workflow.query
    def signals(self) -> list[str]:
        return list(self._events)

    @workflow.query
    def started_with(self) -> JourneyRunInput | None:
        return self._input

    @workflow.query
    def began_at(self) -> datetime | None:
        """When the run's first task ran: after its start delay, if it had one."""
        return self._began

    @workflow.run
    async def run(self, request: JourneyRunInput) -> list[str]:
        self._input = request
        self._began = workflow.now()
        await workflow.wait_condition(lambda: self._leave)
        return list(self._events)
