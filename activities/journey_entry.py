"""Entering a customer into a journey: the entry rules in the database, then the run in Temporal.

The trigger evaluator (for events and segment entries) and the schedule activity (for
scheduled audiences) both come through here, so both apply the same rules the same way:

1. ``EntryRepository.admit`` applies the entry rules under a per-customer lock and writes the
   entry row, numbered, with an id derived from its cause (an event, a schedule day);
2. the run starts as workflow ``journey-{tenant}-{journey}-{customer}`` ("Journey"): by
   signal-with-start with the triggering event as the ``event`` signal, or, for a scheduled
   entry, by a start delayed until the customer's local time. The entry id rides in the run's
   memo;
3. the run that answers is asked for that memo: if it is another entry's (the customer was
   still inside a run the database had just seen end), the new entry row is removed and the
   event went to that run as a signal.

Redelivery and retries are harmless: the same cause finds the same entry row (``fresh`` is
False) and the same run (the workflow id), and the workflow ignores an event it has seen.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.service import RPCError, RPCStatusCode

from adapters.db.journeys import Admission, EntryRepository
from domain.entry import Verdict
from domain.journey_runs import CustomerEventRef, JourneyRunInput, workflow_id
from temporal.search_attributes import CUSTOMER_ID, JOURNEY_ID, TENANT_ID
from temporal.task_queues import PLATFORM

log = logging.getLogger(__name__)

JOURNEY_WORKFLOW = "Journey"
EVENT_SIGNAL = "event"
ENTRY_MEMO = "entry_id"

ClientSource = Callable[[], Awaitable[Client]]
# Each call to Temporal; a slow server fails the event, which is then retried later.
RPC_TIMEOUT = timedelta(seconds=10)


@dataclass(frozen=True, slots=True)
class EntryOutcome:
    verdict: Verdict  # ENTER: a run holds this entry now; INSIDE: the event went to their run
    entry_id: str
    reason: str = ""


class JourneyStarter:
    def __init__(
        self, entries: EntryRepository, client: ClientSource, *, task_queue: str = PLATFORM
    ) -> None:
        self._entries = entries
        self._client = client
        self._task_queue = task_queue

    async def enter(
        self,
        tenant_id: str,
        journey_id: str,
        customer_id: str,
        *,
        entry_id: str,
        trigger: CustomerEventRef | None,
        at: datetime,
        start_delay: timedelta | None = None,
    ) -> EntryOutcome:
        """Enter the customer (``at``: the moment the entry counts from) unless the rules say
        no; a customer already inside gets ``trigger`` as a signal instead."""
        admission = await self._entries.admit(
            tenant_id,
            journey_id,
            customer_id,
            entry_id=entry_id,
            trigger_event_id=trigger.event_id if trigger is not None else None,
            at=at,
        )
        if admission.decision.verdict is Verdict.INSIDE:
            if trigger is not None:
                await self.signal(tenant_id, journey_id, customer_id, trigger)
            return EntryOutcome(Verdict.INSIDE, entry_id, admission.decision.reason)
        if not admission.entered:
            return EntryOutcome(Verdict.REFUSED, entry_id, admission.decision.reason)
        handle = await self._start(admission, customer_id, trigger, start_delay)
        holder = await self._entry_of(handle)
        if holder is not None and holder != entry_id:
            # The customer was inside another run: it got the event, this entry never began.
            await self._entries.discard(entry_id)
            return EntryOutcome(Verdict.INSIDE, entry_id, "inside an earlier run")
        return EntryOutcome(Verdict.ENTER, entry_id)

    async def signal(
        self, tenant_id: str, journey_id: str, customer_id: str, event: CustomerEventRef
    ) -> bool:
        """Send ``event`` to the customer's run; False when no run is open."""
        client = await self._client()
        handle = client.get_workflow_handle(workflow_id(tenant_id, journey_id, customer_id))
        try:
            await handle.signal(EVENT_SIGNAL, event, rpc_timeout=RPC_TIMEOUT)
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

    async def _start(
        self,
        admission: Admission,
        customer_id: str,
        trigger: CustomerEventRef | None,
        start_delay: timedelta | None,
    ) -> WorkflowHandle[Any, Any]:
        journey = admission.journey
        assert journey is not None  # admit gives the journey with every ENTER
        assert admission.decision.entry_number is not None
        run = JourneyRunInput(
            tenant_id=journey.tenant_id,
            journey_id=journey.journey_id,
            journey_version=journey.version,
            customer_id=customer_id,
            entry_id=admission.entry_id,
            entry_number=admission.decision.entry_number,
            definition=journey.definition,
            trigger_event=trigger,
        )
        client = await self._client()
        options: dict[str, Any] = {
            "id": workflow_id(journey.tenant_id, journey.journey_id, customer_id),
            "task_queue": self._task_queue,
            "id_reuse_policy": WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            "memo": {ENTRY_MEMO: admission.entry_id},
            "search_attributes": TypedSearchAttributes(
                [
                    SearchAttributePair(TENANT_ID, journey.tenant_id),
                    SearchAttributePair(JOURNEY_ID, journey.journey_id),
                    SearchAttributePair(CUSTOMER_ID, customer_id),
                ]
            ),
            "start_delay": start_delay,
            "rpc_timeout": RPC_TIMEOUT,
        }
        if trigger is not None:
            return await client.start_workflow(
                JOURNEY_WORKFLOW,
                run,
                start_signal=EVENT_SIGNAL,
                start_signal_args=[trigger],
                **options,
            )
        # A scheduled entry has no event to signal; a running run is left as it is.
        return await client.start_workflow(
            JOURNEY_WORKFLOW,
            run,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            **options,
        )

    @staticmethod
    async def _entry_of(handle: WorkflowHandle[Any, Any]) -> str | None:
        description = await handle.describe(rpc_timeout=RPC_TIMEOUT)
        memo = await description.memo()
        holder = memo.get(ENTRY_MEMO)
        return str(holder) if holder is not None else None
