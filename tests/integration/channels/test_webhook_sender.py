"""Signed webhooks to a customer's endpoint: verifiable, retried when worth it, one breaker
per endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from adapters.channels import (
    OutboundMessage,
    PermanentSendError,
    RecipientRejected,
    RetryPolicy,
    TransientSendError,
    Vendor,
    VendorUnavailable,
)
from adapters.channels.config import WebhookConfig
from adapters.channels.webhook import WebhookSender
from domain.journeys import Channel
from tests.integration.channels.conftest import RecordedSleeps
from tests.support.vendors import WebhookReceiver


def hook(url: str) -> OutboundMessage:
    return OutboundMessage(
        channel=Channel.WEBHOOK,
        to=url,
        subject="cart_abandoned",
        body='{"items": 2}',
        idempotency_key="entry-9:hook",
        metadata={"tenant_id": "t-1", "send_key": "entry-9:hook"},
    )


@pytest.fixture
async def sender(
    webhook_config: WebhookConfig, policy: RetryPolicy, sleeps: RecordedSleeps
) -> AsyncIterator[WebhookSender]:
    sender = WebhookSender(webhook_config, policy, sleep=sleeps)
    yield sender
    await sender.aclose()


@pytest.fixture
def other_receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(secret="hook-secret").serve() as stand_in:
        yield stand_in


async def test_receiver_verifies_the_signature_and_reads_the_envelope(
    sender: WebhookSender, receiver: WebhookReceiver
) -> None:
    receipt = await sender.send(hook(receiver.url))

    [request] = receiver.requests()
    assert request.status == 200
    assert receiver.signature_valid(request)
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == "entry-9:hook"
    assert request.headers["x-ce-signature"].startswith("sha256=")
    assert request.json() == {
        "id": "entry-9:hook",
        "subject": "cart_abandoned",
        "body": '{"items": 2}',
        "metadata": {"tenant_id": "t-1", "send_key": "entry-9:hook"},
    }
    assert receipt.vendor is Vendor.WEBHOOK


async def test_receiver_with_another_secret_refuses_it(
    policy: RetryPolicy, receiver: WebhookReceiver
) -> None:
    from pydantic import SecretStr

    sender = WebhookSender(WebhookConfig(signing_secret=SecretStr("not-theirs")), policy)

    with pytest.raises(PermanentSendError) as raised:
        await sender.send(hook(receiver.url))
    await sender.aclose()

    assert raised.value.status == 401


async def test_endpoint_errors_retried_and_each_attempt_signed_afresh(
    sender: WebhookSender, receiver: WebhookReceiver, sleeps: RecordedSleeps
) -> None:
    receiver.fail_next(2, status=503)

    await sender.send(hook(receiver.url))

    assert [r.status for r in receiver.requests()] == [503, 503, 200]
    assert all(receiver.signature_valid(r) for r in receiver.requests())
    assert len(sleeps) == 2


async def test_endpoint_gone_refused_as_the_recipients(
    sender: WebhookSender, receiver: WebhookReceiver
) -> None:
    receiver.fail_next(1, status=410)

    with pytest.raises(RecipientRejected):
        await sender.send(hook(receiver.url))

    assert len(receiver.requests()) == 1


@pytest.mark.parametrize("url", ["ftp://files.example/hook", "hooks.example/path", "https://"])
async def test_not_an_http_url_refused_before_sending(sender: WebhookSender, url: str) -> None:
    with pytest.raises(RecipientRejected):
        await sender.send(hook(url))


async def test_one_dead_endpoint_does_not_stop_the_others(
    webhook_config: WebhookConfig,
    receiver: WebhookReceiver,
    other_receiver: WebhookReceiver,
) -> None:
    sender = WebhookSender(webhook_config, RetryPolicy(attempts=1, failures_to_open=2))
    receiver.fail_next(10, status=500)
    for _ in range(2):
        with pytest.raises(TransientSendError):
            await sender.send(hook(receiver.url))

    with pytest.raises(VendorUnavailable):
        await sender.send(hook(receiver.url))
    await sender.send(hook(other_receiver.url))
    await sender.aclose()

    assert len(receiver.requests()) == 2
    assert len(other_receiver.accepted()) == 1
