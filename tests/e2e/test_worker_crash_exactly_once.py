"""Issue 4's acceptance: the worker killed and restarted in the middle of sends, every message
delivered exactly once.

A Temporal dev server of the test's own, PostgreSQL, SendGrid's stand-in in a process of its
own, and ``campaign-express worker`` as an operator runs it. Customers enter a journey that
emails them twice. The stand-in acts on every email at once and holds its answer back a while,
so a kill always finds messages SendGrid took whose answer the worker never got. The worker is
SIGKILLed once a third of the messages went out (with such answers pending), restarted, killed
again at two thirds, restarted again; every run completes, and the stand-in counts one email
per customer and node, no more, no less.

The activities in flight on a killed worker come back when Temporal times them out: the send
activity's start-to-close timeout (two minutes, ``workflows.journey.SEND_TIMEOUT``) is most of
this test's run time.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from temporalio.client import Client

from activities.journey_entry import JourneyStarter
from adapters.db import Database, TenantRepository, upgrade
from adapters.db.delivery import DeliveryRepository
from adapters.db.journeys import CustomerProfiles, EntryRepository, JourneyRepository
from domain.delivery import DeliveryPolicy
from domain.entry import scheduled_entry_id
from domain.journey_runs import JourneyRunState, workflow_id
from domain.journeys import JourneyDefinition
from temporal.dev_server import DevServer, DevServerConfig
from tests.support.processes import CliProcess
from tests.support.services import POSTGRES, ensure, free_port
from tests.support.vendors import RemoteStandIn, StandInProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

CUSTOMERS = 60
NODES = ("first", "second")
MESSAGES = CUSTOMERS * len(NODES)
# Entries spread over a few seconds, so sends are still starting when the worker dies.
ENTRY_GAP_S = 0.1
# How long the stand-in holds each answer after taking the email.
HOLD_S = 2.0
STARTUP_S = 120
# Two minutes of send timeout, SendGrid's activity lag, the second email after it, and room
# for a shared two-core machine.
FINISH_S = 420.0
POLL_S = 0.1
SENDGRID_KEY = "SG.e2e-crash"
SENDER = "shop@brand.example"
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
JOURNEY = {
    "name": "Welcome, twice",
    "trigger": {"type": "event", "event": "signed_up"},
    "start": "first",
    "nodes": [
        {"id": "first", "type": "action", "channel": "email",
         "template": {"subject": "Welcome {{ profile.first_name }}", "body": "Hello"},
         "next": "pause"},
        {"id": "pause", "type": "wait", "duration": "PT2S", "next": "second"},
        {"id": "second", "type": "action", "channel": "email",
         "template": {"subject": "Getting started", "body": "Tips"}, "next": "done"},
        {"id": "done", "type": "exit"},
    ],
}  # fmt: skip


@pytest.fixture
def database_url() -> Iterator[str]:
    """A PostgreSQL database of this test's own, migrated, dropped afterwards."""
    ensure(POSTGRES)
    name = f"ce_crash_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    upgrade(url)
    yield url
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def temporal(tmp_path: Path) -> AsyncIterator[DevServer]:
    """A dev server of this test's own: the platform's task queue is fixed, and no other
    test's worker may take these journeys' tasks."""
    config = DevServerConfig(
        home=tmp_path / "temporal",
        port=free_port(),
        http_port=free_port(),
        metrics_port=free_port(),
        ui=False,
    )
    async with DevServer(config) as server:
        yield server


@pytest.fixture
def sendgrid(tmp_path: Path) -> Iterator[RemoteStandIn]:
    with StandInProcess(
        "sendgrid", {"api_key": SENDGRID_KEY}, log=tmp_path / "sendgrid.log"
    ) as remote:
        yield remote


def worker_env(
    tmp_path: Path, database_url: str, temporal: DevServer, sendgrid: RemoteStandIn
) -> dict[str, str]:
    return {
        "CE_HOME": str(tmp_path / "home"),
        "CE_DATABASE_URL": database_url,
        "CE_TEMPORAL_ADDRESS": temporal.config.address,
        "CE_SENDGRID_BASE_URL": sendgrid.base_url,
        "CE_SENDGRID_API_KEY": SENDGRID_KEY,
        "CE_SENDGRID_FROM": f"Shop <{SENDER}>",
        "CE_METRICS_PORT": str(free_port()),
        "CE_API_PORT": str(free_port()),
        "CE_GRPC_PORT": str(free_port()),
    }


class Workers:
    """``campaign-express worker`` processes, one at a time: started, killed, started again."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.started: list[CliProcess] = []

    async def start(self) -> None:
        process = CliProcess(
            ["worker"], self.env, self.logs / f"worker-{len(self.started) + 1}.log"
        )
        self.started.append(process)
        await asyncio.to_thread(process.wait_for_output, "running", STARTUP_S)

    def kill(self) -> None:
        self.started[-1].kill()

    def stop(self) -> None:
        for process in self.started:
            if process.process.poll() is None:
                process.terminate()


async def publish(database: Database) -> tuple[str, str]:
    sessions = database.async_session
    now = datetime.now(UTC)
    tenant = await TenantRepository(sessions).ensure("crash-shop")
    # Quiet hours would hold the emails when the test runs at night.
    await DeliveryRepository(sessions).save_policy(
        tenant.id, DeliveryPolicy(quiet_start=None, quiet_end=None)
    )
    journey_id = str(uuid.uuid4())
    journeys = JourneyRepository(sessions)
    await journeys.create(tenant.id, journey_id, JourneyDefinition.model_validate(JOURNEY), now)
    await journeys.publish(tenant.id, journey_id, "e2e", now)
    profiles = CustomerProfiles(sessions)
    for number in range(CUSTOMERS):
        await profiles.apply_traits(
            tenant.id,
            customer(number),
            {"email": address(number), "first_name": f"Customer {number}"},
            now,
        )
    return tenant.id, journey_id


def customer(number: int) -> str:
    return f"cust-{number:03d}"


def address(number: int) -> str:
    return f"{customer(number)}@example.com"


def entry_id(journey_id: str, number: int) -> str:
    # As a scheduled audience enters customers: no triggering event, one entry per day.
    return scheduled_entry_id(journey_id, customer(number), datetime.now(UTC).date())


async def enter_all(starter: JourneyStarter, tenant_id: str, journey_id: str) -> None:
    for number in range(CUSTOMERS):
        await starter.enter(
            tenant_id,
            journey_id,
            customer(number),
            entry_id=entry_id(journey_id, number),
            trigger=None,
            at=datetime.now(UTC),
        )
        await asyncio.sleep(ENTRY_GAP_S)


async def kill_when_sent(workers: Workers, sendgrid: RemoteStandIn, at_least: int) -> int:
    """Kill the worker once ``at_least`` emails went out and some of their answers are still
    held back (taken by SendGrid, unknown to the worker); returns how many had gone out."""
    deadline = time.monotonic() + FINISH_S
    while True:
        sent = len(await asyncio.to_thread(sendgrid.accepted))
        if sent >= at_least and await asyncio.to_thread(sendgrid.holding) > 0:
            workers.kill()
            return sent
        assert time.monotonic() < deadline, f"only {sent} emails went out"
        await asyncio.sleep(POLL_S)


async def test_worker_killed_mid_sends_delivers_every_message_exactly_once(
    tmp_path: Path, database_url: str, temporal: DevServer, sendgrid: RemoteStandIn
) -> None:
    began = time.monotonic()
    sendgrid.fail_next(MESSAGES * 4, hold_s=HOLD_S, path_contains="/v3/mail/send")
    database = Database(database_url)
    workers = Workers(worker_env(tmp_path, database_url, temporal, sendgrid), tmp_path)
    client: Client = temporal.client

    async def client_source() -> Client:
        return client

    try:
        tenant_id, journey_id = await publish(database)
        await workers.start()
        starter = JourneyStarter(EntryRepository(database.async_session), client_source)
        entering = asyncio.create_task(enter_all(starter, tenant_id, journey_id))

        first_kill = await kill_when_sent(workers, sendgrid, MESSAGES // 3)
        await workers.start()
        second_kill = await kill_when_sent(workers, sendgrid, 2 * MESSAGES // 3)
        await workers.start()
        await entering
        killed_at = time.monotonic() - began

        runs = [
            client.get_workflow_handle(
                workflow_id(tenant_id, journey_id, customer(number)), result_type=JourneyRunState
            )
            for number in range(CUSTOMERS)
        ]
        async with asyncio.timeout(FINISH_S):
            states = await asyncio.gather(*(run.result() for run in runs))
        finished_at = time.monotonic() - began

        delivery = DeliveryRepository(database.async_session)
        records = [
            await delivery.send_record(f"{entry_id(journey_id, number)}:{node}")
            for number in range(CUSTOMERS)
            for node in NODES
        ]
    finally:
        workers.stop()
        await database.dispose()

    emails = [request.json() for request in sendgrid.accepted()]
    received = Counter(
        (mail["personalizations"][0]["to"][0]["email"], mail["custom_args"]["ce_node_id"])
        for mail in emails
    )
    expected = {(address(number), node) for number in range(CUSTOMERS) for node in NODES}
    assert set(received) == expected
    duplicates = {key: count for key, count in received.items() if count != 1}
    assert duplicates == {}
    assert len(emails) == MESSAGES
    assert all(state.finished for state in states)
    assert [record.status if record else None for record in records] == ["sent"] * MESSAGES
    # The kills did leave emails SendGrid took without the worker knowing: the restarted
    # workers found them by asking instead of sending them again.
    found_by_asking = [
        lookup for lookup in sendgrid.requests("/v3/messages") if lookup.reply_json()["messages"]
    ]
    assert found_by_asking
    print(
        f"\nkilled at {first_kill} and {second_kill} of {MESSAGES} emails sent; "
        f"{len(sendgrid.requests('/v3/messages'))} lookups, {len(found_by_asking)} found; "
        f"kills done after {killed_at:.0f} s, all runs finished after {finished_at:.0f} s"
    )
