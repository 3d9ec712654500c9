"""JourneyWorkflow: one customer walking one version of one journey.

Id ``journey-{tenant}-{journey}-{customer}``, started by signal-with-start from the trigger
evaluator; every later event of the customer arrives as the ``event`` signal. The workflow
walks the definition it was started with (a published version never changes), so editing a
journey leaves customers inside on their version.

Waiting is the heart of it: every wait (a duration, a local time, a profile date, quiet hours,
a wait-for-event window) also listens for the journey's exit criteria, so a ``purchase`` ends
the journey wherever the customer is. The workflow keeps ids and decisions only; activities
read profiles and events, render templates and send (see ``activities.journeys``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from temporalio import workflow

from workflows.delivery import READ_RETRY, READ_TIMEOUT, deliver

with workflow.unsafe.imports_passed_through():
    from activities.journeys import (
        ChooseBranch,
        CloseEntry,
        JourneyActivities,
        LocalTime,
        MatchEvent,
        ProfileDate,
        UpdateTraits,
    )
    from domain.delivery import Message
    from domain.journey_runs import (
        CustomerEventRef,
        JourneyRunInput,
        JourneyRunState,
        Step,
    )
    from domain.journeys import (
        ActionNode,
        BranchNode,
        Condition,
        ExitNode,
        Node,
        SplitNode,
        UpdateProfileNode,
        WaitForEventNode,
        WaitNode,
        split_path,
    )
    from temporal.search_attributes import CUSTOMER_ID, JOURNEY_ID, TENANT_ID

In = TypeVar("In")
Out = TypeVar("Out")

# workflow.patched ids: runs started before a change keep the old path on replay.
EARLY_EVENTS_PATCH = "wait-for-event-sees-events-from-the-step-before"


class _Exited(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@workflow.defn(name="Journey")
class JourneyWorkflow:
    @workflow.init
    def __init__(self, request: JourneyRunInput) -> None:
        self._input: JourneyRunInput | None = None
        self._state = JourneyRunState(node_id=None)
        self._inbox: list[CustomerEventRef] = []
        # Signal-with-start runs the start signal's handler before run(): the trigger must be
        # known as seen already, or a wait-for-event on the trigger's own name would take it.
        self._seen: set[str] = (
            {request.trigger_event.event_id} if request.trigger_event is not None else set()
        )
        self._cursor = 0

    # --- signals and queries ------------------------------------------------------------------

    @workflow.signal(name="event")
    def event(self, ref: CustomerEventRef) -> None:
        if ref.event_id not in self._seen:  # redeliveries and the start signal's repeat
            self._seen.add(ref.event_id)
            self._inbox.append(ref)

    @workflow.query
    def state(self) -> JourneyRunState:
        return self._state.model_copy(update={"pending_events": self._inbox[self._cursor :]})

    # --- the walk -----------------------------------------------------------------------------

    @workflow.run
    async def run(self, request: JourneyRunInput) -> JourneyRunState:
        self._input = request
        workflow.upsert_search_attributes(
            [
                TENANT_ID.value_set(request.tenant_id),
                JOURNEY_ID.value_set(request.journey_id),
                CUSTOMER_ID.value_set(request.customer_id),
            ]
        )
        if request.resume is not None:
            self._state = request.resume
            for pending in request.resume.pending_events:
                self.event(pending)
            self._state.pending_events = []
        else:
            self._state = JourneyRunState(
                node_id=request.definition.start,
                context_event_id=request.trigger_event.event_id if request.trigger_event else None,
            )
        current = (self._state.node_id or "", workflow.now())
        try:
            while not self._state.finished:
                assert self._state.node_id is not None
                node = request.definition.node(self._state.node_id)
                entered = workflow.now()
                current = (node.id, entered)
                if not self._keeps_earlier_events(node):
                    await self._drain()
                outcome, following = await self._visit(node)
                self._state.steps.append(Step(node_id=node.id, entered_at=entered, outcome=outcome))
                if following is None:
                    self._state.finished = True
                    self._state.exit_reason = f"exit at {node.id}"
                else:
                    self._state.node_id = following
                    if workflow.info().is_continue_as_new_suggested():
                        await workflow.wait_condition(workflow.all_handlers_finished)
                        workflow.continue_as_new(
                            request.model_copy(update={"resume": self.state()})
                        )
        except _Exited as exited:
            # The step the exit cut short, so operators see where the customer left.
            node_id, entered = current
            self._state.steps.append(
                Step(node_id=node_id, entered_at=entered, outcome=exited.reason)
            )
            self._state.finished = True
            self._state.exit_reason = exited.reason
        await self._activity(
            JourneyActivities.close_entry,
            CloseEntry(
                entry_id=request.entry_id, reason=self._state.exit_reason, at=workflow.now()
            ),
        )
        return self._state

    @staticmethod
    def _keeps_earlier_events(node: Node) -> bool:
        """Whether a wait-for-event may take events that arrived while the step before it ran.

        Before this patch, entering any node set aside every event that had arrived, so an open
        or an in-app read landing while the email or card was still being sent never reached
        the wait for it, and the wait timed out. Now a wait-for-event sees them (exit criteria
        still apply to them first); events from before the previous step are still set aside
        when that step is entered."""
        return isinstance(node, WaitForEventNode) and workflow.patched(EARLY_EVENTS_PATCH)

    async def _visit(self, node: Node) -> tuple[str, str | None]:
        """Run one node; returns how it went and the next node (None: the journey is over)."""
        assert self._input is not None
        if isinstance(node, ExitNode):
            return "exit", None
        if isinstance(node, WaitNode):
            until = await self._wait_target(node)
            if until is None:
                return "no date: went on", node.next
            await self._wait(until)
            return "waited", node.next
        if isinstance(node, WaitForEventNode):
            matched = await self._wait(workflow.now() + node.timeout, self._accepts(node))
            if matched is None:
                return "timeout", node.on_timeout
            self._state.context_event_id = matched.event_id
            return "event", node.on_event
        if isinstance(node, BranchNode):
            following = await self._activity(
                JourneyActivities.choose_branch,
                ChooseBranch(
                    tenant_id=self._input.tenant_id,
                    customer_id=self._input.customer_id,
                    context_event_id=self._state.context_event_id,
                    node=node,
                ),
            )
            return f"branch to {following}", following
        if isinstance(node, SplitNode):
            path = split_path(node, self._input.journey_id, self._input.customer_id)
            return f"split: {path.name}", path.next
        if isinstance(node, UpdateProfileNode):
            await self._activity(
                JourneyActivities.update_traits,
                UpdateTraits(
                    tenant_id=self._input.tenant_id,
                    customer_id=self._input.customer_id,
                    traits=node.set,
                ),
            )
            return "profile updated", node.next
        assert isinstance(node, ActionNode)
        return await self._act(node), node.next

    async def _act(self, node: ActionNode) -> str:
        assert self._input is not None
        request = self._input
        delivered = await deliver(
            Message(
                tenant_id=request.tenant_id,
                customer_id=request.customer_id,
                channel=node.channel,
                template=node.template,
                transactional=node.transactional,
                # Per (journey run, node, customer): the entry id is a name-based UUID of the
                # journey, the customer and what entered them, so all three in 36 characters.
                idempotency_key=f"{request.entry_id}:{node.id}",
                journey_id=request.journey_id,
                node_id=node.id,
                context_event_id=self._state.context_event_id,
            ),
            wait=self._wait,  # quiet hours are a wait like any other: exit events end it
        )
        return delivered.describe()

    async def _wait_target(self, node: WaitNode) -> datetime | None:
        assert self._input is not None
        if node.duration is not None:
            return workflow.now() + node.duration
        if node.until_local_time is not None:
            return await self._activity(
                JourneyActivities.next_local_time,
                LocalTime(
                    tenant_id=self._input.tenant_id,
                    customer_id=self._input.customer_id,
                    at=node.until_local_time,
                    after=workflow.now(),
                ),
            )
        assert node.until_profile_date is not None
        return await self._activity(
            JourneyActivities.profile_date,
            ProfileDate(
                tenant_id=self._input.tenant_id,
                customer_id=self._input.customer_id,
                path=node.until_profile_date,
            ),
        )

    # --- events -------------------------------------------------------------------------------

    def _accepts(self, node: WaitForEventNode) -> Callable[[CustomerEventRef], Awaitable[bool]]:
        async def accept(ref: CustomerEventRef) -> bool:
            if ref.name != node.event:
                return False
            return await self._matches(ref, node.where)

        return accept

    async def _matches(self, ref: CustomerEventRef, where: list[Condition]) -> bool:
        assert self._input is not None
        if not where:
            return True
        return await self._activity(
            JourneyActivities.event_matches,
            MatchEvent(
                tenant_id=self._input.tenant_id,
                customer_id=self._input.customer_id,
                event_id=ref.event_id,
                where=where,
            ),
        )

    async def _drain(
        self, accept: Callable[[CustomerEventRef], Awaitable[bool]] | None = None
    ) -> CustomerEventRef | None:
        """Look at the events that arrived: an exit criterion ends the journey (raises
        _Exited); the first event ``accept`` takes is returned."""
        assert self._input is not None
        while self._cursor < len(self._inbox):
            ref = self._inbox[self._cursor]
            self._cursor += 1
            for criterion in self._input.definition.exit_on:
                if ref.name == criterion.event and await self._matches(ref, criterion.where):
                    raise _Exited(f"exit event {ref.name}")
            if accept is not None and await accept(ref):
                return ref
        return None

    async def _wait(
        self,
        until: datetime,
        accept: Callable[[CustomerEventRef], Awaitable[bool]] | None = None,
    ) -> CustomerEventRef | None:
        """Wait until ``until`` or an event ``accept`` takes (returned); exit criteria apply."""
        while True:
            taken = await self._drain(accept)
            if taken is not None:
                return taken
            remaining = until - workflow.now()
            if remaining <= timedelta(0):
                return None
            try:
                await workflow.wait_condition(
                    lambda: self._cursor < len(self._inbox), timeout=remaining
                )
            except TimeoutError:
                return None

    # --- plumbing -----------------------------------------------------------------------------

    async def _activity(
        self, method: Callable[[JourneyActivities, In], Awaitable[Out]], argument: In
    ) -> Out:
        return await workflow.execute_activity_method(
            method, argument, start_to_close_timeout=READ_TIMEOUT, retry_policy=READ_RETRY
        )
