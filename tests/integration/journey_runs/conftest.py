"""Journeys end to end in one process: the trigger evaluator, the real JourneyWorkflow and its
activities on Temporal's time-skipping server, a real database, and the vendors' stand-ins
behind the real channel adapters."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from temporalio.client import WorkflowHandle
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
from domain.customer_events import CustomerEvent
from domain.delivery import DeliveryPolicy
from domain.journey_runs import JourneyRunState, workflow_id
from domain.journeys import JourneyDefinition
from tests.support.temporal import outcome, running_worker, time_skipping_server
from tests.support.vendors import SendGridStandIn, TwilioStandIn
from workers.triggers import TriggerEvaluator
from workflows.journey import JourneyWorkflow

SENDGRID_KEY = "SG.journey-tests"
NO_QUIET_HOURS = DeliveryPolicy(quiet_start=None, quiet_end=None)


def welcome_watching_the_open() -> dict[str, Any]:
    """A welcome email, then a day's wait for its open."""
    return {
        "name": "Welcome, then watch for the open",
        "trigger": {"type": "event", "event": "signed_up"},
        "start": "hello",
        "nodes": [
            {"id": "hello", "type": "action", "channel": "email",
             "template": {"subject": "Welcome", "body": "Hi"}, "next": "opened"},
            {"id": "opened", "type": "wait_for_event", "event": "email_open",
             "timeout": "P1D", "on_event": "read", "on_timeout": "unread"},
            {"id": "read", "type": "exit"},
            {"id": "unread", "type": "exit"},
        ],
    }  # fmt: skip


@dataclass
class Journeys:
    env: WorkflowEnvironment
    tenant_id: str
    journeys: JourneyRepository
    profiles: CustomerProfiles
    delivery: DeliveryRepository
    evaluator: TriggerEvaluator
    sendgrid: SendGridStandIn
    twilio: TwilioStandIn
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    async def publish(self, definition: dict[str, Any]) -> str:
        journey_id = str(uuid.uuid4())
        now = datetime.now(UTC)
        parsed = JourneyDefinition.model_validate(definition)
        await self.journeys.create(self.tenant_id, journey_id, parsed, now)
        await self.journeys.publish(self.tenant_id, journey_id, "tests", now)
        return journey_id

    async def replace(self, journey_id: str, definition: dict[str, Any]) -> None:
        now = datetime.now(UTC)
        await self.journeys.replace_draft(
            self.tenant_id, journey_id, JourneyDefinition.model_validate(definition), now
        )
        await self.journeys.publish(self.tenant_id, journey_id, "tests", now)

    async def customer(self, customer_id: str, **traits: Any) -> None:
        await self.profiles.apply_traits(
            self.tenant_id,
            customer_id,
            {"email": f"{customer_id}@example.com", "phone": "+15005550010"} | traits,
            datetime.now(UTC),
        )

    async def ingest(
        self, customer_id: str, name: str, properties: dict[str, Any] | None = None
    ) -> None:
        now = datetime.now(UTC)
        await self.evaluator.process(
            CustomerEvent(
                tenant_id=self.tenant_id,
                event_id=f"evt-{next(self._ids)}",
                customer_id=customer_id,
                name=name,
                source="web",
                occurred_at=now,
                received_at=now,
                properties=properties or {},
            )
        )

    def run(self, journey_id: str, customer_id: str) -> WorkflowHandle[Any, JourneyRunState]:
        return self.env.client.get_workflow_handle_for(
            JourneyWorkflow.run, workflow_id(self.tenant_id, journey_id, customer_id)
        )

    async def finished(self, journey_id: str, customer_id: str) -> JourneyRunState:
        """The customer's run through the journey, once it ends (time skips meanwhile)."""
        return await outcome(self.env, self.run(journey_id, customer_id))

    async def open_during_the_send(self, customer_id: str) -> None:
        """``signed_up`` for a customer of ``welcome_watching_the_open``, then ``email_open``
        while the welcome email's send activity still runs: SendGrid takes the email at once
        and holds its answer back."""
        self.sendgrid.fail_next(1, hold_s=3.0)
        await self.ingest(customer_id, "signed_up")
        async with asyncio.timeout(30):
            while not self.emails_to(f"{customer_id}@example.com"):
                await asyncio.sleep(0.05)
        await self.ingest(customer_id, "email_open")

    def emails_to(self, address: str) -> list[dict[str, Any]]:
        return [
            mail
            for mail in self.sendgrid.emails()
            if mail["personalizations"][0]["to"][0]["email"] == address
        ]


@pytest.fixture
def sendgrid() -> Iterator[SendGridStandIn]:
    with SendGridStandIn(api_key=SENDGRID_KEY).serve() as stand_in:
        yield stand_in


@pytest.fixture
def twilio() -> Iterator[TwilioStandIn]:
    with TwilioStandIn().serve() as stand_in:
        yield stand_in


@pytest.fixture
async def kit(
    tmp_path: Path, sendgrid: SendGridStandIn, twilio: TwilioStandIn
) -> AsyncIterator[Journeys]:
    url = f"sqlite:///{tmp_path / 'journeys.db'}"
    upgrade(url)
    database = Database(url)
    sessions = database.async_session
    tenant = await TenantRepository(sessions).ensure("shop")
    delivery = DeliveryRepository(sessions)
    await delivery.save_policy(tenant.id, NO_QUIET_HOURS)
    settings = Settings(
        home=tmp_path / "home",
        sendgrid_api_key=SecretStr(SENDGRID_KEY),
        sendgrid_base_url=sendgrid.base_url,
        sendgrid_from="Shop <shop@example.com>",
        twilio_account_sid=twilio.account_sid,
        twilio_auth_token=SecretStr(twilio.auth_token),
        twilio_base_url=twilio.base_url,
        twilio_from="+15005550006",
    )
    senders = ChannelSenders.from_settings(settings)
    activities = JourneyActivities(CustomerRecords(sessions), delivery, senders)
    events = CustomerEventRepository(sessions)
    async with (
        time_skipping_server() as env,
        running_worker(
            env.client, workflows=[JourneyWorkflow], activities=activities.all()
        ) as queue,
    ):
        starter = JourneyStarter(EntryRepository(sessions), _client(env), task_queue=queue)
        evaluator = TriggerEvaluator(
            StoredEventQueue(events),
            events=events,
            profiles=CustomerProfiles(sessions),
            journeys=JourneyRepository(sessions),
            entries=EntryRepository(sessions),
            starter=starter,
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
    await senders.aclose()
    await database.dispose()


def _client(env: WorkflowEnvironment) -> Any:
    async def client() -> Any:
        return env.client

    return client


def local(hour: int, minute: int = 0) -> time:
    return time(hour, minute)
