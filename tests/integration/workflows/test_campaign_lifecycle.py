"""CampaignLifecycleWorkflow on Temporal's time-skipping test server, with the real activities
writing to a real database: months of a campaign's life in a moment."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from domain.approvals import ApprovalRule, Decision, Outcome, RoleRequirement
from domain.campaigns import CampaignStatus
from domain.lifecycle import LifecycleInput, LifecycleState, OperatorRequest, VoteRequest
from domain.platform import Role
from tests.integration.workflows.conftest import Lifecycle
from tests.support.temporal import running_worker, time_skipping_server
from workflows.campaign_lifecycle import CampaignLifecycleWorkflow, workflow_id

S = CampaignStatus
SUBMITTER = "user-submitter"


@pytest.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A test server of this test's own: the clock skips for every workflow on a server at
    once, and one test's leftovers (even terminated) were seen to stall the next one's skip."""
    async with time_skipping_server() as env:
        yield env


@pytest.fixture
async def queue(time_skipping_env: WorkflowEnvironment, lifecycle: Lifecycle) -> AsyncIterator[str]:
    async with running_worker(
        time_skipping_env.client,
        workflows=[CampaignLifecycleWorkflow],
        activities=lifecycle.activities.all(),
    ) as task_queue:
        yield task_queue


async def submit(
    env: WorkflowEnvironment,
    lifecycle: Lifecycle,
    queue: str,
    *,
    budget_usd: Decimal = Decimal(5_000),
    starts_in: timedelta = timedelta(hours=1),
    lasts: timedelta = timedelta(days=30),
    rule: ApprovalRule | None = None,
) -> tuple[str, WorkflowHandle[CampaignLifecycleWorkflow, LifecycleState]]:
    campaign_id = await lifecycle.new_campaign()
    now = await env.get_current_time()
    start = now + starts_in
    handle = await env.client.start_workflow(
        CampaignLifecycleWorkflow.run,
        LifecycleInput(
            tenant_id=lifecycle.tenant_id,
            campaign_id=campaign_id,
            budget_usd=budget_usd,
            start_at=start,
            end_at=start + lasts,
            submitted_by=SUBMITTER,
            submitted_by_name="Sam Submitter",
            rule=rule or ApprovalRule(),
        ),
        id=workflow_id(lifecycle.tenant_id, campaign_id),
        task_queue=queue,
    )
    return campaign_id, handle


def vote(
    voter: str, decision: Decision = Decision.APPROVE, role: Role = Role.MANAGER
) -> VoteRequest:
    return VoteRequest(voter_id=voter, voter_name=voter, role=role, decision=decision, comment="ok")


async def stored_status(lifecycle: Lifecycle, campaign_id: str) -> CampaignStatus:
    record = await lifecycle.campaigns.find(lifecycle.tenant_id, campaign_id)
    assert record is not None
    return record.campaign.status


async def refusal(
    handle: WorkflowHandle[CampaignLifecycleWorkflow, LifecycleState], request: VoteRequest
) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await handle.execute_update(CampaignLifecycleWorkflow.vote, request)
    assert isinstance(failed.value.cause, ApplicationError)
    return failed.value.cause.type or ""


async def test_thirty_day_campaign_from_votes_to_archive(
    time_skipping_env: WorkflowEnvironment, lifecycle: Lifecycle, queue: str
) -> None:
    campaign_id, handle = await submit(time_skipping_env, lifecycle, queue)

    first = await handle.execute_update(CampaignLifecycleWorkflow.vote, vote("alice"))
    assert (first.outcome, first.approvals, first.approvals_needed) == (Outcome.PENDING, 1, 2)
    second = await handle.execute_update(CampaignLifecycleWorkflow.vote, vote("bob"))
    assert second.outcome is Outcome.APPROVED

    await time_skipping_env.sleep(timedelta(hours=2))
    assert (await handle.query(CampaignLifecycleWorkflow.state)).status is S.LIVE
    assert await stored_status(lifecycle, campaign_id) is S.LIVE

    await time_skipping_env.sleep(timedelta(days=30))
    state = await handle.query(CampaignLifecycleWorkflow.state)
    assert state.status is S.COMPLETED
    assert state.history[-1].reason == "end date reached"

    archived = await handle.execute_update(
        CampaignLifecycleWorkflow.archive, OperatorRequest(actor_id="ops", reason="done")
    )
    assert archived.status is S.ARCHIVED
    final = await handle.result()
    assert [t.to_status for t in final.history] == [
        S.IN_REVIEW, S.APPROVED, S.SCHEDULED, S.LIVE, S.COMPLETED, S.ARCHIVED
    ]  # fmt: skip
    assert await stored_status(lifecycle, campaign_id) is S.ARCHIVED
    events = await lifecycle.records.history(lifecycle.tenant_id, campaign_id)
    assert [e.kind for e in events].count("transition") == 6
    assert [e.actor_id for e in events if e.kind == "vote"] == ["alice", "bob"]
    # Every move told the bid fleet.
    assert lifecycle.published.count(campaign_id) == 6


async def test_budget_spent_completes_a_live_campaign(
    time_skipping_env: WorkflowEnvironment, lifecycle: Lifecycle, queue: str
) -> None:
    campaign_id, handle = await submit(
        time_skipping_env, lifecycle, queue, budget_usd=Decimal(500), starts_in=timedelta(0)
    )
    await time_skipping_env.sleep(timedelta(days=2))
    assert (await handle.query(CampaignLifecycleWorkflow.state)).status is S.LIVE

    await handle.signal(CampaignLifecycleWorkflow.budget_exhausted)
    await time_skipping_env.sleep(timedelta(seconds=5))

    state = await handle.query(CampaignLifecycleWorkflow.state)
    assert state.status is S.COMPLETED
    assert state.history[-1].reason == "budget spent"
    assert await stored_status(lifecycle, campaign_id) is S.COMPLETED


async def test_budget_spent_during_a_continue_as_new_is_not_lost(
    time_skipping_env: WorkflowEnvironment, lifecycle: Lifecycle, queue: str
) -> None:
    # A signal sent while a run continues as new lands in the next run's first task, before
    # run() starts: it must act on the carried state, not be overwritten by it.
    campaign_id = await lifecycle.new_campaign()
    now = await time_skipping_env.get_current_time()
    live = LifecycleState(status=S.LIVE)
    handle = await time_skipping_env.client.start_workflow(
        CampaignLifecycleWorkflow.run,
        LifecycleInput(
            tenant_id=lifecycle.tenant_id,
            campaign_id=campaign_id,
            budget_usd=Decimal(500),
            start_at=now,
            end_at=now + timedelta(days=30),
            submitted_by=SUBMITTER,
            submitted_by_name="Sam Submitter",
            resume=live,
        ),
        id=workflow_id(lifecycle.tenant_id, campaign_id),
        task_queue=queue,
        start_signal="budget_exhausted",
    )
    await time_skipping_env.sleep(timedelta(seconds=5))

    state = await handle.query(CampaignLifecycleWorkflow.state)
    assert state.status is S.COMPLETED
    assert state.history[-1].reason == "budget spent"


async def test_budget_under_the_threshold_is_approved_without_votes(
    time_skipping_env: WorkflowEnvironment, lifecycle: Lifecycle, queue: str
) -> None:
    _, handle = await submit(time_skipping_env, lifecycle, queue, budget_usd=Decimal("999.99"))
    await time_skipping_env.sleep(timedelta(minutes=1))
    state = await handle.query(CampaignLifecycleWorkflow.state)
    assert state.status is S.SCHEDULED
    assert state.votes == []
    assert state.history[1].reason == "budget under the auto-approval threshold"


async def test_submitter_cannot_approve_their_own_campaign(
    time_skipping_env: WorkflowEnvironment, lifecycle: Lifecycle, queue: str
) -> None:
    _, handle = await submit(time_skipping_env, lifecycle, queue)
    assert await refusal(handle, vote(SUBMITTER)) == "self_approval"
    assert (await handle.query(CampaignLifecycleWorkflow.state)).votes == []


async def test_second_vote_of_one_approver_is_refused(
    time_skipping_env: WorkflowEnvironment, lifecycle: Lifecycle, queue: str
) -> None:
    campaign_id, handle = await submit(time_skipping_env, lifecycle, queue)
    await handle.execute_update(CampaignLifecycleWorkflow.vote, vote("alice"))
    assert await refusal(handle, vote("alice")) == "duplicate_vote"
    state = await handle.query(CampaignLifecycleWorkflow.state)
    assert len(state.votes) == 1
    assert state.status is S.IN_REVIEW
    events = await lifecycle.records.history(lifecycle.tenant_id, campaign_id)
    assert [e.kind for e in events].count("vote") == 1


async def test_a_role_without_approvals_cannot_vote(
    time_skipping_env: WorkflowEnvironment, lifecycle: Lifecycle, queue: str
) -> None:
    _, handle = await submit(time_skipping_env, lifecycle, queue)
    assert await refusal(handle, vote("ann", role=Role.ANALYST)) == "role_cannot_approve"


async def test_rejection_after_partial_approval_rejects(
    time_skipping_env: WorkflowEnvironment, lifecycle: Lifecycle, queue: str
) -> None:
    campaign_id, handle = await submit(time_skipping_env, lifecycle, queue)
    await handle.execute_update(CampaignLifecycleWorkflow.vote, vote("alice"))
    result = await handle.execute_update(
        CampaignLifecycleWorkflow.vote, vote("bob", Decision.REJECT)
    )
    assert result.outcome is Outcome.REJECTED

    final = await handle.result()
    assert final.status is S.REJECTED
    assert "reject by bob: ok" in final.history[-1].reason
    assert await stored_status(lifecycle, campaign_id) is S.REJECTED


async def test_votes_after_the_decision_are_refused(
    time_skipping_env: WorkflowEnvironment, lifecycle: Lifecycle, queue: str
) -> None:
    _, handle = await submit(time_skipping_env, lifecycle, queue)
    await handle.execute_update(CampaignLifecycleWorkflow.vote, vote("alice"))
    await handle.execute_update(CampaignLifecycleWorkflow.vote, vote("bob"))
    await time_skipping_env.sleep(timedelta(seconds=1))
    assert await refusal(handle, vote("carol")) == "not_in_review"


async def test_required_role_above_the_budget_threshold(
    time_skipping_env: WorkflowEnvironment, lifecycle: Lifecycle, queue: str
) -> None:
    rule = ApprovalRule(
        min_approvals=2,
        required_roles=[RoleRequirement(role=Role.ADMIN, above_budget_usd=Decimal(10_000))],
    )
    _, handle = await submit(
        time_skipping_env, lifecycle, queue, budget_usd=Decimal(20_000), rule=rule
    )
    await handle.execute_update(CampaignLifecycleWorkflow.vote, vote("alice"))
    result = await handle.execute_update(CampaignLifecycleWorkflow.vote, vote("bob"))
    assert result.outcome is Outcome.PENDING
    state = await handle.query(CampaignLifecycleWorkflow.state)
    assert state.roles_needed == [Role.ADMIN]

    result = await handle.execute_update(
        CampaignLifecycleWorkflow.vote, vote("root", role=Role.ADMIN)
    )
    assert result.outcome is Outcome.APPROVED


async def test_reminders_then_one_escalation_while_nobody_decides(
    time_skipping_env: WorkflowEnvironment, lifecycle: Lifecycle, queue: str
) -> None:
    rule = ApprovalRule(remind_after_s=3600, escalate_after_s=3 * 3600 + 60)
    campaign_id, handle = await submit(time_skipping_env, lifecycle, queue, rule=rule)
    # Half an hour from any reminder: a skip ending on a timer can wedge the test server (see
    # test_end_date_before_approval_completes_at_once).
    await time_skipping_env.sleep(timedelta(hours=4, minutes=30))

    state = await handle.query(CampaignLifecycleWorkflow.state)
    assert state.status is S.IN_REVIEW
    assert state.escalated
    kinds = [e.kind for e in await lifecycle.records.history(lifecycle.tenant_id, campaign_id)]
    assert kinds.count("escalation") == 1
    assert kinds.count("reminder") >= 3


async def test_pause_and_resume_a_live_campaign(
    time_skipping_env: WorkflowEnvironment, lifecycle: Lifecycle, queue: str
) -> None:
    campaign_id, handle = await submit(
        time_skipping_env, lifecycle, queue, budget_usd=Decimal(100), starts_in=timedelta(0)
    )
    await time_skipping_env.sleep(timedelta(minutes=1))
    operator = OperatorRequest(actor_id="op-1", actor_name="Olga", reason="creative check")

    paused = await handle.execute_update(CampaignLifecycleWorkflow.pause, operator)
    assert paused.status is S.PAUSED
    assert await stored_status(lifecycle, campaign_id) is S.PAUSED
    resumed = await handle.execute_update(CampaignLifecycleWorkflow.resume, operator)
    assert resumed.status is S.LIVE
    assert resumed.history[-2].actor_name == "Olga"


async def test_invalid_moves_are_refused(
    time_skipping_env: WorkflowEnvironment, lifecycle: Lifecycle, queue: str
) -> None:
    _, handle = await submit(time_skipping_env, lifecycle, queue, budget_usd=Decimal(100))
    await time_skipping_env.sleep(timedelta(seconds=1))
    operator = OperatorRequest(actor_id="op-1")
    for update in (CampaignLifecycleWorkflow.pause, CampaignLifecycleWorkflow.resume):
        with pytest.raises(WorkflowUpdateFailedError) as failed:
            await handle.execute_update(update, operator)
        assert isinstance(failed.value.cause, ApplicationError)
        assert failed.value.cause.type == "invalid_transition"


async def test_scheduled_campaign_called_off_never_goes_live(
    time_skipping_env: WorkflowEnvironment, lifecycle: Lifecycle, queue: str
) -> None:
    campaign_id, handle = await submit(
        time_skipping_env, lifecycle, queue, budget_usd=Decimal(100), starts_in=timedelta(days=7)
    )
    await time_skipping_env.sleep(timedelta(minutes=1))
    assert await stored_status(lifecycle, campaign_id) is S.SCHEDULED
    operator = OperatorRequest(actor_id="op-1", actor_name="Olga", reason="launch cancelled")

    archived = await handle.execute_update(CampaignLifecycleWorkflow.archive, operator)

    assert archived.status is S.ARCHIVED
    final = await handle.result()  # the run ends there, without waiting for the start date
    assert [(m.from_status, m.to_status) for m in final.history][-1] == (S.SCHEDULED, S.ARCHIVED)
    assert S.LIVE not in {m.to_status for m in final.history}
    assert final.history[-1].actor_name == "Olga"
    assert await stored_status(lifecycle, campaign_id) is S.ARCHIVED


async def test_a_campaign_edited_while_it_is_submitted_is_not_submitted(
    time_skipping_env: WorkflowEnvironment, lifecycle: Lifecycle, queue: str
) -> None:
    # The API read version 1 and checked it (budget under the auto-approval threshold); an
    # edit moved the campaign to version 2 before the workflow wrote in_review.
    campaign_id = await lifecycle.new_campaign()
    edited = await lifecycle.campaigns.find(lifecycle.tenant_id, campaign_id)
    assert edited is not None
    await lifecycle.campaigns.save(edited.campaign, expected_version=edited.version)
    start = WithStartWorkflowOperation(
        CampaignLifecycleWorkflow.run,
        LifecycleInput(
            tenant_id=lifecycle.tenant_id,
            campaign_id=campaign_id,
            budget_usd=Decimal(100),
            submitted_by=SUBMITTER,
            campaign_version=edited.version,  # the version before the edit
        ),
        id=workflow_id(lifecycle.tenant_id, campaign_id),
        task_queue=queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )

    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await time_skipping_env.client.execute_update_with_start_workflow(
            CampaignLifecycleWorkflow.submission, start_workflow_operation=start
        )

    assert isinstance(failed.value.cause, ApplicationError)
    assert failed.value.cause.type == "changed_concurrently"
    final = await (await start.workflow_handle()).result()
    assert (final.status, final.history) == (S.DRAFT, [])  # nothing recorded or approved
    after = await lifecycle.campaigns.find(lifecycle.tenant_id, campaign_id)
    assert after is not None
    assert (after.campaign.status, after.version) == (S.DRAFT, edited.version + 1)
    assert await lifecycle.records.history(lifecycle.tenant_id, campaign_id) == []


async def test_end_date_before_approval_completes_at_once(
    time_skipping_env: WorkflowEnvironment, lifecycle: Lifecycle, queue: str
) -> None:
    _, handle = await submit(
        time_skipping_env, lifecycle, queue, starts_in=timedelta(hours=1), lasts=timedelta(hours=1)
    )
    # Past the end date (2 h), far from the first reminder (24 h): between skips the server's
    # clock runs at real pace, so a skip of exactly a day lands a few milliseconds before the
    # reminder timer, which then fires while bob's vote task cancels it. The time-skipping
    # server refuses that cancel and never sends the workflow another task, so the update
    # hangs (temporalio/sdk-java#2606, #3088); a real server accepts it.
    await time_skipping_env.sleep(timedelta(hours=3))
    await handle.execute_update(CampaignLifecycleWorkflow.vote, vote("alice"))
    await handle.execute_update(CampaignLifecycleWorkflow.vote, vote("bob"))
    await time_skipping_env.sleep(timedelta(minutes=1))
    state = await handle.query(CampaignLifecycleWorkflow.state)
    assert state.status is S.COMPLETED
    assert state.history[-1].reason == "end date passed before the start"


async def test_completed_campaign_is_archived_after_the_retention(
    time_skipping_env: WorkflowEnvironment, lifecycle: Lifecycle, queue: str
) -> None:
    _, handle = await submit(
        time_skipping_env,
        lifecycle,
        queue,
        budget_usd=Decimal(100),
        starts_in=timedelta(0),
        lasts=timedelta(days=1),
    )
    final = await handle.result()
    assert final.status is S.ARCHIVED
    assert final.history[-1].reason == "archived automatically after completion"


async def test_recorded_moves_are_idempotent(lifecycle: Lifecycle) -> None:
    from domain.lifecycle import Transition

    campaign_id = await lifecycle.new_campaign()
    move = Transition(
        from_status=S.DRAFT, to_status=S.IN_REVIEW, at=datetime.now(UTC), actor_id="x"
    )
    first = await lifecycle.records.apply_transition(lifecycle.tenant_id, campaign_id, move, "k1")
    again = await lifecycle.records.apply_transition(lifecycle.tenant_id, campaign_id, move, "k1")
    assert (first, again) == (True, False)
    events = await lifecycle.records.history(lifecycle.tenant_id, campaign_id)
    assert len(events) == 1
