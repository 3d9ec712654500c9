"""Asking SendGrid and Twilio whether they took a message whose answer was lost.

The stand-ins answer the documented lookups (SendGrid's Email Activity "Filter all messages",
Twilio's Messages list) from the messages they accepted; ``fail_next(hold_s=...)`` makes them
accept a message and hold the answer back, as a vendor does when the caller times out or dies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import SecretStr

from adapters.channels import (
    ChannelMisconfigured,
    OutboundMessage,
    RetryPolicy,
    SendOutcomeUnknown,
    TransientSendError,
    Vendor,
    VendorUnavailable,
)
from adapters.channels.config import SendGridConfig, TwilioConfig, WebhookConfig
from adapters.channels.registry import PushSender, RefusingSender
from adapters.channels.sendgrid import SendGridSender
from adapters.channels.twilio import LIST_PAGE_SIZE, TwilioSender
from adapters.channels.webhook import WebhookSender
from domain.journeys import Channel
from tests.integration.channels.conftest import SENDGRID_KEY, RecordedSleeps
from tests.support.vendors import SendGridStandIn, StandInProcess, TwilioStandIn

EMAIL = OutboundMessage(
    channel=Channel.EMAIL,
    to="ada@example.com",
    subject="Still thinking, Ada?",
    body="Your cart: 2 items",
    idempotency_key="journey-t1-j1-c1:entry-9:email",
    metadata={"tenant_id": "t-1", "node_id": "email"},
)
SMS = OutboundMessage(
    channel=Channel.SMS,
    to="+33 6 12 34 56 78",
    body="Your cart misses you",
    idempotency_key="journey-t1-j1-c1:entry-9:sms",
    metadata={"tenant_id": "t-1"},
)
MESSAGING_SERVICE = "MG" + "a" * 32


def an_hour_ago() -> datetime:
    return datetime.now(UTC) - timedelta(hours=1)


@pytest.fixture
async def sendgrid_sender(
    sendgrid_config: SendGridConfig, policy: RetryPolicy, sleeps: RecordedSleeps
) -> AsyncIterator[SendGridSender]:
    sender = SendGridSender(sendgrid_config, policy, sleep=sleeps)
    yield sender
    await sender.aclose()


@pytest.fixture
async def twilio_sender(
    twilio_config: TwilioConfig, policy: RetryPolicy, sleeps: RecordedSleeps
) -> AsyncIterator[TwilioSender]:
    sender = TwilioSender(twilio_config, policy, sleep=sleeps)
    yield sender
    await sender.aclose()


# --- SendGrid: the Email Activity API -------------------------------------------------------------


async def test_sendgrid_lookup_finds_the_message_an_earlier_attempt_sent(
    sendgrid_sender: SendGridSender, sendgrid: SendGridStandIn
) -> None:
    sent = await sendgrid_sender.send(EMAIL)

    found = await sendgrid_sender.find_accepted(EMAIL, an_hour_ago())

    assert found is not None
    assert found.vendor is Vendor.SENDGRID
    assert found.vendor_message_id == sent.vendor_message_id
    [lookup] = sendgrid.lookups()
    assert lookup.path == "/v3/messages"
    assert lookup.headers["authorization"] == f"Bearer {SENDGRID_KEY}"
    assert parse_qs(lookup.query) == {
        "query": ["unique_args['ce_send_key']=\"journey-t1-j1-c1:entry-9:email\""],
        "limit": ["10"],
    }


async def test_sendgrid_lookup_finds_nothing_for_a_message_never_sent(
    sendgrid_sender: SendGridSender, sendgrid: SendGridStandIn
) -> None:
    await sendgrid_sender.send(EMAIL.model_copy(update={"idempotency_key": "other:entry:email"}))

    assert await sendgrid_sender.find_accepted(EMAIL, an_hour_ago()) is None


async def test_sendgrid_lookup_finds_a_message_whose_answer_was_held_past_the_timeout(
    sendgrid_config: SendGridConfig, sendgrid: SendGridStandIn, sleeps: RecordedSleeps
) -> None:
    sender = SendGridSender(sendgrid_config, RetryPolicy(timeout_s=0.3), sleep=sleeps)
    sendgrid.fail_next(1, hold_s=30, path_contains="/v3/mail/send")

    with pytest.raises(SendOutcomeUnknown):
        await sender.send(EMAIL)
    found = await sender.find_accepted(EMAIL, an_hour_ago())
    await sender.aclose()

    assert found is not None
    [accepted] = sendgrid.accepted()
    assert found.vendor_message_id == accepted.reply_headers["x-message-id"]
    assert sleeps == []  # not sent a second time


async def test_sendgrid_lookup_does_not_see_what_the_feed_has_not_caught_up_with(
    sendgrid_config: SendGridConfig, policy: RetryPolicy
) -> None:
    with SendGridStandIn(api_key=SENDGRID_KEY, activity_lag_s=600).serve() as lagging:
        config = sendgrid_config.model_copy(update={"base_url": lagging.base_url})
        sender = SendGridSender(config, policy)
        await sender.send(EMAIL)
        found = await sender.find_accepted(EMAIL, an_hour_ago())
        await sender.aclose()

    assert found is None
    assert sender.lookup_lag_s is not None
    assert sender.lookup_lag_s > 0


async def test_sendgrid_lookup_without_email_activity_access_is_a_configuration_problem(
    sendgrid_config: SendGridConfig, policy: RetryPolicy
) -> None:
    with SendGridStandIn(api_key=SENDGRID_KEY, activity_access=False).serve() as no_addon:
        config = sendgrid_config.model_copy(update={"base_url": no_addon.base_url})
        sender = SendGridSender(config, policy)
        with pytest.raises(ChannelMisconfigured) as raised:
            await sender.find_accepted(EMAIL, an_hour_ago())
        await sender.aclose()

    assert raised.value.status == 403


async def test_sendgrid_lookup_throttled_retried_then_given_back_as_transient(
    sendgrid_sender: SendGridSender, sendgrid: SendGridStandIn, sleeps: RecordedSleeps
) -> None:
    sendgrid.fail_next(3, status=429, retry_after="2", path_contains="/v3/messages")

    with pytest.raises(TransientSendError) as raised:
        await sendgrid_sender.find_accepted(EMAIL, an_hour_ago())

    assert not isinstance(raised.value, SendOutcomeUnknown)
    assert len(sendgrid.lookups()) == 3
    assert sleeps == [2.0, 2.0]


async def test_sendgrid_lookup_refused_by_the_breaker_the_sends_opened(
    sendgrid_config: SendGridConfig, sendgrid: SendGridStandIn
) -> None:
    sender = SendGridSender(sendgrid_config, RetryPolicy(attempts=1, failures_to_open=2))
    sendgrid.fail_next(2, status=503)
    for _ in range(2):
        with pytest.raises(TransientSendError):
            await sender.send(EMAIL)

    with pytest.raises(VendorUnavailable):
        await sender.find_accepted(EMAIL, an_hour_ago())
    await sender.aclose()

    assert sendgrid.lookups() == []


async def test_sendgrid_stand_in_refuses_an_unknown_query_field_as_sendgrid_does(
    sendgrid: SendGridStandIn,
) -> None:
    async with httpx.AsyncClient(base_url=sendgrid.base_url, timeout=5) as http:
        answer = await http.get(
            "/v3/messages",
            params={"query": 'bad_field="x"', "limit": "10"},
            headers={"Authorization": f"Bearer {SENDGRID_KEY}"},
        )

    assert answer.status_code == 400
    assert answer.json() == {
        "errors": [
            {"message": "invalid syntax: 'bad_field' is not a known field", "field": None,
             "help": None}
        ]
    }  # fmt: skip


# --- Twilio: the Messages list ------------------------------------------------------------------


async def test_twilio_lookup_finds_the_message_an_earlier_attempt_sent(
    twilio_sender: TwilioSender, twilio: TwilioStandIn
) -> None:
    sent = await twilio_sender.send(SMS)

    found = await twilio_sender.find_accepted(SMS, an_hour_ago())

    assert found is not None
    assert found.vendor is Vendor.TWILIO
    assert found.vendor_message_id == sent.vendor_message_id
    [lookup] = twilio.lookups()
    assert lookup.path == f"/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    assert parse_qs(lookup.query) == {
        "To": ["+33612345678"],
        "From": ["+15005550006"],
        "PageSize": [str(LIST_PAGE_SIZE)],
    }


async def test_twilio_lookup_ignores_other_texts_and_older_ones(
    twilio_sender: TwilioSender, twilio: TwilioStandIn
) -> None:
    await twilio_sender.send(SMS.model_copy(update={"body": "Another text"}))
    await twilio_sender.send(SMS.model_copy(update={"to": "+33612345679"}))
    await twilio_sender.send(SMS)

    assert (
        await twilio_sender.find_accepted(SMS.model_copy(update={"body": "New"}), an_hour_ago())
        is None
    )
    # Created before the send began (beyond the clocks' disagreement): another send's text.
    assert await twilio_sender.find_accepted(SMS, datetime.now(UTC) + timedelta(hours=1)) is None


async def test_twilio_lookup_follows_the_pages_newest_first(
    twilio_sender: TwilioSender, twilio: TwilioStandIn
) -> None:
    sent = await twilio_sender.send(SMS)
    for number in range(LIST_PAGE_SIZE):
        await twilio_sender.send(SMS.model_copy(update={"body": f"Later text {number}"}))

    found = await twilio_sender.find_accepted(SMS, an_hour_ago())

    assert found is not None
    assert found.vendor_message_id == sent.vendor_message_id
    assert len(twilio.lookups()) == 2


async def test_twilio_lookup_through_a_messaging_service_matches_its_sid(
    twilio_config: TwilioConfig, twilio: TwilioStandIn, policy: RetryPolicy
) -> None:
    config = twilio_config.model_copy(update={"from_": MESSAGING_SERVICE})
    sender = TwilioSender(config, policy)
    sent = await sender.send(SMS)

    found = await sender.find_accepted(SMS, an_hour_ago())
    await sender.aclose()

    assert found is not None
    assert found.vendor_message_id == sent.vendor_message_id
    [lookup] = twilio.lookups()
    assert "From" not in parse_qs(lookup.query)  # the service picks the number


async def test_twilio_lookup_finds_a_message_whose_answer_was_held_past_the_timeout(
    twilio_config: TwilioConfig, twilio: TwilioStandIn, sleeps: RecordedSleeps
) -> None:
    sender = TwilioSender(twilio_config, RetryPolicy(timeout_s=0.3), sleep=sleeps)
    twilio.fail_next(1, hold_s=30)

    with pytest.raises(SendOutcomeUnknown):
        await sender.send(SMS)
    found = await sender.find_accepted(SMS, an_hour_ago())
    await sender.aclose()

    [accepted] = twilio.accepted()
    assert found is not None
    assert found.vendor_message_id == accepted.reply_json()["sid"]
    assert sleeps == []


async def test_twilio_server_error_not_resent_as_its_outcome_is_unknown(
    twilio_sender: TwilioSender, twilio: TwilioStandIn
) -> None:
    twilio.fail_next(1, status=502)

    with pytest.raises(SendOutcomeUnknown) as raised:
        await twilio_sender.send(SMS)

    assert raised.value.status == 502
    assert len(twilio.requests()) == 1


async def test_twilio_lookup_with_a_wrong_token_is_a_configuration_problem(
    twilio_config: TwilioConfig, twilio: TwilioStandIn, policy: RetryPolicy
) -> None:
    config = twilio_config.model_copy(update={"auth_token": SecretStr("wrong")})
    sender = TwilioSender(config, policy)

    with pytest.raises(ChannelMisconfigured) as raised:
        await sender.find_accepted(SMS, an_hour_ago())
    await sender.aclose()

    assert raised.value.status == 401


# --- vendors that cannot be asked -----------------------------------------------------------------


async def test_push_webhook_and_refusing_senders_cannot_be_asked(policy: RetryPolicy) -> None:
    webhook = WebhookSender(WebhookConfig(signing_secret=SecretStr("s")), policy)
    refusing = RefusingSender("in_app", "not sent through a vendor")
    push = PushSender(refusing, refusing, "fcm")

    for sender in (webhook, refusing, push):
        assert sender.lookup_lag_s is None
        assert await sender.find_accepted(EMAIL, an_hour_ago()) is None
    await webhook.aclose()


# --- the stand-in in a subprocess -----------------------------------------------------------------


async def test_subprocess_stand_in_holds_answers_and_counts_them(tmp_path: Path) -> None:
    with StandInProcess(
        "sendgrid", {"api_key": SENDGRID_KEY}, log=tmp_path / "sendgrid.log"
    ) as remote:
        remote.fail_next(1, hold_s=30, path_contains="/v3/mail/send")
        config = SendGridConfig(
            api_key=SecretStr(SENDGRID_KEY), base_url=remote.base_url, from_="shop@example.com"
        )
        sender = SendGridSender(config, RetryPolicy(timeout_s=0.5))
        with pytest.raises(SendOutcomeUnknown):
            await sender.send(EMAIL)
        holding = remote.holding()
        found = await sender.find_accepted(EMAIL, an_hour_ago())
        await sender.aclose()
        accepted = remote.accepted()

    assert holding == 1
    assert found is not None
    assert [request.json()["custom_args"]["ce_send_key"] for request in accepted] == [
        EMAIL.idempotency_key
    ]
