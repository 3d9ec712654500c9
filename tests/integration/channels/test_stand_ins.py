"""The stand-ins themselves: strict where the vendor is, drivable from another process."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sendgrid.helpers.eventwebhook import EventWebhook  # type: ignore[import-untyped]

from adapters.channels import ChannelSenders, OutboundMessage, VendorConfigs
from adapters.channels.config import SendGridConfig, TwilioConfig
from adapters.channels.inbound import sendgrid_events, twilio_event
from domain.journeys import Channel
from tests.support.vendors import ApnsStandIn, SendGridStandIn, StandInProcess

EMAIL = OutboundMessage(
    channel=Channel.EMAIL,
    to="ada@example.com",
    subject="Hello",
    body="Hi",
    idempotency_key="entry-1:email",
    metadata={"tenant_id": "t-1", "send_key": "entry-1:email"},
)


async def test_apns_stand_in_refuses_http1(apns: ApnsStandIn) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{apns.base_url}/3/device/{'ab' * 32}", json={"aps": {}})

    assert response.status_code == 505
    assert apns.accepted() == []


async def test_sendgrid_stand_in_refuses_what_sendgrid_refuses(sendgrid: SendGridStandIn) -> None:
    async with httpx.AsyncClient(base_url=sendgrid.base_url) as client:
        no_key = await client.post("/v3/mail/send", json={})
        no_subject = await client.post(
            "/v3/mail/send",
            headers={"Authorization": f"Bearer {sendgrid.api_key}"},
            json={
                "personalizations": [{"to": [{"email": "ada@example.com"}]}],
                "from": {"email": "shop@example.com"},
                "content": [{"type": "text/plain", "value": "Hi"}],
            },
        )

    assert no_key.status_code == 401
    assert no_subject.status_code == 400
    assert no_subject.json()["errors"][0]["field"] == "subject"
    assert sendgrid.accepted() == []


def test_sendgrid_stand_in_signs_as_the_sdk_verifies(sendgrid: SendGridStandIn) -> None:
    body, headers = sendgrid.signed_events([{"event": "open", "sg_event_id": "e1"}])
    sdk = EventWebhook()

    assert sdk.verify_signature(
        body.decode(),
        headers["X-Twilio-Email-Event-Webhook-Signature"],
        headers["X-Twilio-Email-Event-Webhook-Timestamp"],
        sdk.convert_public_key_to_ecdsa(sendgrid.public_key),
    )


async def test_subprocess_stand_in_counts_emails_and_signs_events(tmp_path: Path) -> None:
    with StandInProcess(
        "sendgrid", {"api_key": "SG.e2e"}, log=tmp_path / "sendgrid.log"
    ) as sendgrid:
        senders = ChannelSenders(
            VendorConfigs(
                sendgrid=SendGridConfig(
                    api_key=SecretStr("SG.e2e"), base_url=sendgrid.base_url, from_="s@example.com"
                )
            )
        )
        await senders.send(EMAIL)
        await senders.aclose()
        accepted = sendgrid.accepted()
        body, headers = sendgrid.signed_event(0, "open")
        public_key = sendgrid.public_key()

    assert len(accepted) == 1
    [event] = sendgrid_events(body, headers, public_key)
    assert event.kind == "open"
    assert event.metadata == EMAIL.metadata


async def test_subprocess_stand_in_fails_on_command_and_resets(tmp_path: Path) -> None:
    with StandInProcess("sendgrid", {"api_key": "SG.e2e"}, log=tmp_path / "sg.log") as sendgrid:
        sendgrid.fail_next(1, status=503)
        async with httpx.AsyncClient(base_url=sendgrid.base_url) as client:
            first = await client.post("/v3/mail/send", json={})
            second = await client.post("/v3/mail/send", json={})
        statuses = [r.status for r in sendgrid.requests()]
        sendgrid.reset()
        after_reset = sendgrid.requests()

    assert (first.status_code, second.status_code) == (503, 401)
    assert statuses == [503, 401]
    assert after_reset == []


async def test_subprocess_twilio_stand_in_posts_signed_callbacks(tmp_path: Path) -> None:
    token = "e2e-auth-token"
    sid = "AC" + "e" * 32
    with StandInProcess(
        "twilio", {"account_sid": sid, "auth_token": token}, log=tmp_path / "twilio.log"
    ) as twilio:
        senders = ChannelSenders(
            VendorConfigs(
                twilio=TwilioConfig(
                    account_sid=sid,
                    auth_token=SecretStr(token),
                    base_url=twilio.base_url,
                    from_="+15005550006",
                    status_callback_url="https://ce.example.com/v1/webhooks/twilio",
                )
            )
        )
        await senders.send(EMAIL.model_copy(update={"channel": Channel.SMS, "to": "+33612345678"}))
        await senders.aclose()
        url, body, headers = twilio.status_callback(0, "delivered")

    event = twilio_event(url, body, headers, token)
    assert event.kind == "delivered"
    assert event.metadata == EMAIL.metadata


def test_subprocess_that_cannot_start_says_why(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="unexpected keyword"):
        StandInProcess("sendgrid", {"colour": "blue"}, log=tmp_path / "bad.log").start()
