"""The sender for a tenant's channel: the platform's accounts, or the tenant's own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from adapters.channels import (
    ChannelMisconfigured,
    ChannelSenders,
    OutboundMessage,
    RecipientRejected,
    RetryPolicy,
    Vendor,
    VendorConfigs,
)
from adapters.channels.config import (
    ApnsConfig,
    FcmConfig,
    SendGridConfig,
    TwilioConfig,
    WebhookConfig,
)
from adapters.settings import Settings
from domain.journeys import Channel
from tests.integration.channels.conftest import SENDGRID_KEY
from tests.support.vendors import ApnsStandIn, FcmStandIn, SendGridStandIn, WebhookReceiver

DEVICE = "c3" * 32


def message(channel: Channel, to: str, key: str = "entry-1:node") -> OutboundMessage:
    return OutboundMessage(
        channel=channel,
        to=to,
        subject="Hello",
        body="Hi there",
        idempotency_key=key,
        metadata={"tenant_id": "t-1"},
    )


@pytest.fixture
async def senders(
    sendgrid_config: SendGridConfig,
    twilio_config: TwilioConfig,
    fcm_config: FcmConfig,
    apns_config: ApnsConfig,
    webhook_config: WebhookConfig,
    policy: RetryPolicy,
) -> AsyncIterator[ChannelSenders]:
    senders = ChannelSenders(
        VendorConfigs(
            sendgrid=sendgrid_config,
            twilio=twilio_config,
            fcm=fcm_config,
            apns=apns_config,
            webhook=webhook_config,
        ),
        policy=policy,
        private_tenant_urls=True,  # the receivers are on this machine
    )
    yield senders
    await senders.aclose()


async def test_each_channel_reaches_its_vendor(
    senders: ChannelSenders,
    sendgrid: SendGridStandIn,
    fcm: FcmStandIn,
    apns: ApnsStandIn,
    receiver: WebhookReceiver,
) -> None:
    receipts = [
        await senders.send(message(Channel.EMAIL, "ada@example.com")),
        await senders.send(message(Channel.SMS, "+33612345678")),
        await senders.send(message(Channel.PUSH, "fcm:registration-token")),
        await senders.send(message(Channel.PUSH, f"apns:{DEVICE}")),
        await senders.send(message(Channel.PUSH, "bare-registration-token")),
        await senders.send(message(Channel.WEBHOOK, receiver.url)),
    ]

    assert [r.vendor for r in receipts] == [
        Vendor.SENDGRID,
        Vendor.TWILIO,
        Vendor.FCM,
        Vendor.APNS,
        Vendor.FCM,
        Vendor.WEBHOOK,
    ]
    assert [r.json()["message"]["token"] for r in fcm.accepted()] == [
        "registration-token",
        "bare-registration-token",
    ]
    assert [r.path for r in apns.accepted()] == [f"/3/device/{DEVICE}"]


async def test_tenants_on_the_platform_account_share_one_sender(
    senders: ChannelSenders,
) -> None:
    first = senders.sender(Channel.EMAIL)
    second = senders.sender(Channel.EMAIL, {"twilio": {"from": "+15005550007"}})

    assert first is second


async def test_tenant_with_its_own_account_sends_with_it(
    senders: ChannelSenders, sendgrid: SendGridStandIn
) -> None:
    sendgrid.api_key = "SG.tenant-own-key"
    overrides = {"sendgrid": {"api_key": "SG.tenant-own-key", "from": "news@tenant.example"}}

    await senders.send(message(Channel.EMAIL, "ada@example.com"), overrides)

    [request] = sendgrid.accepted()
    assert request.headers["authorization"] == "Bearer SG.tenant-own-key"
    assert request.json()["from"] == {"email": "news@tenant.example"}
    assert senders.sender(Channel.EMAIL, overrides) is not senders.sender(Channel.EMAIL)


async def test_tenant_preferring_apns_gets_bare_tokens_there(
    senders: ChannelSenders, apns: ApnsStandIn
) -> None:
    receipt = await senders.send(message(Channel.PUSH, DEVICE), {"push_provider": "apns"})

    assert receipt.vendor is Vendor.APNS
    assert len(apns.accepted()) == 1


async def test_invalid_tenant_settings_fail_the_send_and_say_why(
    senders: ChannelSenders, sendgrid: SendGridStandIn
) -> None:
    overrides = {"sendgrid": {"base_url": "https://collector.example"}}

    with pytest.raises(ChannelMisconfigured, match="tenant vendor settings"):
        await senders.send(message(Channel.EMAIL, "ada@example.com"), overrides)

    assert sendgrid.requests() == []


async def test_unconfigured_channel_fails_each_send_naming_the_settings() -> None:
    senders = ChannelSenders.from_settings(Settings())

    with pytest.raises(ChannelMisconfigured, match="CE_SENDGRID_API_KEY"):
        await senders.send(message(Channel.EMAIL, "ada@example.com"))
    with pytest.raises(ChannelMisconfigured, match="CE_TWILIO_ACCOUNT_SID"):
        await senders.send(message(Channel.SMS, "+33612345678"))
    with pytest.raises(ChannelMisconfigured, match="CE_WEBHOOK_SIGNING_SECRET"):
        await senders.send(message(Channel.WEBHOOK, "https://hooks.example/ce"))
    await senders.aclose()


async def test_unreadable_key_file_fails_the_send_not_the_process(
    apns_config: ApnsConfig, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.p8"
    broken.write_text("not a key")
    senders = ChannelSenders(
        VendorConfigs(apns=apns_config.model_copy(update={"key_file": broken}))
    )

    with pytest.raises(ChannelMisconfigured, match="PEM"):
        await senders.send(message(Channel.PUSH, f"apns:{DEVICE}"))
    await senders.aclose()


async def test_in_app_messages_are_not_sent_through_a_vendor(senders: ChannelSenders) -> None:
    with pytest.raises(ChannelMisconfigured, match="stored"):
        await senders.send(message(Channel.IN_APP, "customer-1"))


async def test_webhooks_reach_private_networks_only_when_the_platform_allows_it(
    webhook_config: WebhookConfig, receiver: WebhookReceiver
) -> None:
    secret = webhook_config.signing_secret
    for allowed, reached in ((False, 0), (True, 1)):
        settings = Settings(webhook_signing_secret=secret, allow_private_tenant_urls=allowed)
        senders = ChannelSenders.from_settings(settings)
        if allowed:
            await senders.send(message(Channel.WEBHOOK, receiver.url))
        else:
            with pytest.raises(RecipientRejected, match="not public"):
                await senders.send(message(Channel.WEBHOOK, receiver.url))
        await senders.aclose()
        assert len(receiver.requests()) == reached


async def test_tenant_vendor_url_reaches_private_networks_only_when_allowed(
    sendgrid: SendGridStandIn,
) -> None:
    # The platform's own base URL (an operator's setting) may be anywhere; a tenant's may not.
    tenant = {
        "sendgrid": {
            "api_key": SENDGRID_KEY,
            "from": "shop@example.com",
            "base_url": sendgrid.base_url,
        }
    }
    for allowed, reached in ((False, 0), (True, 1)):
        senders = ChannelSenders(VendorConfigs(), private_tenant_urls=allowed)
        if allowed:
            await senders.send(message(Channel.EMAIL, "ada@example.com"), tenant)
        else:
            with pytest.raises(ChannelMisconfigured, match="tenant's vendor URL"):
                await senders.send(message(Channel.EMAIL, "ada@example.com"), tenant)
        await senders.aclose()
        assert len(sendgrid.requests()) == reached


async def test_tenant_fcm_key_file_cannot_send_its_token_request_inside(
    fcm: FcmStandIn, tmp_path: Path
) -> None:
    # No base or token URL set: the URL is the key file's own token_uri.
    key_file = fcm.service_account(tmp_path / "tenant-key.json").read_text()
    tenant = {"fcm": {"project_id": fcm.project_id, "service_account_info": key_file}}
    senders = ChannelSenders(VendorConfigs())

    with pytest.raises(ChannelMisconfigured, match="tenant's vendor URL"):
        await senders.send(message(Channel.PUSH, f"fcm:{DEVICE}"), tenant)
    await senders.aclose()

    assert fcm.requests() == []


async def test_settings_point_the_platform_sender_at_the_stand_in(
    sendgrid: SendGridStandIn,
) -> None:
    settings = Settings(
        sendgrid_api_key=SecretStr("SG.test-key"),
        sendgrid_base_url=sendgrid.base_url,
        sendgrid_from="shop@example.com",
    )
    senders = ChannelSenders.from_settings(settings)

    await senders.send(message(Channel.EMAIL, "ada@example.com"))
    await senders.aclose()

    assert len(sendgrid.accepted()) == 1
