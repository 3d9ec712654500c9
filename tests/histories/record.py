"""Record CampaignLifecycleWorkflow histories for the replay test (read README.md here first).

Each scenario runs the real workflow with the real activities over a fresh SQLite database, on
a server of its own, checks that the campaign ended up where the scenario says (in the workflow
and in the database), and writes the workflow's history to ``campaign_lifecycle/<scenario>.json``
(one file per run when it continues as new). Most run on the time-skipping test server; the
continue-as-new one on a dev server told to suggest continue-as-new after a few events (the
test server never suggests it). A scenario that stops mid-life (a campaign live for a month)
writes the history as it stands: replay covers open workflows too. The worker's and client's
identity (``pid@host``) is replaced by ``recorder``.

Run from the repository root:

    .venv/bin/python -m tests.histories.record              # the scenarios without a history
    .venv/bin/python -m tests.histories.record NAME ...     # only these
    .venv/bin/python -m tests.histories.record --list       # the scenarios and what they cover
    .venv/bin/python -m tests.histories.record --out DIR    # write elsewhere, to look

An existing history is never overwritten without ``--force``: a history records what a
released workflow did, and changing the workflow is no reason to record it again.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowHistory,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.campaigns import CampaignActivities
from adapters.bus.campaign_changes import InProcessCampaignChanges
from adapters.db import CampaignRepository, Database, TenantRepository, upgrade
from adapters.db.lifecycle import LifecycleRepository
from domain.approvals import ApprovalRule, Decision
from domain.campaigns import CampaignStatus
from domain.lifecycle import LifecycleInput, LifecycleState, OperatorRequest, VoteRequest
from domain.platform import Role
from temporal import search_attributes
from temporal.converter import DATA_CONVERTER
from temporal.dev_server import find_binary
from temporal.search_attributes import CAMPAIGN_ID, CAMPAIGN_STATUS, TENANT_ID
from tests.integration.workflows.conftest import Lifecycle
from tests.support.temporal import running_worker, time_skipping_server
from workflows.campaign_lifecycle import CampaignLifecycleWorkflow, workflow_id

HISTORIES = Path(__file__).resolve().parent / "campaign_lifecycle"
SCENARIO_TIMEOUT_S = 120.0
SUBMITTER = "user-submitter"
IDENTITY = "recorder"
# Small enough that a campaign's first moves already pass it, so the recording stays short.
SUGGEST_CONTINUE_AS_NEW_AFTER = 20
S = CampaignStatus

Handle = WorkflowHandle[CampaignLifecycleWorkflow, LifecycleState]


class ScenarioFailed(RuntimeError):
    """The workflow did not do what the scenario expects: nothing is written."""


@dataclass
class Stage:
    """One scenario's server, database and worker queue, and the moves a scenario makes."""

    env: WorkflowEnvironment
    lifecycle: Lifecycle
    queue: str

    async def submit(
        self,
        *,
        budget_usd: Decimal,
        starts_in: timedelta,
        lasts: timedelta,
        rule: ApprovalRule | None = None,
        archive_after: timedelta = timedelta(days=30),
    ) -> Handle:
        campaign_id = await self.lifecycle.new_campaign()
        start = await self.env.get_current_time() + starts_in
        return await self.env.client.start_workflow(
            CampaignLifecycleWorkflow.run,
            LifecycleInput(
                tenant_id=self.lifecycle.tenant_id,
                campaign_id=campaign_id,
                campaign_name="Recorded campaign",
                budget_usd=budget_usd,
                start_at=start,
                end_at=start + lasts,
                submitted_by=SUBMITTER,
                submitted_by_name="Sam Submitter",
                rule=rule or ApprovalRule(),
                archive_after_s=int(archive_after.total_seconds()),
            ),
            id=workflow_id(self.lifecycle.tenant_id, campaign_id),
            task_queue=self.queue,
        )

    def submission(self, campaign_id: str, **fields: Any) -> WithStartWorkflowOperation[Any, Any]:
        """The start as the API makes it for update-with-start of ``submission``: search
        attributes given, the id reusable once a run has ended, a running one refused."""
        tenant_id = self.lifecycle.tenant_id
        return WithStartWorkflowOperation(
            CampaignLifecycleWorkflow.run,
            LifecycleInput(
                tenant_id=tenant_id,
                campaign_id=campaign_id,
                campaign_name="Recorded campaign",
                submitted_by=SUBMITTER,
                submitted_by_name="Sam Submitter",
                **fields,
            ),
            id=workflow_id(tenant_id, campaign_id),
            task_queue=self.queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(TENANT_ID, tenant_id),
                    SearchAttributePair(CAMPAIGN_ID, campaign_id),
                    SearchAttributePair(CAMPAIGN_STATUS, "in_review"),
                ]
            ),
        )

    async def vote(
        self,
        handle: Handle,
        voter: str,
        decision: Decision = Decision.APPROVE,
        role: Role = Role.MANAGER,
    ) -> None:
        await handle.execute_update(
            CampaignLifecycleWorkflow.vote,
            VoteRequest(
                voter_id=voter,
                voter_name=voter.title(),
                role=role,
                decision=decision,
                comment=f"{decision} from {voter}",
            ),
        )

    async def until_runs(self, handle: Handle, count: int) -> None:
        """Until the workflow has continued as new into its ``count``-th run (real time)."""
        while len(await chain(self.env.client, handle)) < count:
            await asyncio.sleep(0.1)

    def latest(self, handle: Handle) -> Handle:
        """The workflow's current run, wherever continue-as-new has taken it."""
        return self.env.client.get_workflow_handle_for(CampaignLifecycleWorkflow.run, handle.id)

    async def expect(self, handle: Handle, status: CampaignStatus) -> LifecycleState:
        """The workflow's status (in its current run), and the database's, are ``status``."""
        state = await self.latest(handle).query(CampaignLifecycleWorkflow.state)
        campaign_id = handle.id.removeprefix(f"campaign-{self.lifecycle.tenant_id}-")
        record = await self.lifecycle.campaigns.find(self.lifecycle.tenant_id, campaign_id)
        stored = record.campaign.status if record is not None else None
        if state.status is not status or stored is not status:
            raise ScenarioFailed(
                f"{handle.id}: expected {status}, the workflow says {state.status} and the "
                f"database {stored}"
            )
        return state


Play = Callable[[Stage], Awaitable[Handle]]  # returns the handle of the workflow's first run


async def auto_approved_to_archived(stage: Stage) -> Handle:
    """Under the auto-approval threshold: approved at once, live at its start, completed at its
    end, archived when the retention runs out. The whole run, to its result."""
    handle = await stage.submit(
        budget_usd=Decimal(500),
        starts_in=timedelta(hours=2),
        lasts=timedelta(days=7),
        archive_after=timedelta(days=14),
    )
    final = await handle.result()
    state = await stage.expect(handle, S.ARCHIVED)
    if final.history[-1].reason != "archived automatically after completion":
        raise ScenarioFailed(f"archived for another reason: {state.history[-1].reason}")
    return handle


async def approved_after_reminder_and_escalation(stage: Stage) -> Handle:
    """Nobody votes for an hour (a reminder), then for half an hour more (the escalation); two
    managers then approve, and the campaign goes live at its start. Recorded while live, its
    end a month away."""
    rule = ApprovalRule(remind_after_s=3600, escalate_after_s=5400)
    handle = await stage.submit(
        budget_usd=Decimal(5_000), starts_in=timedelta(hours=3), lasts=timedelta(days=30), rule=rule
    )
    await stage.env.sleep(timedelta(minutes=100))
    waiting = await stage.expect(handle, S.IN_REVIEW)
    if (waiting.reminders_sent, waiting.escalated) != (1, True):
        raise ScenarioFailed(f"expected one reminder and the escalation, got {waiting}")
    await stage.vote(handle, "alice")
    await stage.vote(handle, "bob")
    await stage.env.sleep(timedelta(hours=2))
    await stage.expect(handle, S.LIVE)
    return handle


async def rejected_after_one_approval(stage: Stage) -> Handle:
    """One manager approves, the next rejects: the run ends rejected."""
    handle = await stage.submit(
        budget_usd=Decimal(5_000), starts_in=timedelta(days=1), lasts=timedelta(days=30)
    )
    await stage.vote(handle, "alice")
    await stage.vote(handle, "bob", Decision.REJECT)
    await handle.result()
    await stage.expect(handle, S.REJECTED)
    return handle


async def paused_resumed_then_budget_spent(stage: Stage) -> Handle:
    """Live at once, paused and resumed by an operator, then completed by the budget-spent
    signal. Recorded while it waits for its archive, a month away."""
    handle = await stage.submit(
        budget_usd=Decimal(800), starts_in=timedelta(0), lasts=timedelta(days=30)
    )
    await stage.env.sleep(timedelta(minutes=1))
    await stage.expect(handle, S.LIVE)
    operator = OperatorRequest(actor_id="op-1", actor_name="Olga", reason="creative check")
    await handle.execute_update(CampaignLifecycleWorkflow.pause, operator)
    await stage.env.sleep(timedelta(hours=1))
    await stage.expect(handle, S.PAUSED)
    await handle.execute_update(CampaignLifecycleWorkflow.resume, operator)
    await stage.env.sleep(timedelta(hours=1))
    await handle.signal(CampaignLifecycleWorkflow.budget_exhausted)
    await stage.env.sleep(timedelta(seconds=5))
    state = await stage.expect(handle, S.COMPLETED)
    if state.history[-1].reason != "budget spent":
        raise ScenarioFailed(f"completed for another reason: {state.history[-1].reason}")
    return handle


async def completed_then_archived_by_update(stage: Stage) -> Handle:
    """Two approvals, live for two days, completed at its end date, then archived by an
    operator's update before the retention runs out. The whole run, to its result."""
    handle = await stage.submit(
        budget_usd=Decimal(2_500), starts_in=timedelta(hours=1), lasts=timedelta(days=2)
    )
    await stage.vote(handle, "alice")
    await stage.vote(handle, "carol", role=Role.ADMIN)
    await stage.env.sleep(timedelta(days=3))
    await stage.expect(handle, S.COMPLETED)
    await handle.execute_update(
        CampaignLifecycleWorkflow.archive, OperatorRequest(actor_id="op-1", reason="wrapped up")
    )
    await handle.result()
    await stage.expect(handle, S.ARCHIVED)
    return handle


async def scheduled_then_called_off(stage: Stage) -> Handle:
    """Under the threshold, scheduled a week out, archived by an operator's update before its
    start: never live. The whole run, to its result."""
    handle = await stage.submit(
        budget_usd=Decimal(500), starts_in=timedelta(days=7), lasts=timedelta(days=7)
    )
    await stage.env.sleep(timedelta(hours=1))
    await stage.expect(handle, S.SCHEDULED)
    await handle.execute_update(
        CampaignLifecycleWorkflow.archive,
        OperatorRequest(actor_id="op-1", reason="launch cancelled"),
    )
    final = await handle.result()
    await stage.expect(handle, S.ARCHIVED)
    if any(move.to_status is S.LIVE for move in final.history):
        raise ScenarioFailed("went live after all")
    return handle


async def submitted_by_update_with_start(stage: Stage) -> Handle:
    """Started as the API starts it: update-with-start of ``submission``, search attributes
    given at the start, answered once the in_review move is written. Two approvals, then
    live. Recorded while live, its end a month away."""
    campaign_id = await stage.lifecycle.new_campaign()
    start = await stage.env.get_current_time() + timedelta(hours=1)
    operation = stage.submission(
        campaign_id,
        budget_usd=Decimal(5_000),
        start_at=start,
        end_at=start + timedelta(days=30),
    )
    submitted = await stage.env.client.execute_update_with_start_workflow(
        CampaignLifecycleWorkflow.submission, start_workflow_operation=operation
    )
    if submitted.status is not S.IN_REVIEW:
        raise ScenarioFailed(f"the submission answered {submitted.status}, not in_review")
    handle = await operation.workflow_handle()
    await stage.vote(handle, "alice")
    await stage.vote(handle, "bob")
    await stage.env.sleep(timedelta(hours=2))
    await stage.expect(handle, S.LIVE)
    return handle


async def submission_voided_by_an_edit(stage: Stage) -> Handle:
    """Started as the API starts it, on a version an edit has since moved past: the first move
    is refused, the submission update fails with changed_concurrently, and the run ends as a
    draft with nothing recorded. The whole run, to its result."""
    campaign_id = await stage.lifecycle.new_campaign()
    tenant_id = stage.lifecycle.tenant_id
    read = await stage.lifecycle.campaigns.find(tenant_id, campaign_id)
    if read is None:
        raise ScenarioFailed("the campaign was not stored")
    await stage.lifecycle.campaigns.save(read.campaign, expected_version=read.version)
    operation = stage.submission(
        campaign_id, budget_usd=Decimal(500), campaign_version=read.version
    )
    try:
        await stage.env.client.execute_update_with_start_workflow(
            CampaignLifecycleWorkflow.submission, start_workflow_operation=operation
        )
    except WorkflowUpdateFailedError as failed:
        cause = failed.cause
        if not isinstance(cause, ApplicationError) or cause.type != "changed_concurrently":
            raise ScenarioFailed(f"the submission failed otherwise: {cause!r}") from failed
    else:
        raise ScenarioFailed("the submission of an edited campaign was accepted")
    handle = await operation.workflow_handle()
    final = await handle.result()
    if final.status is not S.DRAFT or final.history:
        raise ScenarioFailed(f"ended {final.status} with {len(final.history)} moves")
    return handle


async def continued_as_new_while_live(stage: Stage) -> Handle:
    """Live at once on a server that suggests continue-as-new early: the first run continues
    as new once live; the second resumes live from the carried state, is paused and resumed,
    and continues as new again; the third resumes live, is completed by the budget signal and
    archived after a second. One file per run."""
    handle = await stage.submit(
        budget_usd=Decimal(800),
        starts_in=timedelta(0),
        lasts=timedelta(days=30),
        archive_after=timedelta(seconds=1),
    )
    operator = OperatorRequest(actor_id="op-1", actor_name="Olga", reason="creative check")
    await stage.until_runs(handle, 2)
    await stage.expect(handle, S.LIVE)
    await stage.latest(handle).execute_update(CampaignLifecycleWorkflow.pause, operator)
    await stage.latest(handle).execute_update(CampaignLifecycleWorkflow.resume, operator)
    await stage.until_runs(handle, 3)
    await stage.latest(handle).signal(CampaignLifecycleWorkflow.budget_exhausted)
    final = await stage.latest(handle).result()
    if final.status is not S.ARCHIVED or "budget spent" not in [t.reason for t in final.history]:
        raise ScenarioFailed(f"expected archived after the budget was spent, got {final}")
    return handle


@dataclass(frozen=True)
class Scenario:
    play: Play
    server: Callable[[], AbstractAsyncContextManager[WorkflowEnvironment]] = time_skipping_server
    # The files of a continue-as-new chain, one per run, in order; default: the scenario's name.
    runs: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        return " ".join((self.play.__doc__ or "").split())


@asynccontextmanager
async def continue_as_new_server() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server (real time) that suggests continue-as-new after a few events."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(find_binary("temporal")),
        data_converter=DATA_CONVERTER,
        search_attributes=search_attributes.ALL,
        dev_server_extra_args=[
            "--dynamic-config-value",
            f"limit.historyCount.suggestContinueAsNew={SUGGEST_CONTINUE_AS_NEW_AFTER}",
        ],
    )
    try:
        yield env
    finally:
        await env.shutdown()


SCENARIOS: dict[str, Scenario] = {
    "auto_approved_to_archived": Scenario(auto_approved_to_archived),
    "approved_after_reminder_and_escalation": Scenario(approved_after_reminder_and_escalation),
    "rejected_after_one_approval": Scenario(rejected_after_one_approval),
    "paused_resumed_then_budget_spent": Scenario(paused_resumed_then_budget_spent),
    "completed_then_archived_by_update": Scenario(completed_then_archived_by_update),
    "scheduled_then_called_off": Scenario(scheduled_then_called_off),
    "submitted_by_update_with_start": Scenario(submitted_by_update_with_start),
    "submission_voided_by_an_edit": Scenario(submission_voided_by_an_edit),
    "continued_as_new_while_live": Scenario(
        continued_as_new_while_live,
        server=continue_as_new_server,
        runs=(
            "continued_as_new_first_run",
            "continued_as_new_resumed_run",
            "continued_as_new_last_run",
        ),
    ),
}


def files_of(name: str) -> tuple[str, ...]:
    """The history files a scenario writes, without their suffix."""
    return SCENARIOS[name].runs or (name,)


async def chain(client: Client, handle: Handle) -> list[WorkflowHistory]:
    """The histories of ``handle``'s first run and of every run it continued as new into."""
    run_id = handle.first_execution_run_id or handle.run_id
    histories = []
    while run_id:
        history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        histories.append(history)
        last = history.events[-1]
        run_id = ""
        if last.HasField("workflow_execution_continued_as_new_event_attributes"):
            run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    return histories


async def open_lifecycle(db_path: Path) -> Lifecycle:
    """A migrated SQLite database with one tenant, and the real activities over it."""
    url = f"sqlite:///{db_path}"
    upgrade(url)
    database = Database(url)
    tenant = await TenantRepository(database.async_session).ensure("recorded")
    records = LifecycleRepository(database.async_session)
    return Lifecycle(
        database=database,
        tenant_id=tenant.id,
        campaigns=CampaignRepository(database.async_session),
        records=records,
        activities=CampaignActivities(records, InProcessCampaignChanges()),
    )


def anonymised(history: WorkflowHistory) -> str:
    """The history's JSON with every ``identity`` (``pid@host`` of the worker and the client)
    replaced: nothing about the machine it was recorded on, and no noise in diffs."""
    document = history.to_json_dict()

    def scrub(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "identity" and isinstance(value, str):
                    node[key] = IDENTITY
                else:
                    scrub(value)
        elif isinstance(node, list):
            for item in node:
                scrub(item)

    scrub(document)
    return json.dumps(document, indent=2) + "\n"


async def record(name: str, out: Path) -> list[Path]:
    """Run one scenario on a server and database of its own; write its histories."""
    scenario = SCENARIOS[name]
    files = files_of(name)
    with tempfile.TemporaryDirectory(prefix="ce-record-") as scratch:
        lifecycle = await open_lifecycle(Path(scratch) / "lifecycle.db")
        try:
            async with (
                asyncio.timeout(SCENARIO_TIMEOUT_S),
                scenario.server() as env,
                running_worker(
                    env.client,
                    workflows=[CampaignLifecycleWorkflow],
                    activities=lifecycle.activities.all(),
                ) as queue,
            ):
                handle = await scenario.play(Stage(env, lifecycle, queue))
                histories = await chain(env.client, handle)
        finally:
            await lifecycle.database.dispose()
    if len(histories) != len(files):
        raise ScenarioFailed(f"{name}: {len(histories)} runs, expected {len(files)}")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for stem, history in zip(files, histories, strict=True):
        path = out / f"{stem}.json"
        path.write_text(anonymised(history))
        paths.append(path)
    return paths


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", metavar="NAME", help="default: all missing")
    parser.add_argument("--out", type=Path, default=HISTORIES, help="default: %(default)s")
    parser.add_argument("--force", action="store_true", help="overwrite existing histories")
    parser.add_argument("--list", action="store_true", help="list the scenarios and stop")
    options = parser.parse_args(argv)
    if options.list:
        for name, scenario in SCENARIOS.items():
            print(f"{name} -> {', '.join(files_of(name))}\n    {scenario.summary}")
        return 0
    unknown = sorted(set(options.scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"no scenario called {', '.join(unknown)}; see --list")
    names = options.scenarios or list(SCENARIOS)
    out: Path = options.out
    for name in names:
        existing = [stem for stem in files_of(name) if (out / f"{stem}.json").exists()]
        if existing and not options.force:
            print(f"kept     {name}: {', '.join(existing)} exist (--force overwrites)")
            continue
        for path in await record(name, out):
            print(f"recorded {path}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
