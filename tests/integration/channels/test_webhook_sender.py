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
from adapters.channels.destinations import is_public
from adapters.channels.webhook import WebhookSender
from domain.journeys import Channel
from tests.integration.channels.conftest import RecordedSleeps, fixed_resolver
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
    # The receivers are on this machine: a platform's setting, CE_ALLOW_PRIVATE_TENANT_URLS.
    sender = WebhookSender(webhook_config, policy, sleep=sleeps, allow_private_networks=True)
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

    sender = WebhookSender(
        WebhookConfig(signing_secret=SecretStr("not-theirs")), policy, allow_private_networks=True
    )

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


@pytest.mark.parametrize(
    "url",
    ["ftp://files.example/hook", "hooks.example/path", "https://", "http://hooks.example:99999/"],
)
async def test_not_an_http_url_refused_before_sending(sender: WebhookSender, url: str) -> None:
    with pytest.raises(RecipientRejected):
        await sender.send(hook(url))


async def test_one_dead_endpoint_does_not_stop_the_others(
    webhook_config: WebhookConfig,
    receiver: WebhookReceiver,
    other_receiver: WebhookReceiver,
) -> None:
    sender = WebhookSender(
        webhook_config, RetryPolicy(attempts=1, failures_to_open=2), allow_private_networks=True
    )
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


# --- endpoints inside the platform's network ------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "169.254.169.254",  # the cloud's metadata service
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1%eth0",
        "fd00::1",
        "::ffff:127.0.0.1",
        "::127.0.0.1",  # IPv4-compatible
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "64:ff9b:1::a00:1",  # NAT64, local use
        "fec0::1",  # site-local
        "192.0.0.8",
    ],
)
async def test_endpoint_resolving_inside_the_network_is_refused_unsent(
    webhook_config: WebhookConfig, policy: RetryPolicy, receiver: WebhookReceiver, address: str
) -> None:
    sender = WebhookSender(
        webhook_config,
        policy,
        resolve=fixed_resolver({"hooks.example": ["93.184.215.14", address]}),
    )
    with pytest.raises(RecipientRejected, match="not public") as raised:
        await sender.send(hook("https://hooks.example/ce"))
    await sender.aclose()

    assert address.split("%")[0] not in str(raised.value)  # our network's map is ours


async def test_loopback_receiver_is_refused_by_default(
    webhook_config: WebhookConfig, policy: RetryPolicy, receiver: WebhookReceiver
) -> None:
    sender = WebhookSender(webhook_config, policy)
    for url in (receiver.url, receiver.url.replace("127.0.0.1", "localhost")):
        with pytest.raises(RecipientRejected, match="not public"):
            await sender.send(hook(url))
    await sender.aclose()

    assert receiver.requests() == []


async def test_unresolvable_endpoint_is_retried_then_transient(
    webhook_config: WebhookConfig, policy: RetryPolicy, sleeps: RecordedSleeps
) -> None:
    sender = WebhookSender(webhook_config, policy, sleep=sleeps, resolve=fixed_resolver({}))
    with pytest.raises(TransientSendError):
        await sender.send(hook("https://nowhere.example/ce"))
    await sender.aclose()

    assert len(sleeps) == policy.attempts - 1


def test_public_addresses_are_public() -> None:
    public = ("93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "64:ff9b::808:808")
    assert all(is_public(address) for address in public)


async def test_host_name_no_resolver_can_encode_is_refused(
    webhook_config: WebhookConfig, policy: RetryPolicy
) -> None:
    sender = WebhookSender(webhook_config, policy)
    with pytest.raises(RecipientRejected, match="not a valid host name"):
        await sender.send(hook(f"https://{'a' * 64}.example/ce"))  # a label past 63 characters
    await sender.aclose()
