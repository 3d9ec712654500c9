"""The in-app inbox end to end: ``POST /v1/channels/activate`` with channel ``in_app`` (an
Activation workflow on a real Temporal dev server) stores the message, the app lists it,
reads it (the send becomes ``opened``, ``in_app_open`` is queued for the customer's
journeys) and dismisses it, over ``/v1/channels/inbox``."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from adapters.db.delivery import DeliveryRepository
from adapters.db.journeys import CustomerEventRepository, CustomerProfiles
from adapters.db.repositories import Sessions
from adapters.db.tables import customer_events_table
from adapters.db.webhooks import WebhookRepository
from api.routes.activations import ActivationServices
from domain.delivery import DeliveryPolicy
from domain.platform import Role
from tests.integration.platform.support import PlatformApi, bearer, platform_api
from tests.support.temporal import local_env, new_task_queue, running_worker  # noqa: F401
from workflows.registry import WORKFLOWS

NO_QUIET_HOURS = DeliveryPolicy(quiet_start=None, quiet_end=None)
INBOX = "/v1/channels/inbox"


@dataclasses.dataclass
class Inbox:
    api: PlatformApi
    headers: dict[str, str]
    tenant_id: str
    sessions: Sessions

    async def activate(self, activation_id: str, **template: str) -> Any:
        body = {"subject": "Hi {{ profile.first_name }}", "body": "10% off today"} | template
        response = await self.api.client.post(
            "/v1/channels/activate",
            headers=self.headers,
            json={
                "activation_id": activation_id,
                "channel": "in_app",
                "customer_id": "ada",
                "template": body,
            },
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def get(self, customer_id: str = "ada", **query: Any) -> Any:
        return await self.api.client.get(
            f"{INBOX}/{customer_id}", headers=self.headers, params=query
        )

    async def post(self, message_id: str, action: str, customer_id: str = "ada") -> Any:
        return await self.api.client.post(
            f"{INBOX}/{customer_id}/{message_id}/{action}", headers=self.headers
        )

    async def send_status(self, activation_id: str) -> str:
        sent = await WebhookRepository(self.sessions).send(
            f"activation:{self.tenant_id}:{activation_id}"
        )
        assert sent is not None
        return sent.status

    async def opens_queued(self) -> int:
        async with self.sessions() as session:
            count = (
                await session.execute(
                    select(func.count())
                    .select_from(customer_events_table)
                    .where(
                        customer_events_table.c.tenant_id == self.tenant_id,
                        customer_events_table.c.name == "in_app_open",
                    )
                )
            ).scalar_one()
        return int(count)


@pytest.fixture
async def kit(
    tmp_path: Path,
    local_env: WorkflowEnvironment,  # noqa: F811
) -> AsyncIterator[Inbox]:
    address = local_env.client.service_client.config.target_host
    async with platform_api(tmp_path, temporal_address=address) as api:
        queue = new_task_queue()

        async def session_client() -> Client:
            return local_env.client

        api.app.state.activations = ActivationServices(session_client, task_queue=queue)
        headers = bearer(await api.key("shop", Role.MANAGER))
        tenant = await api.auth.tenants.ensure("shop")
        sessions = (await api.runtime.database()).async_session
        await DeliveryRepository(sessions).save_policy(tenant.id, NO_QUIET_HOURS)
        await CustomerProfiles(sessions).apply_traits(
            tenant.id, "ada", {"first_name": "Ada"}, datetime.now(UTC)
        )
        async with running_worker(
            local_env.client,
            workflows=WORKFLOWS,
            activities=await api.runtime.temporal_activities(),
            task_queue=queue,
        ):
            yield Inbox(api, headers, tenant.id, sessions)


async def test_an_in_app_activation_lands_in_the_inbox_once(kit: Inbox) -> None:
    first = await kit.activate("welcome-1")
    again = await kit.activate("welcome-1")

    assert first["status"] == again["status"] == "sent"
    listing = (await kit.get()).json()
    (message,) = listing["messages"]
    assert message["id"] == first["vendor_message_id"]
    assert (message["title"], message["body"]) == ("Hi Ada", "10% off today")
    assert message["read_at"] is None
    assert listing["unread"] == 1
    assert listing["next"] is None


async def test_reading_opens_the_send_and_queues_in_app_open_once(kit: Inbox) -> None:
    message_id = (await kit.activate("welcome-2"))["vendor_message_id"]

    first = await kit.post(message_id, "read")
    again = await kit.post(message_id, "read")

    assert first.status_code == again.status_code == 200, first.text
    assert first.json()["read_at"] is not None
    assert again.json()["read_at"] == first.json()["read_at"]
    assert await kit.send_status("welcome-2") == "opened"
    assert await kit.opens_queued() == 1
    event = await CustomerEventRepository(kit.sessions).get(
        kit.tenant_id, f"in_app_open:{message_id}"
    )
    assert event is not None
    assert event.customer_id == "ada"
    assert event.properties["send_key"] == f"activation:{kit.tenant_id}:welcome-2"
    assert event.properties["message_id"] == message_id
    listing = (await kit.get()).json()
    assert listing["unread"] == 0
    assert (await kit.get(unread_only=True)).json()["messages"] == []


async def test_a_dismissed_message_is_no_longer_listed(kit: Inbox) -> None:
    kept = (await kit.activate("kept"))["vendor_message_id"]
    dismissed = (await kit.activate("dismissed"))["vendor_message_id"]

    response = await kit.post(dismissed, "dismiss")

    assert response.status_code == 200, response.text
    assert response.json()["dismissed_at"] is not None
    assert [m["id"] for m in (await kit.get()).json()["messages"]] == [kept]


async def test_pages_follow_the_next_cursor(kit: Inbox) -> None:
    ids = [(await kit.activate(f"promo-{n}"))["vendor_message_id"] for n in range(3)]

    first = (await kit.get(limit=2)).json()
    rest = (await kit.get(limit=2, before=first["next"])).json()

    assert [m["id"] for m in first["messages"] + rest["messages"]] == list(reversed(ids))
    assert rest["next"] is None
    assert first["unread"] == rest["unread"] == 3


async def test_unknown_messages_and_other_customers_messages_are_404(kit: Inbox) -> None:
    message_id = (await kit.activate("welcome-3"))["vendor_message_id"]

    for response in (
        await kit.post("no-such-message", "read"),
        await kit.post("no-such-message", "dismiss"),
        await kit.post(message_id, "read", customer_id="bob"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert (await kit.get("bob")).json() == {"messages": [], "unread": 0, "next": None}
    assert await kit.send_status("welcome-3") == "sent"


async def test_other_tenants_see_nothing_and_a_bad_cursor_is_422(kit: Inbox) -> None:
    message_id = (await kit.activate("welcome-4"))["vendor_message_id"]
    other = bearer(await kit.api.key("other-shop", Role.MANAGER))

    listing = await kit.api.client.get(f"{INBOX}/ada", headers=other)
    read = await kit.api.client.post(f"{INBOX}/ada/{message_id}/read", headers=other)
    bad_cursor = await kit.get(before="not-a-cursor")
    anonymous = await kit.api.client.get(f"{INBOX}/ada")

    assert listing.json()["messages"] == []
    assert read.status_code == 404
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["error"]["code"] == "invalid_request"
    assert anonymous.status_code == 401
