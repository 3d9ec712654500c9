"""Record JourneyWorkflow histories for the replay test (read journey/README.md first).

Each scenario publishes a journey, creates customers and ingests their events through the real
trigger evaluator, which starts and signals the real JourneyWorkflow; the real activities run
over a fresh SQLite database and send through the real channel adapters to the vendors' local
stand-ins. The scenario checks that the customer went where it says, then the run's history is
written to ``journey/<scenario>.json``. Most scenarios run on a time-skipping test server of
their own; the continue-as-new ones on a dev server told to suggest continue-as-new after a
few events (the test server never suggests it). A scenario that stops mid-journey writes the
history as it stands: replay covers open workflows too.

Customers are ``anna``, ``bob``...; their addresses ``<customer>@example.com`` and
``+15005550010`` (Twilio's test number) live in the database only, never in the history (the
workflow carries ids). The worker's identity (``pid@host``) is replaced by ``recorder``.

Run from the repository root:

    .venv/bin/python -m tests.histories.record_journey              # the scenarios without a file
    .venv/bin/python -m tests.histories.record_journey NAME ...     # only these
    .venv/bin/python -m tests.histories.record_journey --list       # scenarios and what they cover
    .venv/bin/python -m tests.histories.record_journey --out DIR    # write elsewhere, to look

An existing history is never overwritten without ``--force``: it records what a released
workflow did, and changing the workflow is no reason to record it again.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from activities.journey_entry import JourneyStarter
from activities.journeys import JourneyActivities
from adapters.bus.events import StoredEventQueue
from adapters.channels import ChannelSenders
from adapters.db import Database, TenantRepository, upgrade
from adapters.db.delivery import DeliveryRepository
from adapters.db.journeys import (
    CustomerEventRepository,
    CustomerProfiles,
    CustomerRecords,
    EntryRepository,
    JourneyRepository,
)
from adapters.settings import Settings
from adapters.system import SystemClock
from domain.delivery import DeliveryPolicy
from domain.journey_runs import JourneyRunState
from temporal import search_attributes
from temporal.converter import DATA_CONVERTER
from temporal.dev_server import find_binary
from tests.integration.journey_runs.conftest import Journeys, welcome_watching_the_open
from tests.support.temporal import running_worker, time_skipping_server
from tests.support.vendors import SendGridStandIn, TwilioStandIn
from workers.triggers import TriggerEvaluator
from workflows.journey import JourneyWorkflow

HISTORIES = Path(__file__).resolve().parent / "journey"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "journeys"
SCENARIO_TIMEOUT_S = 120.0
SENDGRID_KEY = "SG.recorded-journeys"
NO_QUIET_HOURS = DeliveryPolicy(quiet_start=None, quiet_end=None)
# The dev server suggests continue-as-new once a run's history holds this many events.
SUGGEST_CONTINUE_AS_NEW_AFTER = 15
IDENTITY = "recorder"

Handle = WorkflowHandle[Any, JourneyRunState]
Server = Literal["time-skipping", "dev"]


class ScenarioFailed(RuntimeError):
    """The journey did not go as the scenario expects: nothing is written."""


@dataclass(frozen=True)
class Scenario:
    play: Callable[[Journeys], Awaitable[Handle]]
    server: Server = "time-skipping"

    @property
    def name(self) -> str:
        return self.play.__name__

    @property
    def summary(self) -> str:
        return " ".join((self.play.__doc__ or "").split())


SCENARIOS: dict[str, Scenario] = {}


def scenario(
    server: Server = "time-skipping",
) -> Callable[[Callable[[Journeys], Awaitable[Handle]]], Callable[[Journeys], Awaitable[Handle]]]:
    def register(
        play: Callable[[Journeys], Awaitable[Handle]],
    ) -> Callable[[Journeys], Awaitable[Handle]]:
        SCENARIOS[play.__name__] = Scenario(play, server)
        return play

    return register


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise ScenarioFailed(message)


def nodes(state: JourneyRunState) -> list[str]:
    return [step.node_id for step in state.steps]


def example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return loaded


# --- scenarios ----------------------------------------------------------------------------------


@scenario()
async def abandoned_cart_reminded(kit: Journeys) -> Handle:
    """examples/journeys/abandoned-cart.json without a purchase: the pause, the purchase window
    times out, the reminder is planned and sent (SendGrid), the entry closed. Whole run."""
    journey = await kit.publish(example("abandoned-cart"))
    await kit.customer("anna", first_name="Anna")
    await kit.ingest("anna", "cart_abandoned", {"cart_url": "https://shop.example/cart/1"})
    state = await kit.finished(journey, "anna")
    expect(nodes(state) == ["pause", "purchase_window", "reminder", "reminded"], f"{state}")
    expect(state.steps[1].outcome == "timeout", f"window: {state.steps[1]}")
    expect(state.steps[2].outcome == "sent", f"reminder: {state.steps[2]}")
    expect(len(kit.emails_to("anna@example.com")) == 1, "one reminder email")
    return kit.run(journey, "anna")


@scenario()
async def abandoned_cart_purchase_in_the_window(kit: Journeys) -> Handle:
    """The abandoned cart again; a purchase arrives during the wait-for-event window and, as an
    exit criterion, ends the journey there: no email. Whole run."""
    journey = await kit.publish(example("abandoned-cart"))
    await kit.customer("bob")
    await kit.ingest("bob", "cart_abandoned")
    await kit.env.sleep(timedelta(seconds=4))
    await kit.ingest("bob", "purchase", {"total": 42})
    state = await kit.finished(journey, "bob")
    expect(state.exit_reason == "exit event purchase", f"{state}")
    expect(nodes(state) == ["pause"], f"exited in the window: {state}")
    expect(kit.emails_to("bob@example.com") == [], "no email")
    return kit.run(journey, "bob")


@scenario()
async def exit_event_during_a_wait(kit: Journeys) -> Handle:
    """A two-day wait before an email, with an exit criterion that has a condition: a first
    'unsubscribed' event fails it (an activity evaluates it) and the wait goes on; the second
    meets it and ends the journey mid-wait. Whole run."""
    journey = await kit.publish(
        {
            "name": "Weekly digest",
            "trigger": {"type": "event", "event": "subscribed"},
            "exit_on": [{"event": "unsubscribed",
                         "where": [{"path": "event.list", "op": "eq", "value": "all"}]}],
            "start": "later",
            "nodes": [
                {"id": "later", "type": "wait", "duration": "P2D", "next": "digest"},
                {"id": "digest", "type": "action", "channel": "email",
                 "template": {"subject": "Your digest", "body": "-"}, "next": "done"},
                {"id": "done", "type": "exit"},
            ],
        }
    )  # fmt: skip
    await kit.customer("carl")
    await kit.ingest("carl", "subscribed")
    await kit.env.sleep(timedelta(hours=1))
    await kit.ingest("carl", "unsubscribed", {"list": "weekly"})
    await kit.env.sleep(timedelta(hours=1))
    await kit.ingest("carl", "unsubscribed", {"list": "all"})
    state = await kit.finished(journey, "carl")
    expect(state.exit_reason == "exit event unsubscribed", f"{state}")
    expect(state.steps == [], f"exited inside the first wait: {state}")
    expect(kit.emails_to("carl@example.com") == [], "no digest")
    return kit.run(journey, "carl")


def onboarding() -> dict[str, Any]:
    return {
        "name": "Onboarding",
        "trigger": {"type": "event", "event": "signed_up"},
        "start": "mark",
        "nodes": [
            {"id": "mark", "type": "update_profile", "set": {"onboarding": "started"},
             "next": "tier"},
            {"id": "tier", "type": "branch",
             "branches": [{"when": [{"path": "profile.vip", "op": "eq", "value": True}],
                           "next": "vip_sms"}],
             "otherwise": "test"},
            {"id": "vip_sms", "type": "action", "channel": "sms",
             "template": {"body": "Your VIP code: WELCOME10"}, "next": "done"},
            {"id": "test", "type": "split", "paths": [
                {"name": "tips", "weight": 50, "next": "tips"},
                {"name": "video", "weight": 50, "next": "video"}]},
            {"id": "tips", "type": "action", "channel": "email",
             "template": {"subject": "Tips", "body": "Hi {{ profile.first_name }}"},
             "next": "done"},
            {"id": "video", "type": "action", "channel": "email",
             "template": {"subject": "A video tour", "body": "Hi {{ profile.first_name }}"},
             "next": "done"},
            {"id": "done", "type": "exit"},
        ],
    }  # fmt: skip


@scenario()
async def branch_then_split(kit: Journeys) -> Handle:
    """A profile update, a branch on it (an activity reads the profile) that goes 'otherwise',
    an A/B split (decided in the workflow, by hash) and the email of the chosen path. Whole
    run."""
    journey = await kit.publish(onboarding())
    await kit.customer("walt", first_name="Walt")
    await kit.ingest("walt", "signed_up")
    state = await kit.finished(journey, "walt")
    expect(nodes(state)[:3] == ["mark", "tier", "test"], f"{state}")
    expect(state.steps[1].outcome == "branch to test", f"branch: {state.steps[1]}")
    expect(state.steps[2].outcome.startswith("split: "), f"split: {state.steps[2]}")
    expect(state.steps[3].outcome == "sent", f"email: {state.steps[3]}")
    profile = await kit.profiles.get(kit.tenant_id, "walt")
    expect(profile is not None and profile.traits.get("onboarding") == "started", "updated")
    return kit.run(journey, "walt")


@scenario()
async def branch_to_sms(kit: Journeys) -> Handle:
    """The same onboarding journey for a VIP: the branch takes its first way, an SMS through
    Twilio. Whole run."""
    journey = await kit.publish(onboarding())
    await kit.customer("vera", first_name="Vera", vip=True)
    await kit.ingest("vera", "signed_up")
    state = await kit.finished(journey, "vera")
    expect(nodes(state) == ["mark", "tier", "vip_sms", "done"], f"{state}")
    expect(state.steps[2].outcome == "sent", f"sms: {state.steps[2]}")
    expect(len(kit.twilio.accepted()) == 1, "one SMS")
    return kit.run(journey, "vera")


def shipping() -> dict[str, Any]:
    return {
        "name": "Shipping",
        "trigger": {"type": "event", "event": "order_placed"},
        "start": "shipped",
        "nodes": [
            {"id": "shipped", "type": "wait_for_event", "event": "order_shipped",
             "where": [{"path": "event.carrier", "op": "eq", "value": "ups"}],
             "timeout": "P7D", "on_event": "tracking", "on_timeout": "late"},
            {"id": "tracking", "type": "action", "channel": "email",
             "template": {"subject": "On its way", "body": "Tracking: {{ event.tracking }}"},
             "transactional": True, "next": "done"},
            {"id": "late", "type": "action", "channel": "email",
             "template": {"subject": "Sorry for the wait", "body": "-"}, "next": "done"},
            {"id": "done", "type": "exit"},
        ],
    }  # fmt: skip


@scenario()
async def wait_for_event_received(kit: Journeys) -> Handle:
    """A wait-for-event with a condition: a first 'order_shipped' fails it (checked by an
    activity), the second meets it; the transactional email renders the matched event's
    properties. Whole run."""
    journey = await kit.publish(shipping())
    await kit.customer("dora")
    await kit.ingest("dora", "order_placed")
    await kit.env.sleep(timedelta(hours=5))
    await kit.ingest("dora", "order_shipped", {"carrier": "dhl"})
    await kit.env.sleep(timedelta(hours=5))
    await kit.ingest("dora", "order_shipped", {"carrier": "ups", "tracking": "1Z999"})
    state = await kit.finished(journey, "dora")
    expect(nodes(state) == ["shipped", "tracking", "done"], f"{state}")
    expect(state.steps[0].outcome == "event", f"wait: {state.steps[0]}")
    (mail,) = kit.emails_to("dora@example.com")
    expect("Tracking: 1Z999" in mail["content"][0]["value"], f"rendered: {mail}")
    return kit.run(journey, "dora")


@scenario()
async def open_during_the_send_reaches_the_wait(kit: Journeys) -> Handle:
    """A welcome email, then a wait for its open. SendGrid takes the email and answers late;
    the open arrives while the send activity still runs and is taken by the wait (the patch
    "wait-for-event-sees-events-from-the-step-before"). Whole run."""
    journey = await kit.publish(welcome_watching_the_open())
    await kit.customer("olga")
    await kit.open_during_the_send("olga")
    state = await kit.finished(journey, "olga")
    expect(nodes(state) == ["hello", "opened", "read"], f"{state}")
    expect(state.steps[1].outcome == "event", f"wait: {state.steps[1]}")
    return kit.run(journey, "olga")


@scenario()
async def still_waiting_for_an_event(kit: Journeys) -> Handle:
    """The shipping journey with only the event that fails the condition: recorded while the
    run still waits, six days of its window left."""
    journey = await kit.publish(shipping())
    await kit.customer("emil")
    await kit.ingest("emil", "order_placed")
    await kit.env.sleep(timedelta(hours=12))
    await kit.ingest("emil", "order_shipped", {"carrier": "dhl"})
    await kit.env.sleep(timedelta(hours=12))
    handle = kit.run(journey, "emil")
    state = await handle.query(JourneyWorkflow.state)
    expect(state.node_id == "shipped" and not state.finished, f"{state}")
    return handle


@scenario()
async def quiet_hours_defer_the_send(kit: Journeys) -> Handle:
    """An email planned inside the tenant's quiet hours: the run waits for their end (a timer),
    plans again and sends. Whole run."""
    now = await kit.env.get_current_time()
    # Quiet from an hour ago until two hours from now, on the customer's clock (UTC).
    quiet = DeliveryPolicy(
        quiet_start=(now - timedelta(hours=1)).astimezone(UTC).time().replace(microsecond=0),
        quiet_end=(now + timedelta(hours=2)).astimezone(UTC).time().replace(microsecond=0),
    )
    await kit.delivery.save_policy(kit.tenant_id, quiet)
    journey = await kit.publish(
        {
            "name": "Price drop",
            "trigger": {"type": "event", "event": "price_dropped"},
            "start": "tell",
            "nodes": [
                {"id": "tell", "type": "action", "channel": "email",
                 "template": {"subject": "Cheaper now", "body": "-"}, "next": "done"},
                {"id": "done", "type": "exit"},
            ],
        }
    )  # fmt: skip
    await kit.customer("fay", timezone="UTC")
    await kit.ingest("fay", "price_dropped")
    state = await kit.finished(journey, "fay")
    expect(state.steps[0].outcome == "sent", f"{state}")
    history = await kit.run(journey, "fay").fetch_history()
    timers = [e for e in history.events if e.HasField("timer_started_event_attributes")]
    expect(len(timers) == 1, f"one timer for the quiet hours, found {len(timers)}")
    after = await kit.env.get_current_time()
    expect(after - now >= timedelta(hours=2), f"sent at {after}, quiet hours began {now}")
    return kit.run(journey, "fay")


@scenario()
async def waits_for_a_profile_date_and_a_local_time(kit: Journeys) -> Handle:
    """A wait until a date in the profile (read by an activity), then until 09:00 on the
    customer's clock (Europe/Berlin, computed by an activity), then an email. Whole run."""
    now = await kit.env.get_current_time()
    renewal = (now + timedelta(days=2)).date().isoformat()
    journey = await kit.publish(
        {
            "name": "Renewal",
            "trigger": {"type": "event", "event": "plan_bought"},
            "start": "renewal",
            "nodes": [
                {"id": "renewal", "type": "wait", "until_profile_date": "profile.renews_on",
                 "next": "morning"},
                {"id": "morning", "type": "wait", "until_local_time": "09:00:00",
                 "next": "remind"},
                {"id": "remind", "type": "action", "channel": "email",
                 "template": {"subject": "Renewal today", "body": "-"}, "next": "done"},
                {"id": "done", "type": "exit"},
            ],
        }
    )  # fmt: skip
    await kit.customer("gus", timezone="Europe/Berlin", renews_on=renewal)
    await kit.ingest("gus", "plan_bought")
    state = await kit.finished(journey, "gus")
    expect([s.outcome for s in state.steps] == ["waited", "waited", "sent", "exit"], f"{state}")
    return kit.run(journey, "gus")


def long_walk() -> dict[str, Any]:
    """Enough nodes that a run passes SUGGEST_CONTINUE_AS_NEW_AFTER events half-way."""
    steps: list[dict[str, Any]] = []
    for number in range(1, 5):
        steps.append({"id": f"step{number}", "type": "update_profile",
                      "set": {"walked": number}, "next": f"pause{number}"})  # fmt: skip
        steps.append(
            {"id": f"pause{number}", "type": "wait", "duration": "PT1S",
             "next": f"step{number + 1}" if number < 4 else "bye"}
        )  # fmt: skip
    return {
        "name": "Long walk",
        "trigger": {"type": "event", "event": "walk"},
        "start": "step1",
        "nodes": [
            *steps,
            {"id": "bye", "type": "action", "channel": "email",
             "template": {"subject": "Done walking", "body": "-"}, "next": "done"},
            {"id": "done", "type": "exit"},
        ],
    }  # fmt: skip


async def walk_through_continue_as_new(kit: Journeys) -> list[Handle]:
    """The long walk on a server that suggests continue-as-new early: its runs, in order."""
    journey = await kit.publish(long_walk())
    await kit.customer("hal")
    await kit.ingest("hal", "walk")
    latest = kit.run(journey, "hal")
    state = await latest.result()  # follows the runs to the last one's result
    expect(state.finished and nodes(state)[-1] == "done", f"{state}")
    expect(state.steps[0].node_id == "step1", f"steps carried over: {state}")
    history = await latest.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    runs: list[Handle] = []
    run_id = started.first_execution_run_id
    while run_id:
        run = kit.env.client.get_workflow_handle_for(JourneyWorkflow.run, latest.id, run_id=run_id)
        runs.append(run)
        ending = (await run.fetch_history()).events[-1]
        run_id = ending.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    expect(len(runs) >= 3, f"the walk continued as new at least twice, not {len(runs) - 1} times")
    return runs


@scenario(server="dev")
async def continue_as_new_first_run(kit: Journeys) -> Handle:
    """A walk of ten nodes (profile updates, one-second waits, an email) on a dev server that
    suggests continue-as-new after 15 events: the first run, which ends continuing as new
    with the steps it walked."""
    return (await walk_through_continue_as_new(kit))[0]


@scenario(server="dev")
async def continue_as_new_resumed_run(kit: Journeys) -> Handle:
    """The same walk: the second run, which starts from the carried state (``resume``),
    walks on and continues as new again."""
    return (await walk_through_continue_as_new(kit))[1]


@scenario(server="dev")
async def continue_as_new_last_run(kit: Journeys) -> Handle:
    """The same walk: the last run, which resumes at the exit node and closes the entry."""
    return (await walk_through_continue_as_new(kit))[-1]


# --- recording ------------------------------------------------------------------------------------


@asynccontextmanager
async def server(kind: Server) -> AsyncIterator[WorkflowEnvironment]:
    if kind == "time-skipping":
        async with time_skipping_server() as env:
            yield env
        return
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


@asynccontextmanager
async def journeys_on(env: WorkflowEnvironment, scratch: Path) -> AsyncIterator[Journeys]:
    """What tests/integration/journey_runs/conftest.py's ``kit`` builds, on ``env``: a fresh
    SQLite database with one tenant (no quiet hours), the vendors' stand-ins, the real
    activities on a worker, and the trigger evaluator."""
    async with AsyncExitStack() as stack:
        sendgrid = stack.enter_context(SendGridStandIn(api_key=SENDGRID_KEY).serve())
        twilio = stack.enter_context(TwilioStandIn().serve())
        url = f"sqlite:///{scratch / 'journeys.db'}"
        upgrade(url)
        database = Database(url)
        stack.push_async_callback(database.dispose)
        sessions = database.async_session
        tenant = await TenantRepository(sessions).ensure("recorded")
        delivery = DeliveryRepository(sessions)
        await delivery.save_policy(tenant.id, NO_QUIET_HOURS)
        settings = Settings(
            home=scratch / "home",
            sendgrid_api_key=SecretStr(SENDGRID_KEY),
            sendgrid_base_url=sendgrid.base_url,
            sendgrid_from="Shop <shop@example.com>",
            twilio_account_sid=twilio.account_sid,
            twilio_auth_token=SecretStr(twilio.auth_token),
            twilio_base_url=twilio.base_url,
            twilio_from="+15005550006",
        )
        senders = ChannelSenders.from_settings(settings)
        stack.push_async_callback(senders.aclose)
        activities = JourneyActivities(CustomerRecords(sessions), delivery, senders)
        queue = await stack.enter_async_context(
            running_worker(env.client, workflows=[JourneyWorkflow], activities=activities.all())
        )

        async def client() -> Any:
            return env.client

        events = CustomerEventRepository(sessions)
        evaluator = TriggerEvaluator(
            StoredEventQueue(events),
            events=events,
            profiles=CustomerProfiles(sessions),
            journeys=JourneyRepository(sessions),
            entries=EntryRepository(sessions),
            starter=JourneyStarter(EntryRepository(sessions), client, task_queue=queue),
            clock=SystemClock(),
        )
        yield Journeys(
            env=env,
            tenant_id=tenant.id,
            journeys=JourneyRepository(sessions),
            profiles=CustomerProfiles(sessions),
            delivery=delivery,
            evaluator=evaluator,
            sendgrid=sendgrid,
            twilio=twilio,
        )


def anonymised(history: WorkflowHistory) -> str:
    """The history's JSON with every ``identity`` (``pid@hostname`` of the worker and the
    client) replaced: nothing about the machine it was recorded on."""
    document = json.loads(history.to_json())

    def scrub(node: Any) -> None:
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


def load(path: Path) -> WorkflowHistory:
    """A stored history. The test server leaves the workflow id out of the start event and
    replay only needs a name, so the file's stands in where the history has none."""
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    started = history.events[0].workflow_execution_started_event_attributes
    if started.workflow_id:
        return WorkflowHistory(started.workflow_id, history.events)
    return history


async def record(name: str, out: Path) -> Path:
    """Run one scenario on a server, database and stand-ins of its own; write its history."""
    chosen = SCENARIOS[name]
    with tempfile.TemporaryDirectory(prefix="ce-record-journey-") as scratch:
        async with (
            asyncio.timeout(SCENARIO_TIMEOUT_S),
            server(chosen.server) as env,
            journeys_on(env, Path(scratch)) as kit,
        ):
            handle = await chosen.play(kit)
            history = await handle.fetch_history()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(anonymised(history))
    return path


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", metavar="NAME", help="default: all missing")
    parser.add_argument("--out", type=Path, default=HISTORIES, help="default: %(default)s")
    parser.add_argument("--force", action="store_true", help="overwrite existing histories")
    parser.add_argument("--list", action="store_true", help="list the scenarios and stop")
    options = parser.parse_args(argv)
    if options.list:
        for each in SCENARIOS.values():
            print(f"{each.name} ({each.server} server)\n    {each.summary}")
        return 0
    unknown = sorted(set(options.scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"no scenario called {', '.join(unknown)}; see --list")
    out: Path = options.out
    for name in options.scenarios or list(SCENARIOS):
        target = out / f"{name}.json"
        if target.exists() and not options.force:
            print(f"kept     {target} (exists; --force overwrites)")
            continue
        print(f"recorded {await record(name, out)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
