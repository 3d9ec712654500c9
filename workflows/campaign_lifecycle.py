"""CampaignLifecycleWorkflow: one per campaign, from submission to archive.

Id ``campaign-{tenant}-{campaign}``. The workflow is the only writer of the campaign's status
once it is submitted; every move goes through ``record_transition`` (database + bid fleet).

    submitted -> in_review --(auto-approve under the threshold, or enough votes)--> approved
              -> scheduled --(timer to start_at)--> live <-> paused (operator updates)
              -> completed (end_at, or the budget is spent: a signal) -> archived
    any rejection in review -> rejected (the run ends; a resubmission starts a new run)

Votes, pause, resume and archive are updates: validated in the workflow, answered with the
result. ``submission`` is the update the API starts the workflow with. ``budget_exhausted`` is a
signal. ``state`` is a query.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.campaigns import (
        CampaignActivities,
        RecordApprovalNudge,
        RecordTransition,
        RecordVote,
    )
    from domain.approvals import (
        Decision,
        Outcome,
        Vote,
        VoteRefused,
        auto_approves,
        check_vote,
        outcome,
        roles_still_needed,
    )
    from domain.campaigns import CampaignStatus
    from domain.lifecycle import (
        CAMPAIGN_CHANGED,
        LifecycleInput,
        LifecycleState,
        OperatorRequest,
        Transition,
        VoteRequest,
        VoteResult,
        can_move,
    )
    from temporal.search_attributes import CAMPAIGN_ID, CAMPAIGN_STATUS, TENANT_ID

S = CampaignStatus
RECORD_TIMEOUT = timedelta(seconds=30)
RECORD_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)


# Patches: each changes what a run records on one rare path; runs recorded before replay as
# they ran.
VOIDED_SUBMISSION_IS_DRAFT = "voided-submission-is-draft"
TIMER_YIELDS_TO_ARCHIVE = "retention-timer-yields-to-archive-update"


def _campaign_changed(error: ActivityError) -> bool:
    cause = error.cause
    return isinstance(cause, ApplicationError) and cause.type == CAMPAIGN_CHANGED


def workflow_id(tenant_id: str, campaign_id: str) -> str:
    return f"campaign-{tenant_id}-{campaign_id}"


@workflow.defn(name="CampaignLifecycle")
class CampaignLifecycleWorkflow:
    @workflow.init
    def __init__(self, request: LifecycleInput) -> None:
        # Set before any handler runs: a signal or update delivered in the run's first task
        # (budget spent during a continue-as-new, the API's update-with-start) must act on the
        # carried state, not on a blank one that run() would then overwrite.
        self._input: LifecycleInput | None = request
        self._state = request.resume or LifecycleState(status=S.IN_REVIEW)
        self._lock = asyncio.Lock()
        self._archive_requested = False
        self._withdrawn = False  # the campaign changed before the submission was written

    # --- queries ------------------------------------------------------------------------------

    @workflow.query
    def state(self) -> LifecycleState:
        return self._state

    # --- the run ------------------------------------------------------------------------------

    @workflow.run
    async def run(self, request: LifecycleInput) -> LifecycleState:
        workflow.upsert_search_attributes(
            [TENANT_ID.value_set(request.tenant_id), CAMPAIGN_ID.value_set(request.campaign_id)]
        )
        if request.resume is None:
            self._refresh_needs()
            try:
                await self._move(
                    S.IN_REVIEW,
                    request.submitted_by,
                    request.submitted_by_name,
                    "submitted",
                    first=True,
                    expected_version=request.campaign_version,
                )
            except ActivityError as error:
                if not _campaign_changed(error):
                    raise
                # Edited after the submit read it: what was checked is not what would be
                # reviewed. The submission is void; the submitter hears it from the update.
                self._withdrawn = True
                if workflow.patched(VOIDED_SUBMISSION_IS_DRAFT):
                    self._state.status = S.DRAFT  # as the database has it, edited
                    workflow.upsert_search_attributes([CAMPAIGN_STATUS.value_set(str(S.DRAFT))])
                await workflow.wait_condition(workflow.all_handlers_finished)
                return self._state
            if auto_approves(request.rule, request.budget_usd):
                self._state.outcome = Outcome.APPROVED
                await self._move(S.APPROVED, reason="budget under the auto-approval threshold")
            else:
                await self._await_decision()
                if self._state.outcome is Outcome.REJECTED:
                    await self._move(S.REJECTED, reason=self._decision_summary())
                    return self._state
                await self._move(S.APPROVED, reason=self._decision_summary())

        status = self._state.status
        if status is S.APPROVED:
            await self._move(S.SCHEDULED, reason="approved")
            status = S.SCHEDULED
        if status is S.SCHEDULED:
            await self._until_start()
        if self._state.status in (S.LIVE, S.PAUSED):
            await self._while_running()
        if self._state.status is S.COMPLETED:
            await self._until_archived()
        return self._state

    async def _await_decision(self) -> None:
        """Wait for the votes; remind approvers, and escalate once, while nobody decides."""
        assert self._input is not None
        rule = self._input.rule
        submitted = workflow.now()
        while self._state.outcome is Outcome.PENDING:
            waited = (workflow.now() - submitted).total_seconds()
            if not self._state.escalated and waited >= rule.escalate_after_s:
                await self._nudge("escalation")
                self._state.escalated = True
            next_nudge = rule.remind_after_s * (self._state.reminders_sent + 1)
            if not self._state.escalated:
                next_nudge = min(next_nudge, rule.escalate_after_s)
            try:
                await workflow.wait_condition(
                    lambda: self._state.outcome is not Outcome.PENDING,
                    timeout=timedelta(seconds=max(next_nudge - waited, 1)),
                )
            except TimeoutError:
                waited = (workflow.now() - submitted).total_seconds()
                if waited >= rule.remind_after_s * (self._state.reminders_sent + 1):
                    self._state.reminders_sent += 1
                    await self._nudge("reminder")

    async def _until_start(self) -> None:
        assert self._input is not None
        start_at = self._input.start_at
        while True:
            if start_at is not None and workflow.now() < start_at:
                # One timer, as workflow.sleep made it: histories replay unchanged.
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        lambda: self._archive_requested, timeout=start_at - workflow.now()
                    )
            if not self._archive_requested:
                break
            if await self._archived_by_update():  # called off before its start
                return
        if self._ended():
            await self._move(S.COMPLETED, reason="end date passed before the start")
            return
        await self._move(S.LIVE, reason="start date reached")

    async def _while_running(self) -> None:
        """Live or paused until the end date or the budget: pause and resume arrive as updates."""
        assert self._input is not None
        while True:
            if self._state.budget_exhausted:
                await self._move(S.COMPLETED, reason="budget spent")
                return
            if self._ended():
                await self._move(S.COMPLETED, reason="end date reached")
                return
            if workflow.info().is_continue_as_new_suggested():
                # Long pause/resume histories start afresh; no update may be cut in half.
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self._input.model_copy(update={"resume": self._state}))
            end_at = self._input.end_at
            timeout = (end_at - workflow.now()) if end_at is not None else None
            try:
                await workflow.wait_condition(
                    lambda: (
                        self._state.budget_exhausted
                        or workflow.info().is_continue_as_new_suggested()
                    ),
                    timeout=timeout,
                )
            except TimeoutError:
                continue

    async def _until_archived(self) -> None:
        assert self._input is not None
        deadline = workflow.now() + timedelta(seconds=self._input.archive_after_s)
        while True:
            try:
                await workflow.wait_condition(
                    lambda: self._archive_requested, timeout=deadline - workflow.now()
                )
            except TimeoutError:
                # An archive update in the same task as the timer goes first: let it finish
                # (runs from before the patch moved anyway, and failed).
                if not (self._archive_requested and workflow.patched(TIMER_YIELDS_TO_ARCHIVE)):
                    await self._move(S.ARCHIVED, reason="archived automatically after completion")
                    return
            if await self._archived_by_update():
                return

    async def _archived_by_update(self) -> bool:
        """The archive update moves the status itself: wait for it. False if it failed (it
        lowers the flag), and the run goes on as if it had never come."""
        await workflow.wait_condition(
            lambda: self._state.status is S.ARCHIVED or not self._archive_requested
        )
        return self._state.status is S.ARCHIVED

    def _ended(self) -> bool:
        assert self._input is not None
        end_at = self._input.end_at
        return end_at is not None and workflow.now() >= end_at

    # --- signals and updates -------------------------------------------------------------------

    @workflow.update
    async def submission(self) -> LifecycleState:
        """Sent with the start (update-with-start): answers once the in_review move is written,
        so the submitter's reply and every read after it show the campaign in review."""
        await workflow.wait_condition(lambda: bool(self._state.history) or self._withdrawn)
        if self._withdrawn:
            raise ApplicationError(
                "the campaign changed while it was being submitted: read it again and submit",
                type=CAMPAIGN_CHANGED,
                non_retryable=True,
            )
        return self._state

    @workflow.signal
    def budget_exhausted(self) -> None:
        self._state.budget_exhausted = True

    @workflow.update
    async def vote(self, request: VoteRequest) -> VoteResult:
        assert self._input is not None
        vote = Vote(
            voter_id=request.voter_id,
            voter_name=request.voter_name,
            role=request.role,
            decision=request.decision,
            comment=request.comment,
            at=workflow.now(),
        )
        async with self._lock:
            # Two concurrent updates from one approver both pass the validator: refuse the second.
            if any(existing.voter_id == request.voter_id for existing in self._state.votes):
                raise ApplicationError(
                    "this approver has already voted", type="duplicate_vote", non_retryable=True
                )
            if self._state.outcome is not Outcome.PENDING:
                raise ApplicationError(
                    "the campaign was decided meanwhile", type="not_in_review", non_retryable=True
                )
            await workflow.execute_activity_method(
                CampaignActivities.record_vote,
                RecordVote(
                    tenant_id=self._input.tenant_id,
                    campaign_id=self._input.campaign_id,
                    submission_id=workflow.info().first_execution_run_id,
                    vote=vote,
                    idempotency_key=f"{self._key_prefix()}:vote:{request.voter_id}",
                ),
                start_to_close_timeout=RECORD_TIMEOUT,
                retry_policy=RECORD_RETRY,
            )
            self._state.votes.append(vote)
            self._state.outcome = outcome(
                self._input.rule, self._input.budget_usd, self._state.votes
            )
            self._refresh_needs()
        return VoteResult(
            outcome=self._state.outcome,
            status=self._state.status,
            approvals=sum(v.decision is Decision.APPROVE for v in self._state.votes),
            approvals_needed=self._input.rule.min_approvals,
        )

    @vote.validator
    def _validate_vote(self, request: VoteRequest) -> None:
        assert self._input is not None
        if self._state.status is not S.IN_REVIEW or self._state.outcome is not Outcome.PENDING:
            raise ApplicationError(
                f"the campaign is {self._state.status}, not awaiting votes",
                type="not_in_review",
                non_retryable=True,
            )
        try:
            check_vote(
                voter_id=request.voter_id,
                role=request.role,
                submitted_by=self._input.submitted_by,
                votes=self._state.votes,
            )
        except VoteRefused as refused:
            raise ApplicationError(str(refused), type=refused.code, non_retryable=True) from None

    @workflow.update
    async def pause(self, request: OperatorRequest) -> LifecycleState:
        await self._move(S.PAUSED, request.actor_id, request.actor_name, request.reason or "paused")
        return self._state

    @pause.validator
    def _validate_pause(self, request: OperatorRequest) -> None:
        self._check_move(S.PAUSED)

    @workflow.update
    async def resume(self, request: OperatorRequest) -> LifecycleState:
        await self._move(S.LIVE, request.actor_id, request.actor_name, request.reason or "resumed")
        return self._state

    @resume.validator
    def _validate_resume(self, request: OperatorRequest) -> None:
        self._check_move(S.LIVE)
        if self._state.status is not S.PAUSED:
            raise ApplicationError("only a paused campaign resumes", type="invalid_transition")

    @workflow.update
    async def archive(self, request: OperatorRequest) -> LifecycleState:
        # Raised first: the run waiting for the start, or for the archive, stops waiting.
        self._archive_requested = True
        try:
            await self._move(
                S.ARCHIVED, request.actor_id, request.actor_name, request.reason or "archived"
            )
        except BaseException:
            # Refused after all (the start came first and the campaign went live), or failed:
            # the run must not take the campaign for archived when it completes.
            self._archive_requested = False
            raise
        return self._state

    @archive.validator
    def _validate_archive(self, request: OperatorRequest) -> None:
        self._check_move(S.ARCHIVED)

    # --- moves --------------------------------------------------------------------------------

    def _check_move(self, target: CampaignStatus) -> None:
        if not can_move(self._state.status, target):
            raise ApplicationError(
                f"a campaign cannot go from {self._state.status} to {target}",
                type="invalid_transition",
                non_retryable=True,
            )

    async def _move(
        self,
        target: CampaignStatus,
        actor_id: str = "",
        actor_name: str = "",
        reason: str = "",
        *,
        first: bool = False,
        expected_version: int | None = None,
    ) -> None:
        """Record the move (database + bid fleet), then make it the workflow's status."""
        assert self._input is not None
        async with self._lock:
            current = S.DRAFT if first else self._state.status
            if not first:
                self._check_move(target)
            transition = Transition(
                from_status=current,
                to_status=target,
                at=workflow.now(),
                actor_id=actor_id,
                actor_name=actor_name,
                reason=reason,
            )
            self._state.transitions_recorded += 1
            await workflow.execute_activity_method(
                CampaignActivities.record_transition,
                RecordTransition(
                    tenant_id=self._input.tenant_id,
                    campaign_id=self._input.campaign_id,
                    submission_id=workflow.info().first_execution_run_id,
                    transition=transition,
                    idempotency_key=(
                        f"{self._key_prefix()}:move:{self._state.transitions_recorded}"
                    ),
                    expected_version=expected_version,
                ),
                start_to_close_timeout=RECORD_TIMEOUT,
                retry_policy=RECORD_RETRY,
            )
            self._state.status = target
            self._state.history.append(transition)
            workflow.upsert_search_attributes([CAMPAIGN_STATUS.value_set(str(target))])

    async def _nudge(self, kind: str) -> None:
        assert self._input is not None
        await workflow.execute_activity_method(
            CampaignActivities.record_approval_nudge,
            RecordApprovalNudge(
                tenant_id=self._input.tenant_id,
                campaign_id=self._input.campaign_id,
                kind="escalation" if kind == "escalation" else "reminder",
                at=workflow.now(),
                approvals_needed=self._state.approvals_needed,
                roles_needed=self._state.roles_needed,
                idempotency_key=f"{self._key_prefix()}:{kind}:{self._state.reminders_sent}",
            ),
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=RECORD_RETRY,
        )

    def _refresh_needs(self) -> None:
        assert self._input is not None
        votes = self._state.votes
        approvals = sum(v.decision is Decision.APPROVE for v in votes)
        self._state.approvals_needed = max(self._input.rule.min_approvals - approvals, 0)
        self._state.roles_needed = sorted(
            roles_still_needed(self._input.rule, self._input.budget_usd, votes)
        )

    def _decision_summary(self) -> str:
        return "; ".join(
            f"{vote.decision} by {vote.voter_name or vote.voter_id}"
            + (f": {vote.comment}" if vote.comment else "")
            for vote in self._state.votes
        )

    def _key_prefix(self) -> str:
        info = workflow.info()
        # The first run's id: continue-as-new keeps the keys of earlier moves distinct and stable.
        return f"{info.workflow_id}:{info.first_execution_run_id}"
