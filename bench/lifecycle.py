"""Campaign lifecycle workflows against no-op workflows, on one embedded Temporal dev server.

What it measures: history events per second that the embedded dev server and the platform's
worker get through, running N CampaignLifecycleWorkflows, and then N no-op workflows on the
same server and worker; the ratio says whether our workflow, its activities and its payloads
slow the pair down. Issue 3's goal: ratio >= 0.8 ("our worker never the bottleneck").

Set-up, as ``campaign-express up`` has it: a dev server started by the platform's runtime
(``temporal server start-dev`` on SQLite with the WAL pragmas, Temporal Web on) in a temporary
CE_HOME on free ports, and in this process one worker built like the platform's, with the
real lifecycle activities over the runtime's SQLite database (the campaigns exist there).

Phases, each timed from the first start to the last result (events are counted afterwards,
from each run's history):

  lifecycle  budget under the auto-approval threshold, start now: in_review -> approved ->
             scheduled -> live -> completed -> archived (six recorded moves), archived
             --archive-s after completion. How it completes (--complete-by):
               budget    (default) started with the budget-spent signal (signal-with-start,
                         as spend tracking sends it), so it completes as soon as it is live;
                         one short timer (the archive), and every run takes the same path
                         however loaded the server is.
               end-date  end date --live-s after the start, as the issue first put it. Under
                         load a run that needs longer than --live-s to get through its first
                         moves completes straight from scheduled, never live (149 of 200 with
                         --live-s 5 here), and a longer --live-s turns the phase into a wait:
                         the wall time is then the timer's, not the throughput's.
  shaped     the baseline: a no-op workflow issuing the same commands in the same order
             (search attribute upserts, activities that return at once, the same signal and
             timers, the same branches) with tiny payloads. Same server work per run; what
             differs is our code: pydantic payloads, the sandboxed workflow module, the
             activities' SQLite writes. The headline ratio is lifecycle / shaped.
  empty      a workflow that returns at once (five events): the server's rate for the most
             trivial workflow there is, printed for reference. Starting and closing a run cost
             the server more than appending to one, so events/s against it says little.

Each phase prints its events/s and runs/s, the history size per run, the CPU seconds this
process (worker and client) and the server burnt, and, from the histories' timestamps, how
long workflow and activity tasks waited in their queues and how long the worker held them:
which side was busy says which one limits. A warm-up of every phase runs first, unmeasured;
then --rounds rounds of every phase, every other round in reverse order, and the medians.

Run from the repository root (about two minutes with the defaults):

    .venv/bin/python bench/lifecycle.py [-n 200] [--rounds 3] [--warmup 20] [--archive-s 1]
        [--complete-by budget|end-date] [--live-s 5] [--order lifecycle,shaped,empty]
        [--activities real|instant] [--database-url URL] [--profile]

--activities instant registers stand-ins for the lifecycle's activities (same names, same
inputs, no writes), to see what the database costs; --database-url points the activities at
another database (PostgreSQL) than the SQLite file in CE_HOME. --profile records this process
with py-spy (the thread holding the GIL) during the first lifecycle phase and prints the
hottest functions; py-spy needs ptrace rights (root, or kernel.yama.ptrace_scope=0).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import gc
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from temporalio import activity, workflow

if TYPE_CHECKING:
    from temporalio.api.history.v1 import HistoryEvent
    from temporalio.client import Client, WorkflowHandle

    from workers.runtime import Runtime

with workflow.unsafe.imports_passed_through():
    from measure import Starter, free_port, py_spy_stacks, run_workflows  # beside this script

    from activities.campaigns import RecordApprovalNudge, RecordTransition, RecordVote
    from temporal.search_attributes import CAMPAIGN_ID, CAMPAIGN_STATUS, TENANT_ID

# The workflow sandbox re-imports this module for every run of the baselines below, as it does
# the lifecycle's module for every lifecycle run: at the top, only what passes through it
# (the standard library, temporalio, our passthrough packages); the rest in functions.

BIN = Path(sys.executable).parent
STEP_TIMEOUT = timedelta(seconds=30)
TENANT = "bench"
GOAL = 0.8  # issue 3: lifecycle events/s at least this share of the baseline's


# --- the baselines --------------------------------------------------------------------------


@dataclass(frozen=True)
class ShapedPlan:
    end_at: datetime | None
    archive_after_s: int


@activity.defn(name="bench.noop")
async def noop_step(status: str) -> bool:
    return True


@workflow.defn(name="BenchShapedNoOp")
class ShapedNoOp:
    """The lifecycle's commands and branches for an auto-approved campaign, doing nothing."""

    def __init__(self) -> None:
        self._budget_spent = False

    @workflow.signal
    def budget_exhausted(self) -> None:
        self._budget_spent = True

    @workflow.run
    async def run(self, plan: ShapedPlan) -> int:
        workflow.upsert_search_attributes(
            [TENANT_ID.value_set(TENANT), CAMPAIGN_ID.value_set(workflow.info().workflow_id)]
        )
        for status in ("in_review", "approved", "scheduled"):
            await self._move(status)
        if not self._ended(plan):
            await self._move("live")
            while not (self._budget_spent or self._ended(plan)):
                timeout = None if plan.end_at is None else plan.end_at - workflow.now()
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(lambda: self._budget_spent, timeout=timeout)
        await self._move("completed")
        await workflow.sleep(timedelta(seconds=plan.archive_after_s))
        await self._move("archived")
        return 0

    def _ended(self, plan: ShapedPlan) -> bool:
        return plan.end_at is not None and workflow.now() >= plan.end_at

    async def _move(self, status: str) -> None:
        await workflow.execute_activity(noop_step, status, start_to_close_timeout=STEP_TIMEOUT)
        workflow.upsert_search_attributes([CAMPAIGN_STATUS.value_set(status)])


@workflow.defn(name="BenchEmptyNoOp")
class EmptyNoOp:
    @workflow.run
    async def run(self) -> None:
        return None


# --- measuring ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhaseResult:
    name: str
    runs: int
    events: int
    history_bytes: int
    wall_s: float
    worker_cpu_s: float
    server_cpu_s: float
    waits: dict[str, list[float]]  # see task_waits

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s

    def line(self) -> str:
        return (
            f"{self.name:<10} {self.runs:>5} runs {self.events:>7} events {self.wall_s:>7.2f} s "
            f"{self.events_per_s:>8.0f} events/s {self.runs / self.wall_s:>6.1f} runs/s  "
            f"{self.history_bytes / self.runs / 1024:5.1f} KiB/run  "
            f"cpu: worker {self.worker_cpu_s:5.1f} s, server {self.server_cpu_s:5.1f} s"
        )

    def wait_lines(self) -> list[str]:
        lines = []
        for name, values in self.waits.items():
            if len(values) >= 2:
                cuts = statistics.quantiles(values, n=20)
                p50, p95 = 1000 * cuts[9], 1000 * cuts[18]
                lines.append(f"{'':11}{name:<24} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms")
        return lines


def task_waits(events: Sequence[HistoryEvent]) -> dict[str, list[float]]:
    """Where a run's time went, from its events' timestamps: how long workflow and activity
    tasks waited in their queues for the worker (scheduled -> started), and how long the
    worker took to complete them (started -> completed, the RPCs included)."""
    pairs = {
        "workflow task queued": ("workflow_task_scheduled", "workflow_task_started"),
        "workflow task in worker": ("workflow_task_started", "workflow_task_completed"),
        "activity queued": ("activity_task_scheduled", "activity_task_started"),
        "activity in worker": ("activity_task_started", "activity_task_completed"),
    }
    waits: dict[str, list[float]] = {name: [] for name in pairs}
    at: dict[tuple[str, int], float] = {}
    for event in events:
        field = event.WhichOneof("attributes") or ""
        kind = field.removesuffix("_event_attributes")
        moment = event.event_time.ToDatetime().timestamp()
        # Started and completed events name the event that scheduled their task.
        scheduled = getattr(getattr(event, field), "scheduled_event_id", 0) if field else 0
        key = event.event_id if kind.endswith("_scheduled") else scheduled
        for name, (first, second) in pairs.items():
            if kind == first:
                at[(name, key)] = moment
            elif kind == second and (name, key) in at:
                waits[name].append(moment - at.pop((name, key)))
    return waits


async def run_phase(
    name: str, numbers: range, start: Starter, server_pid: int, client: Client
) -> PhaseResult:
    """A workflow for each of ``numbers``, timed; then the events in their histories."""
    phase = await run_workflows(numbers, start, server_pid, client)
    waits: dict[str, list[float]] = collections.defaultdict(list)
    for each in phase.histories:
        for step, values in task_waits(each.events).items():
            waits[step].extend(values)
    return PhaseResult(
        name=name,
        runs=len(numbers),
        events=sum(len(each.events) for each in phase.histories),
        history_bytes=sum(
            sum(event.ByteSize() for event in each.events) for each in phase.histories
        ),
        wall_s=phase.wall_s,
        worker_cpu_s=phase.worker_cpu_s,
        server_cpu_s=phase.server_cpu_s,
        waits=dict(waits),
    )


@contextlib.contextmanager
def profiled(enabled: bool, out: Path) -> Iterator[None]:
    """py-spy on this process for the duration of the block (raw, collapsed stacks)."""
    if not enabled:
        yield
        return
    spy = subprocess.Popen(
        [str(BIN / "py-spy"), "record", "-p", str(os.getpid()), "-r", "200", "--gil", "-f", "raw",
         "-o", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    time.sleep(1.0)  # py-spy attaches before the phase starts
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            _, errors = spy.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            spy.kill()
            _, errors = spy.communicate()
        if not out.exists():
            print(f"py-spy wrote nothing: {errors.decode(errors='replace')[-500:]}")


# Where the GIL went, by area: a sample counts for every area one of its frames belongs to.
PROFILE_AREAS = {
    "lifecycle activities (database writes)": ("activities/campaigns.py",),
    "  of which SQLAlchemy": ("sqlalchemy/",),
    "  of which the aiosqlite threads": ("aiosqlite/",),
    "workflow sandbox: new run (module import)": ("SandboxedWorkflowRunner.create_instance",),
    "workflow activations (sandboxed code)": ("_Instance._run_code",),
    "pydantic data converter": ("temporalio/contrib/pydantic.py",),
    "Temporal core bridge (polls, completions)": ("temporalio/bridge/",),
}


def print_profile(path: Path, top: int = 20) -> None:
    own: collections.Counter[str] = collections.Counter()
    areas: collections.Counter[str] = collections.Counter()
    total = 0
    for frames, samples in py_spy_stacks(path):
        total += samples
        own[frames[-1]] += samples
        for area, needles in PROFILE_AREAS.items():
            if any(needle in frame for frame in frames for needle in needles):
                areas[area] += samples
    if total == 0:
        print("py-spy: no samples")
        return
    print(f"\npy-spy, {total} samples of the thread holding this process's GIL, lifecycle phase")
    print(" incl.  area")
    for area in PROFILE_AREAS:
        print(f"{100 * areas[area] / total:5.1f}%  {area}")
    print("  self  function")
    for frame, samples in own.most_common(top):
        print(f"{100 * samples / total:5.1f}%  {frame[:120]}")


# --- the run --------------------------------------------------------------------------------


async def seed_campaigns(runtime: Runtime, count: int) -> tuple[str, list[str]]:
    """A tenant and ``count`` draft campaigns in the runtime's database, as a marketer leaves
    them before submitting."""
    from decimal import Decimal

    from adapters.db import CampaignRepository, TenantRepository
    from domain.campaigns import Campaign, CampaignStatus

    database = await runtime.database()
    tenant = await TenantRepository(database.async_session).ensure(TENANT)
    campaigns = CampaignRepository(database.async_session)
    ids = []
    for number in range(count):
        campaign = Campaign(
            id=str(uuid.uuid4()),
            tenant_id=tenant.id,
            name=f"Bench campaign {number}",
            status=CampaignStatus.DRAFT,
            budget=Decimal(500),
            max_bid=Decimal(2),
        )
        await campaigns.save(campaign)
        ids.append(campaign.id)
    return tenant.id, ids


async def bench(options: argparse.Namespace) -> list[PhaseResult]:
    with tempfile.TemporaryDirectory(prefix="ce-bench-lifecycle-") as scratch:
        return await bench_in(Path(scratch), options)


async def bench_in(home: Path, options: argparse.Namespace) -> list[PhaseResult]:
    """The bench with ``home`` as CE_HOME (the dev server's and the activities' databases)."""
    from decimal import Decimal

    from adapters.settings import Settings, TemporalSettings
    from domain.lifecycle import LifecycleInput
    from temporal.sandbox import workflow_runner
    from workers.runtime import Role, Runtime
    from workers.temporal_worker import build_worker
    from workflows.campaign_lifecycle import CampaignLifecycleWorkflow, workflow_id
    from workflows.registry import WORKFLOWS

    settings = Settings(
        home=home,
        database_url=options.database_url,
        redis_url=None,
        nats_url=None,
        temporal_address=None,
        log_level="WARNING",
        temporal=TemporalSettings(port=free_port(), ui_port=free_port()),
    )
    runs: int = options.runs
    results: list[PhaseResult] = []
    async with Runtime(settings, Role.EMBEDDED) as runtime:
        client = await runtime.temporal_client()
        server = await runtime.temporal_dev_server()
        if server is None or server.pid is None:
            raise SystemExit("the runtime did not start a dev server of its own")
        print(f"dev server pid {server.pid} at {server.config.address}, CE_HOME {home}")
        warmup: int = options.warmup
        rounds: int = options.rounds
        tenant_id, campaign_ids = await seed_campaigns(runtime, warmup + rounds * runs)
        queue = f"bench-{uuid.uuid4()}"
        worker = build_worker(
            client,
            workflows=[*WORKFLOWS, ShapedNoOp, EmptyNoOp],
            activities=[*await lifecycle_activities(runtime, options.activities), noop_step],
            task_queue=queue,
            runner=workflow_runner(),
        )
        gc.freeze()  # as `up` does once it is built
        async with worker:
            by_budget = options.complete_by == "budget"
            # A budget-spent campaign still has an end date; it is just never reached.
            lasts = timedelta(days=30) if by_budget else timedelta(seconds=options.live_s)
            signal = "budget_exhausted" if by_budget else None

            async def lifecycle(number: int) -> WorkflowHandle[Any, Any]:
                now = datetime.now(UTC)
                campaign_id = campaign_ids[number]
                return await client.start_workflow(
                    CampaignLifecycleWorkflow.run,
                    LifecycleInput(
                        tenant_id=tenant_id,
                        campaign_id=campaign_id,
                        campaign_name=f"Bench campaign {number}",
                        budget_usd=Decimal(500),
                        start_at=now,
                        end_at=now + lasts,
                        submitted_by="bench-marketer",
                        archive_after_s=options.archive_s,
                    ),
                    id=workflow_id(tenant_id, campaign_id),
                    task_queue=queue,
                    start_signal=signal,
                )

            async def shaped(number: int) -> WorkflowHandle[Any, Any]:
                plan = ShapedPlan(datetime.now(UTC) + lasts, options.archive_s)
                return await client.start_workflow(
                    ShapedNoOp.run,
                    plan,
                    id=f"bench-shaped-{uuid.uuid4()}",
                    task_queue=queue,
                    start_signal=signal,
                )

            async def empty(number: int) -> WorkflowHandle[Any, Any]:
                return await client.start_workflow(
                    EmptyNoOp.run, id=f"bench-empty-{uuid.uuid4()}", task_queue=queue
                )

            phases: dict[str, Starter] = {"lifecycle": lifecycle, "shaped": shaped, "empty": empty}
            order: Sequence[str] = options.order.split(",")
            profile_out = home / "lifecycle.pyspy.txt"
            if warmup:
                # First runs pay for imports, pydantic schemas and the server's cold caches.
                for name in order:
                    await run_phase(name, range(warmup), phases[name], server.pid, client)
            for round_number in range(rounds):
                # Every other round in reverse: a phase's place in the round (the server's
                # database grows as it goes) then weighs on each phase alike.
                ordered = order if round_number % 2 == 0 else list(reversed(order))
                print(f"round {round_number + 1}: {', '.join(ordered)}", flush=True)
                first = warmup + round_number * runs
                for name in ordered:
                    profile = options.profile and round_number == 0 and name == "lifecycle"
                    with profiled(profile, profile_out):
                        numbers = range(first, first + runs)
                        result = await run_phase(name, numbers, phases[name], server.pid, client)
                    print(result.line(), *result.wait_lines(), sep="\n", flush=True)
                    results.append(result)
            await check_lifecycles_went_live(client, tenant_id, campaign_ids)
        if options.profile and profile_out.exists():
            print_profile(profile_out)
    return results


# Stand-ins for the lifecycle's activities, under their names and with their inputs, that
# write nothing: --activities instant, to see what the database costs.


@activity.defn(name="campaign.record_transition")
async def instant_transition(request: RecordTransition) -> bool:
    return True


@activity.defn(name="campaign.record_vote")
async def instant_vote(request: RecordVote) -> bool:
    return True


@activity.defn(name="campaign.record_approval_nudge")
async def instant_nudge(request: RecordApprovalNudge) -> bool:
    return True


async def lifecycle_activities(runtime: Runtime, kind: str) -> list[Callable[..., Any]]:
    if kind == "real":
        return await runtime.temporal_activities()
    return [instant_transition, instant_vote, instant_nudge]


async def check_lifecycles_went_live(
    client: Client, tenant_id: str, campaign_ids: list[str]
) -> None:
    """Every lifecycle went live before completing: a run slower than --live-s to reach live
    completes straight from scheduled, with fewer events, and the comparison would be off."""
    from domain.campaigns import CampaignStatus
    from workflows.campaign_lifecycle import CampaignLifecycleWorkflow, workflow_id

    skipped = 0
    for campaign_id in campaign_ids:
        handle = client.get_workflow_handle_for(
            CampaignLifecycleWorkflow.run, workflow_id(tenant_id, campaign_id)
        )
        state = await handle.result(rpc_timeout=timedelta(seconds=10))
        if CampaignStatus.LIVE not in [move.to_status for move in state.history]:
            skipped += 1
    if skipped:
        print(f"warning: {skipped} lifecycles never went live (raise --live-s)")


def summary(results: list[PhaseResult]) -> None:
    """Each phase's median events/s over the rounds, and the median of the rounds' ratios
    (a round's phases ran back to back, so their ratio is the least noisy figure)."""
    by_name: dict[str, list[PhaseResult]] = collections.defaultdict(list)
    for result in results:
        by_name[result.name].append(result)
    print(f"\nover {max(len(each) for each in by_name.values())} round(s), medians:")
    for name, each in by_name.items():
        rate = statistics.median(result.events_per_s for result in each)
        # CPU per event hardly moves with the machine's other load, unlike wall time.
        worker = statistics.median(1e6 * r.worker_cpu_s / r.events for r in each)
        server = statistics.median(1e6 * r.server_cpu_s / r.events for r in each)
        print(
            f"  {name:<10} {rate:7.0f} events/s   CPU per 1000 events: worker {worker:5.0f} ms,"
            f" server {server:5.0f} ms"
        )
    lifecycle = by_name.get("lifecycle", [])
    for baseline in ("shaped", "empty"):
        if lifecycle and baseline in by_name:
            ratios = [
                mine.events_per_s / theirs.events_per_s
                for mine, theirs in zip(lifecycle, by_name[baseline], strict=True)
            ]
            listed = " ".join(f"{ratio:.2f}" for ratio in ratios)
            middle = statistics.median(ratios)
            verdict = ""
            if baseline == "shaped":
                verdict = "meets" if middle >= GOAL else "MISSES"
                verdict = f", {verdict} the goal (>= {GOAL})"
            print(f"  ratio lifecycle/{baseline:<7} {middle:5.2f}  (rounds: {listed}{verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=200, help="workflows per phase")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every phase")
    parser.add_argument(
        "--complete-by", choices=("budget", "end-date"), default="budget", help="see above"
    )
    parser.add_argument("--live-s", type=float, default=5.0, help="end date, with end-date")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured runs per phase first")
    parser.add_argument("--archive-s", type=int, default=1, help="from completion to archive")
    parser.add_argument(
        "--order", default="lifecycle,shaped,empty", help="phases, comma-separated, in order"
    )
    parser.add_argument(
        "--activities",
        choices=("real", "instant"),
        default="real",
        help="instant: lifecycle activities that write nothing (what does the database cost?)",
    )
    parser.add_argument(
        "--database-url", default=None, help="the activities' database (default: SQLite in CE_HOME)"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the lifecycle phase")
    options = parser.parse_args()
    import uvloop  # as `up` runs

    results = uvloop.run(bench(options))
    summary(results)


if __name__ == "__main__":
    main()
