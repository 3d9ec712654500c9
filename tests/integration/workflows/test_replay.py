"""Recorded histories of the lifecycle workflow replay against today's code.

A workflow change that would break a campaign in flight (a command added, dropped or moved)
fails here before it ships; tests/histories/README.md says what to do then. The other tests
prove the guard bites, and show the way through it: a copy of the workflow with one extra step
fails every history, and the same step behind ``workflow.patched`` replays them all.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from activities.campaigns import CampaignActivities, RecordApprovalNudge
from domain.lifecycle import LifecycleInput, LifecycleState
from temporal.converter import DATA_CONVERTER
from temporal.sandbox import workflow_runner
from tests.histories.record import HISTORIES, SCENARIOS, files_of
from workflows.campaign_lifecycle import CampaignLifecycleWorkflow
from workflows.registry import WORKFLOWS

RECORDED = sorted(HISTORIES.glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    """The history in ``path``. Servers that write the workflow id into the start event give
    it; the test server does not, and replay only needs a name, so the file's stands in."""
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    started = history.events[0].workflow_execution_started_event_attributes
    if started.workflow_id:
        return WorkflowHistory(started.workflow_id, history.events)
    return history


async def extra_step(request: LifecycleInput) -> None:
    """A change someone might make: tell the approvers before the first move is recorded."""
    await workflow.execute_activity_method(
        CampaignActivities.record_approval_nudge,
        RecordApprovalNudge(
            tenant_id=request.tenant_id,
            campaign_id=request.campaign_id,
            kind="reminder",
            at=workflow.now(),
            approvals_needed=0,
            roles_needed=[],
            idempotency_key=f"{workflow.info().workflow_id}:extra",
        ),
        start_to_close_timeout=timedelta(seconds=30),
    )


@workflow.defn(name="CampaignLifecycle")
class LifecycleWithAnExtraStep(CampaignLifecycleWorkflow):
    """Today's workflow with the extra step added as is: new runs would work, campaigns in
    flight would not."""

    @workflow.run
    async def run(self, request: LifecycleInput) -> LifecycleState:
        await extra_step(request)
        return await super().run(request)


@workflow.defn(name="CampaignLifecycle")
class LifecycleWithAPatchedExtraStep(CampaignLifecycleWorkflow):
    """The same step behind a patch: runs that started before it skip it."""

    @workflow.run
    async def run(self, request: LifecycleInput) -> LifecycleState:
        if workflow.patched("notify-approvers-on-submission"):
            await extra_step(request)
        return await super().run(request)


def replayer_of(changed: type) -> Replayer:
    return Replayer(
        workflows=[changed],
        data_converter=DATA_CONVERTER,
        # The stand-ins live in this module: pass tests through rather than re-import them.
        workflow_runner=workflow_runner("tests"),
    )


def test_every_scenario_has_a_recorded_history() -> None:
    # Without this, deleting the directory would leave the replay tests below with nothing to do.
    expected = {name for scenario in SCENARIOS for name in files_of(scenario)}
    assert {path.stem for path in RECORDED} >= expected


@pytest.mark.parametrize("path", RECORDED, ids=[path.stem for path in RECORDED])
async def test_recorded_history_replays_on_the_current_workflow(path: Path) -> None:
    replayer = Replayer(
        workflows=WORKFLOWS, data_converter=DATA_CONVERTER, workflow_runner=workflow_runner()
    )
    await replayer.replay_workflow(load(path))


@pytest.mark.parametrize("path", RECORDED, ids=[path.stem for path in RECORDED])
async def test_recorded_history_fails_on_a_workflow_with_an_extra_step(path: Path) -> None:
    with pytest.raises(workflow.NondeterminismError):
        await replayer_of(LifecycleWithAnExtraStep).replay_workflow(load(path))


@pytest.mark.parametrize("path", RECORDED, ids=[path.stem for path in RECORDED])
async def test_recorded_history_replays_when_the_extra_step_is_patched_in(path: Path) -> None:
    await replayer_of(LifecycleWithAPatchedExtraStep).replay_workflow(load(path))
