"""Customer journeys against no-op workflows of the same shape, on one embedded dev server.

What it measures: history events per second that the embedded Temporal dev server and the
platform's worker get through while N customers walk a three-step journey, and then while N
no-op workflows issue the same commands; the ratio says what our workflow, its activities
(database reads and writes, the email through the real SendGrid adapter) and its payloads
cost. Issue 4's goal: ratio >= 0.8. A missed goal is printed, never an error.

Set-up, as ``campaign-express up`` has it: the platform's runtime starts a dev server
(``temporal server start-dev`` on SQLite with the WAL pragmas, Temporal Web on) in a temporary
CE_HOME on free ports, and this process runs one worker built like the platform's, with the
platform's activities over the runtime's SQLite database. Emails go to the local SendGrid
stand-in (``tests/support/vendors``) in a subprocess of its own, as a vendor would be.

The journey (signal-with-start with the triggering event, as the trigger evaluator starts it):

    update_profile (welcomed) -> wait 1 s -> email (plan: caps, quiet hours, suppression;
    send: render with the profile and the event, SendGrid) -> exit (close the entry)

Each customer's profile (address, first name), triggering event and entry row are written
before the clock starts: the entry path (rules, admission) is not what is measured here.

The baseline (``BenchJourneyShape`` in bench/noop_journey.py): started the same way
(signal-with-start, memo, search attributes), it upserts the same search attributes, runs four
activities that return at once and the same one-second timer, in the same order, with tiny
payloads: the same 36 history events per run, the same server work. What differs is ours:
pydantic payloads carrying the journey definition, the workflow modules the sandbox imports
for each run, the activities' reads and writes, the HTTP call to the stand-in.

Each phase is timed from its first start to its last result; its events are counted from
every run's history afterwards. A warm-up of both phases runs first, unmeasured; then
--rounds rounds of both, every other round in reverse order; medians at the end.

Run from the repository root (about a minute with the defaults):

    .venv/bin/python bench/journeys.py [--customers 200] [--rounds 3] [--warmup 20]
        [--activities real|instant] [--order journey,no-op]

--activities instant registers stand-ins for the journey's activities (same names and types,
canned answers, no database, no HTTP): the gap between the two says what the activities cost.
"""

from __future__ import annotations

import argparse
import collections
import gc
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvloop
from measure import Starter, free_port, run_workflows  # beside this script: bench/
from noop_journey import JourneyShape, noop_step
from pydantic import SecretStr
from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy

from activities.journeys import (
    CloseEntry,
    DeliveryPlan,
    PlanDelivery,
    SendMessage,
    SendOutcome,
    UpdateTraits,
)
from adapters.db import TenantRepository
from adapters.db.delivery import DeliveryRepository
from adapters.db.journeys import (
    CustomerEventRepository,
    CustomerProfiles,
    EntryRepository,
    JourneyRepository,
)
from adapters.settings import Settings, TemporalSettings
from domain.customer_events import CustomerEvent, EventSource
from domain.delivery import DeliveryPolicy
from domain.entry import event_entry_id
from domain.journey_runs import CustomerEventRef, JourneyRunInput, workflow_id
from domain.journeys import JourneyDefinition
from temporal.sandbox import workflow_runner
from temporal.search_attributes import CUSTOMER_ID, JOURNEY_ID, TENANT_ID
from workers.runtime import Role, Runtime
from workers.temporal_worker import build_worker
from workflows.journey import JourneyWorkflow
from workflows.registry import WORKFLOWS

RPC_TIMEOUT = timedelta(seconds=10)
SENDGRID_KEY = "SG.bench-journeys"
TRIGGER = "signed_up"
GOAL = 0.8  # issue 4: journey events/s at least this share of the no-op baseline's

JOURNEY: dict[str, Any] = {
    "name": "Bench welcome",
    "trigger": {"type": "event", "event": TRIGGER},
    "start": "mark",
    "nodes": [
        {"id": "mark", "type": "update_profile", "set": {"welcomed": True}, "next": "pause"},
        {"id": "pause", "type": "wait", "duration": "PT1S", "next": "welcome"},
        {"id": "welcome", "type": "action", "channel": "email",
         "template": {"subject": "Welcome, {{ profile.first_name }}",
                      "body": "Your plan: {{ event.plan }}"},
         "next": "done"},
        {"id": "done", "type": "exit"},
    ],
}  # fmt: skip


# Stand-ins for the journey's activities (--activities instant): their names, their types,
# canned answers, nothing read or written.


@activity.defn(name="journey.update_traits")
async def instant_update_traits(request: UpdateTraits) -> None:
    return None


@activity.defn(name="journey.plan_delivery")
async def instant_plan_delivery(request: PlanDelivery) -> DeliveryPlan:
    return DeliveryPlan(verdict="send", send_at=request.now)


@activity.defn(name="journey.send_message")
async def instant_send_message(request: SendMessage) -> SendOutcome:
    return SendOutcome(status="sent", vendor_message_id="instant")


@activity.defn(name="journey.close_entry")
async def instant_close_entry(request: CloseEntry) -> None:
    return None


INSTANT: list[Callable[..., Any]] = [
    instant_update_traits,
    instant_plan_delivery,
    instant_send_message,
    instant_close_entry,
]


# --- measuring ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhaseResult:
    name: str
    runs: int
    events: int
    wall_s: float
    worker_cpu_s: float
    server_cpu_s: float

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s

    def row(self) -> str:
        return (
            f"{self.name:<8} {self.runs:>5} {self.events:>7} {self.events / self.runs:>6.1f} "
            f"{self.wall_s:>7.2f} {self.events_per_s:>9.0f} {self.runs / self.wall_s:>7.1f} "
            f"{self.worker_cpu_s:>8.1f} {self.server_cpu_s:>8.1f}"
        )


HEADER = (
    f"{'phase':<8} {'runs':>5} {'events':>7} {'ev/run':>6} {'wall s':>7} {'events/s':>9} "
    f"{'runs/s':>7} {'cpu us':>8} {'cpu srv':>8}"
)


async def run_phase(
    name: str, numbers: Sequence[int], start: Starter, server_pid: int, client: Client
) -> tuple[PhaseResult, list[Any]]:
    """A workflow for each number, timed; then the events in their histories. Returns the
    workflows' results too."""
    phase = await run_workflows(numbers, start, server_pid, client, rpc_timeout=RPC_TIMEOUT)
    events = sum(len(history.events) for history in phase.histories)
    result = PhaseResult(
        name, len(numbers), events, phase.wall_s, phase.worker_cpu_s, phase.server_cpu_s
    )
    return result, phase.results


# --- the run ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    tenant_id: str
    journey_id: str
    version: int
    definition: JourneyDefinition
    entries: list[tuple[str, CustomerEventRef]]  # per customer number: entry id, trigger


async def seed(runtime: Runtime, customers: int) -> Seeded:
    """A tenant (no quiet hours: a bench at night would otherwise wait for the morning), the
    published journey, and per customer a profile, the triggering event and the entry row."""
    sessions = (await runtime.database()).async_session
    now = datetime.now(UTC)
    tenant = await TenantRepository(sessions).ensure("bench-journeys")
    await DeliveryRepository(sessions).save_policy(
        tenant.id, DeliveryPolicy(quiet_start=None, quiet_end=None)
    )
    journeys = JourneyRepository(sessions)
    journey_id = str(uuid.uuid4())
    definition = JourneyDefinition.model_validate(JOURNEY)
    await journeys.create(tenant.id, journey_id, definition, now)
    version = (await journeys.publish(tenant.id, journey_id, "bench", now)).version
    profiles = CustomerProfiles(sessions)
    events = CustomerEventRepository(sessions)
    entries = EntryRepository(sessions)
    seeded: list[tuple[str, CustomerEventRef]] = []
    for number in range(customers):
        customer = customer_id(number)
        traits = {"email": f"{customer}@example.com", "first_name": f"Customer {number}"}
        await profiles.apply_traits(tenant.id, customer, traits, now)
        event = CustomerEvent(
            tenant_id=tenant.id,
            event_id=f"bench-evt-{number}",
            customer_id=customer,
            name=TRIGGER,
            source=EventSource.WEB,
            occurred_at=now,
            received_at=now,
            properties={"plan": "monthly"},
        )
        await events.store_new([event])
        entry_id = event_entry_id(journey_id, customer, event.event_id)
        admission = await entries.admit(
            tenant.id, journey_id, customer, entry_id=entry_id, trigger_event_id=event.event_id,
            at=now,
        )  # fmt: skip
        if not admission.entered:
            raise SystemExit(f"{customer} was not admitted: {admission.decision}")
        trigger = CustomerEventRef(event_id=event.event_id, name=TRIGGER, occurred_at=now)
        seeded.append((entry_id, trigger))
    return Seeded(tenant.id, journey_id, version, definition, seeded)


def customer_id(number: int) -> str:
    return f"bench-{number}"


async def platform_activities(runtime: Runtime, kind: str) -> list[Callable[..., Any]]:
    if kind == "instant":
        return [*INSTANT, noop_step]
    return [*await runtime.temporal_activities(), noop_step]


async def bench(options: argparse.Namespace) -> list[PhaseResult]:
    # Run as a script, the checkout is not on the path, and the stand-ins live in its tests/.
    repo = str(Path(__file__).resolve().parent.parent)
    if repo not in sys.path:
        sys.path.append(repo)
    from tests.support.vendors import StandInProcess

    with tempfile.TemporaryDirectory(prefix="ce-bench-journeys-") as scratch:
        home = Path(scratch)
        with StandInProcess(
            "sendgrid", {"api_key": SENDGRID_KEY}, log=home / "sendgrid.log"
        ) as sendgrid:
            results = await bench_in(home, sendgrid.base_url, options)
            if options.activities == "real":
                sent = len(sendgrid.accepted())
                expected = options.warmup + options.rounds * options.customers
                if sent != expected:
                    raise SystemExit(f"SendGrid accepted {sent} emails, not {expected}")
                print(f"SendGrid stand-in accepted {sent} emails, one per journey run")
            return results


async def bench_in(home: Path, sendgrid_url: str, options: argparse.Namespace) -> list[PhaseResult]:
    settings = Settings(
        home=home,
        database_url=None,
        redis_url=None,
        nats_url=None,
        temporal_address=None,
        log_level="WARNING",
        temporal=TemporalSettings(port=free_port(), ui_port=free_port()),
        sendgrid_api_key=SecretStr(SENDGRID_KEY),
        sendgrid_base_url=sendgrid_url,
        sendgrid_from="Bench <bench@example.com>",
    )
    customers: int = options.customers
    warmup: int = options.warmup
    rounds: int = options.rounds
    results: list[PhaseResult] = []
    async with Runtime(settings, Role.EMBEDDED) as runtime:
        client = await runtime.temporal_client()
        server = await runtime.temporal_dev_server()
        if server is None or server.pid is None:
            raise SystemExit("the runtime did not start a dev server of its own")
        print(f"dev server pid {server.pid} at {server.config.address}, CE_HOME {home}")
        began = time.perf_counter()
        seeded = await seed(runtime, warmup + rounds * customers)
        print(f"seeded {len(seeded.entries)} customers in {time.perf_counter() - began:.1f} s")
        queue = f"bench-{uuid.uuid4()}"
        worker = build_worker(
            client,
            workflows=[*WORKFLOWS, JourneyShape],
            activities=await platform_activities(runtime, options.activities),
            task_queue=queue,
            runner=workflow_runner(),
        )
        gc.freeze()  # as `up` does once it is built

        def options_for(workflow_id: str, customer: str, entry_id: str) -> dict[str, Any]:
            """What JourneyStarter gives a run, for both phases alike."""
            return {
                "id": workflow_id,
                "task_queue": queue,
                "id_reuse_policy": WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                "memo": {"entry_id": entry_id},
                "search_attributes": TypedSearchAttributes(
                    [
                        SearchAttributePair(TENANT_ID, seeded.tenant_id),
                        SearchAttributePair(JOURNEY_ID, seeded.journey_id),
                        SearchAttributePair(CUSTOMER_ID, customer),
                    ]
                ),
                "rpc_timeout": RPC_TIMEOUT,
            }

        async def journey(number: int) -> WorkflowHandle[Any, Any]:
            customer = customer_id(number)
            entry_id, trigger = seeded.entries[number]
            run = JourneyRunInput(
                tenant_id=seeded.tenant_id,
                journey_id=seeded.journey_id,
                journey_version=seeded.version,
                customer_id=customer,
                entry_id=entry_id,
                entry_number=1,
                definition=seeded.definition,
                trigger_event=trigger,
            )
            return await client.start_workflow(
                JourneyWorkflow.run,
                run,
                start_signal="event",
                start_signal_args=[trigger],
                **options_for(workflow_id(seeded.tenant_id, seeded.journey_id, customer),
                              customer, entry_id),
            )  # fmt: skip

        async def no_op(number: int) -> WorkflowHandle[Any, Any]:
            customer = customer_id(number)
            entry_id, trigger = seeded.entries[number]
            return await client.start_workflow(
                JourneyShape.run,
                customer,
                start_signal="event",
                start_signal_args=[trigger.event_id],
                **options_for(f"bench-shape-{uuid.uuid4()}", customer, entry_id),
            )

        phases: dict[str, Starter] = {"journey": journey, "no-op": no_op}
        order: list[str] = options.order.split(",")
        unknown = set(order) - set(phases)
        if unknown:
            raise SystemExit(f"no phase called {', '.join(sorted(unknown))}")
        async with worker:
            if warmup:
                # First runs pay for imports, pydantic schemas and the server's cold caches.
                # The no-op phase reuses the journey's customer numbers: it touches no data.
                for name in order:
                    result, outcomes = await run_phase(
                        name, range(warmup), phases[name], server.pid, client
                    )
                    check(name, outcomes)
                print(f"warm-up: {warmup} runs of each phase")
            print(HEADER)
            for round_number in range(rounds):
                # Every other round reversed: the server's database grows as it goes, and a
                # phase's place in the round then weighs on both alike.
                ordered = order if round_number % 2 == 0 else list(reversed(order))
                first = warmup + round_number * customers
                numbers = range(first, first + customers)
                for name in ordered:
                    result, outcomes = await run_phase(
                        name, numbers, phases[name], server.pid, client
                    )
                    check(name, outcomes)
                    print(result.row(), flush=True)
                    results.append(result)
    return results


def check(name: str, outcomes: list[Any]) -> None:
    """Every journey run walked all four nodes and sent its email: a run that skipped it (a cap,
    quiet hours) would do less and flatter the journey."""
    if name != "journey":
        return
    for state in outcomes:
        walked = [(step.node_id, step.outcome) for step in state.steps]
        if [node for node, _ in walked] != ["mark", "pause", "welcome", "done"] or (
            walked[2][1] != "sent"
        ):
            raise SystemExit(f"a journey run went another way: {walked}")


def summary(results: list[PhaseResult], customers: int) -> None:
    """Each phase's median events/s over the rounds, and the median of the rounds' ratios (a
    round's two phases ran back to back: their ratio is the least noisy figure)."""
    by_name: dict[str, list[PhaseResult]] = collections.defaultdict(list)
    for result in results:
        by_name[result.name].append(result)
    journey, baseline = by_name.get("journey", []), by_name.get("no-op", [])
    print(f"\n{customers} runs per phase, {len(journey)} round(s); medians:")
    for name, each in by_name.items():
        rate = statistics.median(result.events_per_s for result in each)
        # CPU per event moves less with the machine's other load than wall time does.
        worker = statistics.median(1e3 * r.worker_cpu_s / r.events for r in each)
        server = statistics.median(1e3 * r.server_cpu_s / r.events for r in each)
        print(
            f"  {name:<8} {rate:7.0f} events/s   CPU per event: bench process {worker:5.2f} ms,"
            f" dev server {server:5.2f} ms"
        )
    if journey and baseline:
        ratios = [
            mine.events_per_s / theirs.events_per_s
            for mine, theirs in zip(journey, baseline, strict=True)
        ]
        middle = statistics.median(ratios)
        verdict = "meets" if middle >= GOAL else "misses"
        listed = " ".join(f"{ratio:.2f}" for ratio in ratios)
        print(
            f"  ratio journey/no-op events/s: {middle:.2f} (rounds: {listed}); "
            f"{verdict} the goal of >= {GOAL}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("-n", "--customers", type=int, default=200, help="runs per phase")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both phases")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured runs per phase first")
    parser.add_argument(
        "--activities",
        choices=("real", "instant"),
        default="real",
        help="instant: canned journey activities (what do the database and HTTP cost?)",
    )
    parser.add_argument("--order", default="journey,no-op", help="phases, comma-separated")
    options = parser.parse_args()
    if options.customers < 1 or options.rounds < 1 or options.warmup < 0:
        parser.error("--customers and --rounds must be positive, --warmup not negative")
    results = uvloop.run(bench(options))  # as `up` runs
    summary(results, options.customers)


if __name__ == "__main__":
    main()
