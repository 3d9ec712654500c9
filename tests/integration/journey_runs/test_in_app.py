"""A journey's ``in_app`` action stores the rendered message in the customer's inbox, and the
customer reading it (``in_app_open``, through the event queue and the trigger evaluator)
wakes the journey waiting for it: the real JourneyWorkflow on Temporal's time-skipping
server, a real database, no vendor."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.journey_entry import JourneyStarter
from activities.journeys import JourneyActivities
from adapters.bus.events import StoredEventQueue
from adapters.channels import ChannelSenders, VendorConfigs
from adapters.db import Database, TenantRepository, upgrade
from adapters.db.delivery import DeliveryRepository
from adapters.db.inbox import InboxRepository
from adapters.db.journeys import (
    CustomerEventRepository,
    CustomerProfiles,
    CustomerRecords,
    EntryRepository,
    JourneyRepository,
)
from adapters.db.webhooks import WebhookRepository
from adapters.system import SystemClock
from api.routes.inbox import InboxServices
from domain.customer_events import CustomerEvent, EventSource
from domain.delivery import DeliveryPolicy
from domain.journey_runs import JourneyRunState, workflow_id
from domain.journeys import JourneyDefinition
from tests.support.temporal import outcome, running_worker, time_skipping_server
from workers.triggers import TriggerEvaluator
from workflows.journey import JourneyWorkflow

CARD_JOURNEY = {
    "name": "Offer card",
    "trigger": {"type": "event", "event": "browsed"},
    "start": "card",
    "nodes": [
        {"id": "card", "type": "action", "channel": "in_app",
         "template": {"subject": "Hi {{ profile.first_name }}", "body": "Boots: 20% off"},
         "next": "watch"},
        {"id": "watch", "type": "wait_for_event", "event": "in_app_open", "timeout": "P3D",
         "on_event": "opened", "on_timeout": "ignored"},
        {"id": "opened", "type": "exit"},
        {"id": "ignored", "type": "exit"},
    ],
}  # fmt: skip


@dataclass
class Kit:
    env: WorkflowEnvironment
    tenant_id: str
    journeys: JourneyRepository
    profiles: CustomerProfiles
    inbox: InboxRepository
    queue: StoredEventQueue
    evaluator: TriggerEvaluator
    services: InboxServices

    def run(self, journey_id: str, customer_id: str) -> WorkflowHandle[Any, JourneyRunState]:
        return self.env.client.get_workflow_handle_for(
            JourneyWorkflow.run, workflow_id(self.tenant_id, journey_id, customer_id)
        )

    async def waiting_at(self, journey_id: str, customer_id: str, node_id: str) -> None:
        """Once the run waits at ``node_id``. The journey looks at no event that arrives while
        an earlier step is still running: the app's read must come after this."""
        for _ in range(400):
            with contextlib.suppress(RPCError):  # not started yet
                state = await self.run(journey_id, customer_id).query(JourneyWorkflow.state)
                if state.node_id == node_id:
                    return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{customer_id} never reached {node_id}")

    async def deliver_queued(self) -> None:
        """What the running trigger evaluator does with the queue."""
        await self.evaluator.process_batch(await self.queue.fetch(100, 0.1))


@pytest.fixture
async def kit(tmp_path: Path) -> AsyncIterator[Kit]:
    url = f"sqlite:///{tmp_path / 'journeys.db'}"
    upgrade(url)
    database = Database(url)
    sessions = database.async_session
    tenant = await TenantRepository(sessions).ensure("shop")
    delivery = DeliveryRepository(sessions)
    await delivery.save_policy(tenant.id, DeliveryPolicy(quiet_start=None, quiet_end=None))
    inbox = InboxRepository(sessions)
    senders = ChannelSenders(VendorConfigs(), inbox=inbox)
    activities = JourneyActivities(CustomerRecords(sessions), delivery, senders)
    events = CustomerEventRepository(sessions)
    queue = StoredEventQueue(events)
    async with (
        time_skipping_server() as env,
        running_worker(
            env.client, workflows=[JourneyWorkflow], activities=activities.all()
        ) as task_queue,
    ):

        async def client() -> Any:
            return env.client

        starter = JourneyStarter(EntryRepository(sessions), client, task_queue=task_queue)
        clock = SystemClock()
        evaluator = TriggerEvaluator(
            queue,
            events=events,
            profiles=CustomerProfiles(sessions),
            journeys=JourneyRepository(sessions),
            entries=EntryRepository(sessions),
            starter=starter,
            clock=clock,
        )
        yield Kit(
            env=env,
            tenant_id=tenant.id,
            journeys=JourneyRepository(sessions),
            profiles=CustomerProfiles(sessions),
            inbox=inbox,
            queue=queue,
            evaluator=evaluator,
            services=InboxServices(inbox, WebhookRepository(sessions), queue, clock),
        )
    await senders.aclose()
    await database.dispose()


async def test_reading_the_card_wakes_the_journey_waiting_for_it(kit: Kit) -> None:
    journey_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    await kit.journeys.create(
        kit.tenant_id, journey_id, JourneyDefinition.model_validate(CARD_JOURNEY), now
    )
    await kit.journeys.publish(kit.tenant_id, journey_id, "tests", now)
    await kit.profiles.apply_traits(kit.tenant_id, "ada", {"first_name": "Ada"}, now)
    await kit.evaluator.process(
        CustomerEvent(tenant_id=kit.tenant_id, event_id="browse-1", customer_id="ada",
                      name="browsed", source=EventSource.WEB, occurred_at=now, received_at=now)
    )  # fmt: skip

    await kit.waiting_at(journey_id, "ada", "watch")
    (card,) = await kit.inbox.list(kit.tenant_id, "ada", now=datetime.now(UTC))
    await kit.services.read(card)
    await kit.services.read(card)
    await kit.deliver_queued()
    state = await outcome(kit.env, kit.run(journey_id, "ada"))

    assert (card.title, card.body) == ("Hi Ada", "Boots: 20% off")
    assert card.data == {"journey_id": journey_id, "node_id": "card"}
    assert state.steps[1].outcome == "event"
    assert await kit.queue.fetch(100, 0) == []  # the open was taken, and only once
