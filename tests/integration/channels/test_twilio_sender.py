"""SMS through the Twilio stand-in, and its status callbacks read back."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlsplit

import pytest

from adapters.channels import (
    ChannelMisconfigured,
    OutboundMessage,
    RecipientRejected,
    RetryPolicy,
    Vendor,
)
from adapters.channels.config import TwilioConfig
from adapters.channels.inbound import Suppression, twilio_event
from adapters.channels.twilio import TwilioSender
from domain.journeys import Channel
from tests.integration.channels.conftest import CALLBACK_BASE, RecordedSleeps
from tests.support.vendors import TwilioStandIn

SMS = OutboundMessage(
    channel=Channel.SMS,
    to="+33 6 12 34 56 78",
    body="Your cart misses you",
    idempotency_key="entry-9:sms",
    metadata={"tenant_id": "t-1", "send_key": "entry-9:sms"},
)


@pytest.fixture
async def sender(
    twilio_config: TwilioConfig, policy: RetryPolicy, sleeps: RecordedSleeps
) -> AsyncIterator[TwilioSender]:
    sender = TwilioSender(twilio_config, policy, sleep=sleeps)
    yield sender
    await sender.aclose()


async def test_messages_request_as_documented(sender: TwilioSender, twilio: TwilioStandIn) -> None:
    receipt = await sender.send(SMS)

    [request] = twilio.requests()
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    credentials = base64.b64encode(f"{twilio.account_sid}:{twilio.auth_token}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {credentials}"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = request.form()
    assert set(form) == {"To", "From", "Body", "StatusCallback"}
    assert form["To"] == "+33612345678"
    assert form["From"] == "+15005550006"
    assert form["Body"] == "Your cart misses you"
    callback = urlsplit(form["StatusCallback"])
    assert callback._replace(query="").geturl() == CALLBACK_BASE
    assert dict(parse_qsl(callback.query)) == {"ce_tenant_id": "t-1", "ce_send_key": "entry-9:sms"}
    assert receipt.vendor is Vendor.TWILIO
    assert receipt.vendor_message_id == request.reply_json()["sid"]


async def test_messaging_service_sent_as_its_sid(
    twilio_config: TwilioConfig, twilio: TwilioStandIn, policy: RetryPolicy
) -> None:
    service = "MG" + "0123456789abcdef" * 2
    sender = TwilioSender(twilio_config.model_copy(update={"from_": service}), policy)

    await sender.send(SMS)
    await sender.aclose()

    form = twilio.requests()[0].form()
    assert form["MessagingServiceSid"] == service
    assert "From" not in form


async def test_status_callback_for_the_message_read_back_with_our_ids(
    sender: TwilioSender, twilio: TwilioStandIn
) -> None:
    receipt = await sender.send(SMS)
    [accepted] = twilio.accepted()
    url, body, headers = twilio.status_callback(accepted, "delivered")

    event = twilio_event(url, body, headers, twilio.auth_token)

    assert event.kind == "delivered"
    assert event.vendor_message_id == receipt.vendor_message_id
    assert event.metadata == SMS.metadata
    assert event.address == "+33612345678"


async def test_opted_out_number_refused_as_the_recipients(
    sender: TwilioSender, twilio: TwilioStandIn, sleeps: RecordedSleeps
) -> None:
    with pytest.raises(RecipientRejected) as raised:
        await sender.send(SMS.model_copy(update={"to": "+33699999999"}))

    assert raised.value.code == "21610"
    assert len(twilio.requests()) == 1
    assert sleeps == []


async def test_number_without_its_country_refused_before_sending(
    sender: TwilioSender, twilio: TwilioStandIn
) -> None:
    with pytest.raises(RecipientRejected):
        await sender.send(SMS.model_copy(update={"to": "06 12 34 56 78"}))

    assert twilio.requests() == []


async def test_throttled_send_retried_after_the_retry_after_seconds(
    sender: TwilioSender, twilio: TwilioStandIn, sleeps: RecordedSleeps
) -> None:
    twilio.fail_next(1, status=429, retry_after="1")

    await sender.send(SMS)

    assert [r.status for r in twilio.requests()] == [429, 201]
    assert sleeps == [1.0]


async def test_wrong_token_is_a_configuration_problem(
    twilio_config: TwilioConfig, policy: RetryPolicy
) -> None:
    from pydantic import SecretStr

    sender = TwilioSender(twilio_config.model_copy(update={"auth_token": SecretStr("x")}), policy)

    with pytest.raises(ChannelMisconfigured) as raised:
        await sender.send(SMS)
    await sender.aclose()

    assert raised.value.code == "20003"


async def test_inbound_stop_read_from_the_stand_ins_webhook(twilio: TwilioStandIn) -> None:
    url, body, headers = twilio.inbound_message(
        "https://ce.example.com/v1/webhooks/twilio", from_="+33612345678", body="STOP"
    )

    event = twilio_event(url, body, headers, twilio.auth_token)

    assert event.kind == "inbound"
    assert event.suppression is Suppression.PERMANENT
