"""``POST /v1/channels/activate``: one message to one customer through the delivery rules, as
an Activation workflow on a real Temporal dev server, sent by the real adapter to SendGrid's
stand-in."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from adapters.db.delivery import DeliveryRepository
from adapters.db.journeys import CustomerProfiles
from api.routes.activations import ActivationServices
from domain.delivery import DeliveryPolicy
from domain.journeys import Channel
from domain.platform import Role
from tests.integration.platform.support import PlatformApi, bearer, platform_api
from tests.support.temporal import local_env, new_task_queue, running_worker  # noqa: F401
from tests.support.vendors import SendGridStandIn
from workflows.registry import WORKFLOWS

SENDGRID_KEY = "SG.activation-tests"
TOKYO = ZoneInfo("Asia/Tokyo")
NO_QUIET_HOURS = DeliveryPolicy(quiet_start=None, quiet_end=None)


@pytest.fixture
def sendgrid() -> Iterator[SendGridStandIn]:
    with SendGridStandIn(api_key=SENDGRID_KEY).serve() as stand_in:
        yield stand_in


@dataclasses.dataclass
class Activations:
    api: PlatformApi
    headers: dict[str, str]
    tenant_id: str
    delivery: DeliveryRepository
    profiles: CustomerProfiles

    async def activate(self, **body: Any) -> Any:
        template = {"subject": "Your receipt", "body": "Thanks, {{ profile.first_name }}"}
        request = {"channel": "email", "customer_id": "ada", "template": template}
        return await self.api.client.post(
            "/v1/channels/activate", headers=self.headers, json=request | body
        )


@pytest.fixture
async def kit(
    tmp_path: Path,
    sendgrid: SendGridStandIn,
    local_env: WorkflowEnvironment,  # noqa: F811
) -> AsyncIterator[Activations]:
    address = local_env.client.service_client.config.target_host
    async with platform_api(
        tmp_path,
        temporal_address=address,
        sendgrid_api_key=SecretStr(SENDGRID_KEY),
        sendgrid_base_url=sendgrid.base_url,
        sendgrid_from="Shop <shop@example.com>",
    ) as api:
        queue = new_task_queue()

        async def session_client() -> Client:
            return local_env.client

        api.app.state.activations = ActivationServices(session_client, task_queue=queue)
        headers = bearer(await api.key("shop", Role.MANAGER))
        tenant = await api.auth.tenants.ensure("shop")
        sessions = (await api.runtime.database()).async_session
        kit = Activations(
            api, headers, tenant.id, DeliveryRepository(sessions), CustomerProfiles(sessions)
        )
        await kit.delivery.save_policy(tenant.id, NO_QUIET_HOURS)
        await kit.profiles.apply_traits(
            tenant.id, "ada",
            {"email": "ada@example.com", "first_name": "Ada", "timezone": "Asia/Tokyo"},
            datetime.now(UTC),
        )  # fmt: skip
        async with running_worker(
            local_env.client,
            workflows=WORKFLOWS,
            activities=await api.runtime.temporal_activities(),
            task_queue=queue,
        ):
            yield kit


async def test_activation_sends_once_however_often_it_is_retried(
    kit: Activations, sendgrid: SendGridStandIn
) -> None:
    first = await kit.activate(activation_id="receipt-1")
    again = await kit.activate(activation_id="receipt-1")

    assert first.status_code == 200, first.text
    assert first.json()["status"] == "sent"
    assert again.status_code == 200
    assert again.json()["status"] == "sent"
    (mail,) = sendgrid.emails()
    assert mail["personalizations"][0]["to"][0]["email"] == "ada@example.com"
    assert mail["content"][0]["value"] == "Thanks, Ada"
    looked_up = await kit.api.client.get("/v1/channels/activations/receipt-1", headers=kit.headers)
    assert looked_up.json()["status"] == "sent"


async def test_activation_to_a_suppressed_address_is_skipped(
    kit: Activations, sendgrid: SendGridStandIn
) -> None:
    await kit.delivery.suppress(kit.tenant_id, Channel.EMAIL, "ada@example.com", "unsubscribe")

    response = await kit.activate(activation_id="promo-1")

    assert response.status_code == 200
    assert response.json()["status"] == "skipped"
    assert "suppressed" in response.json()["detail"]
    assert sendgrid.emails() == []


async def test_activation_in_quiet_hours_is_scheduled_unless_transactional(
    kit: Activations, sendgrid: SendGridStandIn
) -> None:
    # Quiet from an hour ago to two hours ahead, on the customer's clock in Tokyo.
    local_now = datetime.now(TOKYO)
    quiet = DeliveryPolicy(
        quiet_start=(local_now - timedelta(hours=1)).time().replace(second=0, microsecond=0),
        quiet_end=(local_now + timedelta(hours=2)).time().replace(second=0, microsecond=0),
    )
    await kit.delivery.save_policy(kit.tenant_id, quiet)

    promo = await kit.activate(activation_id="promo-2")
    receipt = await kit.activate(activation_id="receipt-2", transactional=True)

    assert promo.status_code == 202, promo.text
    assert promo.json()["status"] == "scheduled"
    send_at = datetime.fromisoformat(promo.json()["send_at"])
    assert send_at.astimezone(TOKYO).time().replace(tzinfo=None) == quiet.quiet_end
    assert receipt.status_code == 200
    assert receipt.json()["status"] == "sent"
    assert [mail["subject"] for mail in sendgrid.emails()] == ["Your receipt"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customer_id": "ada@example.com"}, "customer_id"),
        ({"channel": "webhook"}, "body"),
        ({"activation_id": "has spaces"}, "activation_id"),
        ({"channel": "fax"}, "channel"),
    ],
)
async def test_invalid_activation_is_a_422_naming_the_field(
    kit: Activations, body: dict[str, Any], field: str
) -> None:
    response = await kit.activate(**body)

    assert response.status_code == 422
    assert field in [str(part) for part in response.json()["error"]["details"][0]["loc"]]


async def test_unknown_activation_is_a_404(kit: Activations) -> None:
    response = await kit.api.client.get("/v1/channels/activations/nope", headers=kit.headers)
    assert response.status_code == 404
