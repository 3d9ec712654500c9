"""``/v1/webhooks/*`` on the embedded platform: requests signed the way the vendors sign them
(the official SDKs where they sign: Twilio's RequestValidator, Stripe's signature header;
SendGrid's SDK only verifies, so its stand-in signs with its account key and the SDK's
verifier agrees), about messages our real adapters sent through the vendors' stand-ins."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import stripe
from pydantic import SecretStr
from sendgrid.helpers.eventwebhook import EventWebhook  # type: ignore[import-untyped]
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from adapters.channels import ChannelSenders, OutboundMessage
from adapters.db.delivery import DeliveryRepository
from adapters.db.journeys import CustomerEventRepository
from adapters.db.repositories import Sessions
from adapters.db.webhooks import WebhookRepository
from domain.journeys import Channel
from tests.integration.platform.support import PlatformApi, platform_api
from tests.support.vendors import SendGridStandIn, TwilioStandIn

PUBLIC = "https://ce.example.com"
SENDGRID_KEY = "SG.webhook-tests"
STRIPE_SECRET = "whsec_webhook_tests"
TWILIO_URL = f"{PUBLIC}/v1/webhooks/twilio"


@pytest.fixture
def sendgrid() -> Iterator[SendGridStandIn]:
    with SendGridStandIn(api_key=SENDGRID_KEY).serve() as stand_in:
        yield stand_in


@pytest.fixture
def twilio() -> Iterator[TwilioStandIn]:
    with TwilioStandIn().serve() as stand_in:
        yield stand_in


class Platform:
    """The platform under test, and what a journey's send leaves behind."""

    def __init__(self, api: PlatformApi, tenant_id: str, sessions: Sessions) -> None:
        self.api = api
        self.tenant_id = tenant_id
        self.delivery = DeliveryRepository(sessions)
        self.webhooks = WebhookRepository(sessions)
        self.events = CustomerEventRepository(sessions)

    async def send(self, channel: Channel, to: str, customer_id: str, key: str) -> None:
        """What the journey's send activity does: record, send through the real adapter,
        mark sent."""
        now = datetime.now(UTC)
        details = {"tenant_id": self.tenant_id, "customer_id": customer_id,
                   "channel": channel.value, "journey_id": "j-1", "node_id": "reminder",
                   "workflow_id": "journey-x", "now": now}  # fmt: skip
        await self.delivery.begin_send(key, details)
        senders: ChannelSenders = await self.api.runtime.channel_senders()
        receipt = await senders.sender(channel, {}).send(
            OutboundMessage(
                channel=channel,
                to=to,
                subject="Your cart",
                body="Still there?",
                idempotency_key=key,
                metadata={
                    "tenant_id": self.tenant_id,
                    "journey_id": "j-1",
                    "node_id": "reminder",
                    "send_key": key,
                },
            )
        )
        await self.delivery.finish_send(
            key, "sent", receipt.vendor.value, receipt.vendor_message_id
        )

    async def status(self, key: str) -> str:
        sent = await self.webhooks.send(key)
        assert sent is not None
        return sent.status

    async def queued(self, event_id: str) -> Any:
        return await self.events.get(self.tenant_id, event_id)


@pytest.fixture
async def platform(
    tmp_path: Path, sendgrid: SendGridStandIn, twilio: TwilioStandIn
) -> AsyncIterator[Platform]:
    async with platform_api(
        tmp_path,
        public_base_url=PUBLIC,
        sendgrid_api_key=SecretStr(SENDGRID_KEY),
        sendgrid_base_url=sendgrid.base_url,
        sendgrid_from="Shop <shop@example.com>",
        sendgrid_webhook_public_key=sendgrid.public_key,
        twilio_account_sid=twilio.account_sid,
        twilio_auth_token=SecretStr(twilio.auth_token),
        twilio_base_url=twilio.base_url,
        twilio_from="+15005550006",
        stripe_webhook_secret=SecretStr(STRIPE_SECRET),
    ) as api:
        tenant = await api.auth.tenants.ensure("shop")
        database = await api.runtime.database()
        yield Platform(api, tenant.id, database.async_session)


async def post(platform: Platform, path: str, body: bytes, headers: dict[str, str]) -> Any:
    return await platform.api.client.post(path, content=body, headers=headers)


# --- SendGrid ---------------------------------------------------------------------------------


async def test_sendgrid_open_moves_the_send_and_queues_email_open(
    platform: Platform, sendgrid: SendGridStandIn
) -> None:
    await platform.send(Channel.EMAIL, "ada@example.com", "ada", "entry-1:reminder")
    (accepted,) = sendgrid.accepted()
    body, headers = sendgrid.signed_events([sendgrid.event(accepted, "open")])
    verifier = EventWebhook()
    assert verifier.verify_signature(
        body.decode(),
        headers["X-Twilio-Email-Event-Webhook-Signature"],
        headers["X-Twilio-Email-Event-Webhook-Timestamp"],
        verifier.convert_public_key_to_ecdsa(sendgrid.public_key),
    )

    response = await post(platform, "/v1/webhooks/sendgrid", body, headers)

    assert response.status_code == 200, response.text
    assert response.json() == {"received": 1, "applied": 1, "duplicates": 0}
    assert await platform.status("entry-1:reminder") == "opened"
    event_id = "sendgrid:" + orjson.loads(body)[0]["sg_event_id"]
    queued = await platform.queued(event_id)
    assert queued.name == "email_open"
    assert queued.customer_id == "ada"
    assert queued.properties == {"journey_id": "j-1", "node_id": "reminder",
                                 "send_key": "entry-1:reminder", "vendor": "sendgrid"}  # fmt: skip


async def test_sendgrid_redelivery_answered_alike_and_applied_once(
    platform: Platform, sendgrid: SendGridStandIn
) -> None:
    await platform.send(Channel.EMAIL, "ada@example.com", "ada", "entry-1:reminder")
    (accepted,) = sendgrid.accepted()
    body, headers = sendgrid.signed_events([sendgrid.event(accepted, "click")])

    first = await post(platform, "/v1/webhooks/sendgrid", body, headers)
    again = await post(platform, "/v1/webhooks/sendgrid", body, headers)

    assert first.status_code == again.status_code == 200
    assert again.json() == {"received": 1, "applied": 0, "duplicates": 1}
    assert await platform.status("entry-1:reminder") == "clicked"


async def test_sendgrid_late_delivered_does_not_undo_an_open(
    platform: Platform, sendgrid: SendGridStandIn
) -> None:
    await platform.send(Channel.EMAIL, "ada@example.com", "ada", "entry-1:reminder")
    (accepted,) = sendgrid.accepted()
    body, headers = sendgrid.signed_events(
        [sendgrid.event(accepted, "open"), sendgrid.event(accepted, "delivered")]
    )

    response = await post(platform, "/v1/webhooks/sendgrid", body, headers)

    assert response.json()["applied"] == 2
    assert await platform.status("entry-1:reminder") == "opened"


@pytest.mark.parametrize(
    ("kind", "fields"),
    [("unsubscribe", {}), ("spamreport", {}), ("bounce", {"type": "bounce"})],
)
async def test_sendgrid_opt_outs_and_hard_bounces_suppress_the_address(
    platform: Platform, sendgrid: SendGridStandIn, kind: str, fields: dict[str, str]
) -> None:
    await platform.send(Channel.EMAIL, "Ada@Example.com", "ada", "entry-1:reminder")
    (accepted,) = sendgrid.accepted()
    body, headers = sendgrid.signed_events([sendgrid.event(accepted, kind, **fields)])

    await post(platform, "/v1/webhooks/sendgrid", body, headers)

    assert await platform.delivery.suppressed(
        platform.tenant_id, Channel.EMAIL, "ada@example.com", datetime.now(UTC)
    )


async def test_sendgrid_forged_or_stale_signature_refused_and_nothing_applied(
    platform: Platform, sendgrid: SendGridStandIn
) -> None:
    await platform.send(Channel.EMAIL, "ada@example.com", "ada", "entry-1:reminder")
    (accepted,) = sendgrid.accepted()
    event = sendgrid.event(accepted, "unsubscribe")
    body, headers = sendgrid.signed_events([event])
    forger = SendGridStandIn()  # another key pair: not the account's
    _, forged = forger.signed_events([event])
    _, stale = sendgrid.signed_events([event], timestamp=int(time.time()) - 3600)
    tampered = body.replace(b"unsubscribe", b"delivered__")

    answers = [
        await post(platform, "/v1/webhooks/sendgrid", body, forged),
        await post(platform, "/v1/webhooks/sendgrid", body, stale),
        await post(platform, "/v1/webhooks/sendgrid", tampered, headers),
        await post(platform, "/v1/webhooks/sendgrid", body, {"Content-Type": "application/json"}),
    ]

    assert [answer.status_code for answer in answers] == [401, 401, 401, 401]
    assert {answer.json()["error"]["code"] for answer in answers} == {"invalid_signature"}
    assert await platform.status("entry-1:reminder") == "sent"
    assert not await platform.delivery.suppressed(
        platform.tenant_id, Channel.EMAIL, "ada@example.com", datetime.now(UTC)
    )


async def test_sendgrid_signed_body_that_is_not_events_is_a_400(
    platform: Platform, sendgrid: SendGridStandIn
) -> None:
    body = b'{"not": "a list"}'
    response = await post(platform, "/v1/webhooks/sendgrid", body, sendgrid.sign(body))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_webhook"


# --- Twilio -----------------------------------------------------------------------------------


async def test_twilio_status_callback_signed_by_the_sdk_moves_the_send(
    platform: Platform, twilio: TwilioStandIn
) -> None:
    await platform.send(Channel.SMS, "+15005550010", "bo", "entry-2:sms")
    (accepted,) = twilio.accepted()
    url, body, headers = twilio.status_callback(accepted, "delivered")
    assert url.startswith(TWILIO_URL + "?")  # behind the proxy: the public URL was signed
    path = url.removeprefix(PUBLIC)

    response = await post(platform, path, body, headers)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/xml"
    assert await platform.status("entry-2:sms") == "delivered"
    queued = await platform.queued(f"twilio:{accepted.reply_json()['sid']}:delivered")
    assert queued.name == "sms_delivered"


async def test_twilio_stop_suppresses_and_start_lifts(
    platform: Platform, twilio: TwilioStandIn
) -> None:
    phone = "+15005550011"
    stop = twilio.inbound_message(TWILIO_URL, phone, "STOP")
    start = twilio.inbound_message(TWILIO_URL, phone, "start ")

    stopped = await post(platform, "/v1/webhooks/twilio", stop[1], stop[2])
    suppressed = await platform.delivery.suppressed(
        platform.tenant_id, Channel.SMS, phone, datetime.now(UTC)
    )
    started = await post(platform, "/v1/webhooks/twilio", start[1], start[2])

    assert stopped.status_code == started.status_code == 200
    assert suppressed
    assert not await platform.delivery.suppressed(
        platform.tenant_id, Channel.SMS, phone, datetime.now(UTC)
    )


async def test_twilio_signature_over_another_url_or_token_refused(
    platform: Platform, twilio: TwilioStandIn
) -> None:
    phone = "+15005550011"
    _, body, _ = twilio.inbound_message(TWILIO_URL, phone, "STOP")
    params = dict(item.split("=", 1) for item in body.decode().split("&"))
    other_url = RequestValidator(twilio.auth_token).compute_signature(
        "https://evil.example.com/v1/webhooks/twilio", params
    )
    other_token = RequestValidator("not-the-token").compute_signature(TWILIO_URL, params)
    form = {"Content-Type": "application/x-www-form-urlencoded"}

    answers = [
        await post(platform, "/v1/webhooks/twilio", body, form | {"X-Twilio-Signature": sig})
        for sig in (other_url, other_token)
    ]

    assert [answer.status_code for answer in answers] == [401, 401]
    assert not await platform.delivery.suppressed(
        platform.tenant_id, Channel.SMS, phone, datetime.now(UTC)
    )


# --- Stripe -----------------------------------------------------------------------------------


def stripe_request(event: dict[str, Any], timestamp: int | None = None) -> tuple[bytes, dict]:
    body = orjson.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(
        body.decode(), STRIPE_SECRET, timestamp or int(time.time())
    )
    return body, {"Content-Type": "application/json", "Stripe-Signature": str(header)}


def checkout_completed(tenant_id: str, event_id: str = "evt_1") -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": "checkout.session.completed",
        "created": int(time.time()),
        "data": {"object": {
            "id": "cs_1", "object": "checkout.session", "amount_total": 4200,
            "currency": "eur", "status": "complete", "customer_email": "ada@example.com",
            "metadata": {"ce_tenant_id": tenant_id, "ce_customer_id": "ada", "order": "o-7"},
        }},
    }  # fmt: skip


async def test_stripe_event_signed_by_the_sdk_becomes_the_customers_event(
    platform: Platform,
) -> None:
    body, headers = stripe_request(checkout_completed(platform.tenant_id))

    response = await post(platform, "/v1/webhooks/stripe", body, headers)

    assert response.status_code == 200, response.text
    queued = await platform.queued("stripe:evt_1")
    assert queued.name == "checkout.session.completed"
    assert queued.customer_id == "ada"
    # What a journey may branch on, and none of the customer's contact details.
    assert queued.properties == {"id": "cs_1", "object": "checkout.session",
                                 "amount_total": 4200, "currency": "eur",
                                 "status": "complete", "metadata": {"order": "o-7"}}  # fmt: skip


async def test_stripe_stale_or_forged_refused_and_replays_applied_once(
    platform: Platform,
) -> None:
    event = checkout_completed(platform.tenant_id, "evt_2")
    body, headers = stripe_request(event)
    _, stale = stripe_request(event, timestamp=int(time.time()) - 301)
    forged = {"Stripe-Signature": headers["Stripe-Signature"].replace("v1=", "v1=0")}

    refused = [
        await post(platform, "/v1/webhooks/stripe", body, stale),
        await post(platform, "/v1/webhooks/stripe", body, forged),
    ]
    assert await platform.queued("stripe:evt_2") is None
    first = await post(platform, "/v1/webhooks/stripe", body, headers)
    replay = await post(platform, "/v1/webhooks/stripe", body, headers)

    assert [answer.status_code for answer in refused] == [401, 401]
    assert first.json()["applied"] == 1
    assert replay.json() == {"received": 1, "applied": 0, "duplicates": 1}


async def test_webhook_without_a_configured_key_is_503_for_the_vendor_to_retry(
    tmp_path: Path,
) -> None:
    async with platform_api(tmp_path) as api:
        body, headers = stripe_request(checkout_completed("t"))
        response = await api.client.post("/v1/webhooks/stripe", content=body, headers=headers)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "webhook_not_configured"
