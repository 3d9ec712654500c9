"""Email through the SendGrid stand-in: the documented request, retries only when worth it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from adapters.channels import (
    ChannelMisconfigured,
    OutboundMessage,
    PermanentSendError,
    RecipientRejected,
    RetryPolicy,
    SendOutcomeUnknown,
    TransientSendError,
    Vendor,
    VendorUnavailable,
)
from adapters.channels.config import SendGridConfig
from adapters.channels.inbound import sendgrid_events
from adapters.channels.sendgrid import SendGridSender
from domain.journeys import Channel
from tests.integration.channels.conftest import SENDGRID_KEY, RecordedSleeps
from tests.support.vendors import SendGridStandIn

EMAIL = OutboundMessage(
    channel=Channel.EMAIL,
    to="ada@example.com",
    subject="Still thinking, Ada?",
    body="Your cart: 2 items",
    html="<p>Your cart: 2 items</p>",
    idempotency_key="entry-9:email",
    metadata={
        "tenant_id": "t-1",
        "journey_id": "j-1",
        "node_id": "email",
        "send_key": "entry-9:email",
    },
)


@pytest.fixture
async def sender(
    sendgrid_config: SendGridConfig, policy: RetryPolicy, sleeps: RecordedSleeps
) -> AsyncIterator[SendGridSender]:
    sender = SendGridSender(sendgrid_config, policy, sleep=sleeps)
    yield sender
    await sender.aclose()


async def test_mail_send_request_as_documented(
    sender: SendGridSender, sendgrid: SendGridStandIn
) -> None:
    receipt = await sender.send(EMAIL)

    [request] = sendgrid.requests()
    assert request.method == "POST"
    assert request.path == "/v3/mail/send"
    assert request.headers["authorization"] == f"Bearer {SENDGRID_KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {
        "personalizations": [{"to": [{"email": "ada@example.com"}]}],
        "from": {"email": "shop@example.com", "name": "Shop"},
        "subject": "Still thinking, Ada?",
        "content": [
            {"type": "text/plain", "value": "Your cart: 2 items"},
            {"type": "text/html", "value": "<p>Your cart: 2 items</p>"},
        ],
        "custom_args": {
            "ce_journey_id": "j-1",
            "ce_node_id": "email",
            "ce_send_key": "entry-9:email",
            "ce_tenant_id": "t-1",
        },
    }
    assert receipt.vendor is Vendor.SENDGRID
    assert receipt.vendor_message_id == request.reply_headers["x-message-id"]
    assert len(sendgrid.accepted()) == 1


async def test_events_about_the_message_carry_our_ids_back(
    sender: SendGridSender, sendgrid: SendGridStandIn
) -> None:
    receipt = await sender.send(EMAIL)
    [accepted] = sendgrid.accepted()
    body, headers = sendgrid.signed_events([sendgrid.event(accepted, "open")])

    [event] = sendgrid_events(body, headers, sendgrid.public_key)

    assert event.kind == "open"
    assert event.vendor_message_id == receipt.vendor_message_id
    assert event.metadata == EMAIL.metadata


async def test_throttled_send_retried_after_the_retry_after_seconds(
    sender: SendGridSender, sendgrid: SendGridStandIn, sleeps: RecordedSleeps
) -> None:
    sendgrid.fail_next(2, status=429, retry_after="2")

    await sender.send(EMAIL)

    assert [r.status for r in sendgrid.requests()] == [429, 429, 202]
    assert sleeps == [2.0, 2.0]
    assert len(sendgrid.accepted()) == 1


async def test_retry_after_as_an_http_date_honoured_and_capped(
    sendgrid_config: SendGridConfig, sendgrid: SendGridStandIn, sleeps: RecordedSleeps
) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    sendgrid.fail_next(1, status=429, retry_after=later)
    sender = SendGridSender(
        sendgrid_config, RetryPolicy(attempts=2, retry_after_max_s=7), sleep=sleeps
    )

    await sender.send(EMAIL)
    await sender.aclose()

    assert sleeps == [7.0]


async def test_unavailable_vendor_retried_with_backoff(
    sender: SendGridSender, sendgrid: SendGridStandIn, sleeps: RecordedSleeps
) -> None:
    sendgrid.fail_next(2, status=503)

    await sender.send(EMAIL)

    assert [r.status for r in sendgrid.requests()] == [503, 503, 202]
    assert len(sleeps) == 2


async def test_server_error_not_resent_as_its_outcome_is_unknown(
    sender: SendGridSender, sendgrid: SendGridStandIn, sleeps: RecordedSleeps
) -> None:
    sendgrid.fail_next(1, status=500)

    with pytest.raises(SendOutcomeUnknown) as raised:
        await sender.send(EMAIL)

    assert raised.value.status == 500
    assert [r.status for r in sendgrid.requests()] == [500]
    assert sleeps == []


async def test_failures_past_the_attempts_given_back_as_transient(
    sender: SendGridSender, sendgrid: SendGridStandIn
) -> None:
    sendgrid.fail_next(3, status=429, retry_after="11")

    with pytest.raises(TransientSendError) as raised:
        await sender.send(EMAIL)

    assert raised.value.status == 429
    assert raised.value.retry_after_s == 11.0
    assert len(sendgrid.requests()) == 3
    assert sendgrid.accepted() == []


async def test_bad_address_refused_at_once_without_retry(
    sender: SendGridSender, sendgrid: SendGridStandIn, sleeps: RecordedSleeps
) -> None:
    with pytest.raises(RecipientRejected) as raised:
        await sender.send(EMAIL.model_copy(update={"to": "ada-at-example"}))

    assert raised.value.status == 400
    assert len(sendgrid.requests()) == 1
    assert sleeps == []


async def test_other_refusal_is_permanent_but_not_the_recipients(
    sender: SendGridSender, sendgrid: SendGridStandIn
) -> None:
    sendgrid.fail_next(1, status=400)

    with pytest.raises(PermanentSendError) as raised:
        await sender.send(EMAIL)

    assert not isinstance(raised.value, RecipientRejected)
    assert len(sendgrid.requests()) == 1


async def test_refused_key_is_a_configuration_problem(
    sendgrid: SendGridStandIn, policy: RetryPolicy
) -> None:
    config = SendGridConfig.model_validate(
        {"api_key": "SG.revoked", "base_url": sendgrid.base_url, "from": "shop@example.com"}
    )
    sender = SendGridSender(config, policy)

    with pytest.raises(ChannelMisconfigured) as raised:
        await sender.send(EMAIL)
    await sender.aclose()

    assert raised.value.status == 401


async def test_email_without_subject_refused_before_sending(
    sender: SendGridSender, sendgrid: SendGridStandIn
) -> None:
    with pytest.raises(PermanentSendError):
        await sender.send(EMAIL.model_copy(update={"subject": " "}))

    assert sendgrid.requests() == []


async def test_breaker_opens_after_repeated_failures_and_fails_fast(
    sendgrid_config: SendGridConfig, sendgrid: SendGridStandIn
) -> None:
    sender = SendGridSender(sendgrid_config, RetryPolicy(attempts=1, failures_to_open=3))
    sendgrid.fail_next(10, status=503)

    outcomes = []
    for _ in range(5):
        with pytest.raises(TransientSendError) as raised:
            await sender.send(EMAIL)
        outcomes.append(type(raised.value))
    await sender.aclose()

    assert outcomes[:2] == [TransientSendError, TransientSendError]
    assert outcomes[2:] == [VendorUnavailable] * 3  # the third failure opens it
    assert len(sendgrid.requests()) == 3


async def test_slow_vendor_not_resent_as_its_outcome_is_unknown(
    sendgrid_config: SendGridConfig, sendgrid: SendGridStandIn, sleeps: RecordedSleeps
) -> None:
    sendgrid.fail_next(2, delay_s=30)
    sender = SendGridSender(sendgrid_config, RetryPolicy(timeout_s=0.3, attempts=2), sleep=sleeps)

    with pytest.raises(SendOutcomeUnknown, match="timed out"):
        await sender.send(EMAIL)
    await sender.aclose()

    assert sleeps == []  # no second attempt: the first may have gone through


async def test_slow_answer_within_the_timeout_accepted(
    sender: SendGridSender, sendgrid: SendGridStandIn
) -> None:
    sendgrid.fail_next(1, delay_s=0.2)

    await sender.send(EMAIL)

    assert len(sendgrid.accepted()) == 1


async def test_vendor_down_given_back_as_transient(
    sendgrid_config: SendGridConfig, policy: RetryPolicy, sleeps: RecordedSleeps
) -> None:
    dead = sendgrid_config.model_copy(update={"base_url": "http://127.0.0.1:9"})
    sender = SendGridSender(dead, policy, sleep=sleeps)

    with pytest.raises(TransientSendError, match="ConnectError"):
        await sender.send(EMAIL)
    await sender.aclose()

    assert len(sleeps) == policy.attempts - 1
