"""The sender for a tenant's channel: the platform's vendor accounts, or the tenant's own.

Senders are built once per distinct account and kept, so every tenant on the platform's
SendGrid account shares one connection pool, one breaker and one FCM access token, and a tenant
with its own account gets its own.

In-app messages go to the customers' inboxes (``inbox``), when the process has one.

A channel that cannot send (its settings missing, a key unreadable, in-app without an inbox)
still gets a sender: one whose every send raises ``ChannelMisconfigured`` saying why, so a
journey records the message as failed instead of retrying it forever.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from adapters.channels.apns import ApnsSender
from adapters.channels.config import (
    InvalidVendorOverrides,
    PushProvider,
    VendorConfigs,
)
from adapters.channels.destinations import DestinationRule
from adapters.channels.fcm import FcmSender
from adapters.channels.http import RetryPolicy, Sleep
from adapters.channels.inbox import InboxSender, InboxStore
from adapters.channels.ports import (
    ChannelMisconfigured,
    ChannelSender,
    NoAcceptanceRecords,
    OutboundMessage,
    SendReceipt,
    Vendor,
)
from adapters.channels.sendgrid import SendGridSender
from adapters.channels.twilio import TwilioSender
from adapters.channels.webhook import WebhookSender
from adapters.settings import Settings
from domain.journeys import Channel

log = logging.getLogger(__name__)

IN_APP_REASON = "in-app messages are stored for the app to fetch, and this process has no inbox"


class _ClosableSender(ChannelSender, Protocol):
    async def aclose(self) -> None: ...


class RefusingSender(NoAcceptanceRecords):
    """A channel that cannot send: every send raises ``ChannelMisconfigured`` with the reason."""

    def __init__(self, vendor: str, reason: str) -> None:
        self.vendor = vendor
        self.reason = reason

    async def send(self, message: OutboundMessage) -> SendReceipt:
        raise ChannelMisconfigured(self.vendor, self.reason)

    async def aclose(self) -> None:
        return None


def push_target(address: str, default: PushProvider) -> tuple[PushProvider, str]:
    """``fcm:<token>`` or ``apns:<token>``; a bare token goes to ``default``."""
    service, separator, token = address.partition(":")
    if separator and service in ("fcm", "apns"):
        return ("fcm" if service == "fcm" else "apns"), token
    return default, address


class PushSender(NoAcceptanceRecords):
    """Push through FCM or APNs, as the token's prefix (or the tenant's default) says. Neither
    can be asked whether it took a message."""

    def __init__(self, fcm: ChannelSender, apns: ChannelSender, default: PushProvider) -> None:
        self._fcm = fcm
        self._apns = apns
        self._default = default

    async def send(self, message: OutboundMessage) -> SendReceipt:
        service, token = push_target(message.to, self._default)
        target = self._fcm if service == "fcm" else self._apns
        return await target.send(message.model_copy(update={"to": token}))


class ChannelSenders:
    def __init__(
        self,
        platform: VendorConfigs,
        *,
        policy: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        inbox: InboxStore | None = None,
        private_tenant_urls: bool = False,
    ) -> None:
        self.platform = platform
        # The platform's to set, never a tenant's: it is not part of VendorConfigs.
        self._private_tenant_urls = private_tenant_urls
        self._inbox = InboxSender(inbox) if inbox is not None else None
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._senders: dict[tuple[Vendor, object], _ClosableSender] = {}

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> ChannelSenders:
        options.setdefault("private_tenant_urls", settings.allow_private_tenant_urls)
        return cls(VendorConfigs.from_settings(settings), **options)

    def sender(self, channel: Channel, overrides: Mapping[str, Any] | None = None) -> ChannelSender:
        """The sender for ``channel`` with a tenant's ``tenant_channel_settings.vendors``."""
        if channel is Channel.IN_APP:
            if self._inbox is None:
                return RefusingSender("in_app", IN_APP_REASON)
            return self._inbox
        try:
            configs = self.platform.overlay(overrides)
        except InvalidVendorOverrides as error:
            return RefusingSender(channel.value, f"tenant vendor settings: {error}")
        if channel is Channel.EMAIL:
            return self._vendor(Vendor.SENDGRID, configs)
        if channel is Channel.SMS:
            return self._vendor(Vendor.TWILIO, configs)
        if channel is Channel.WEBHOOK:
            return self._vendor(Vendor.WEBHOOK, configs)
        return PushSender(
            self._vendor(Vendor.FCM, configs),
            self._vendor(Vendor.APNS, configs),
            configs.default_push(),
        )

    async def send(
        self, message: OutboundMessage, overrides: Mapping[str, Any] | None = None
    ) -> SendReceipt:
        return await self.sender(message.channel, overrides).send(message)

    def _vendor(self, vendor: Vendor, configs: VendorConfigs) -> ChannelSender:
        config = getattr(configs, vendor.value)
        key = (vendor, config)
        sender = self._senders.get(key)
        if sender is None:
            sender = self._build(vendor, configs)
            self._senders[key] = sender
        return sender

    def _destinations(self, vendor: Vendor, configs: VendorConfigs) -> DestinationRule | None:
        """Public addresses only for a vendor account a tenant configured. Not just its
        routing fields: a tenant's FCM key file names a token URL of its own."""
        if self._private_tenant_urls or getattr(configs, vendor.value) == getattr(
            self.platform, vendor.value
        ):
            return None

        def refuse(reason: str) -> ChannelMisconfigured:
            return ChannelMisconfigured(vendor.value, f"the tenant's vendor URL: {reason}")

        return DestinationRule(refuse=refuse)

    def _build(self, vendor: Vendor, configs: VendorConfigs) -> _ClosableSender:
        policy, sleep, clock = self._policy, self._sleep, self._clock
        destinations = self._destinations(vendor, configs)
        try:
            if vendor is Vendor.SENDGRID:
                return SendGridSender(
                    configs.sendgrid, policy, sleep=sleep, destinations=destinations
                )
            if vendor is Vendor.TWILIO:
                return TwilioSender(configs.twilio, policy, sleep=sleep, destinations=destinations)
            if vendor is Vendor.FCM:
                return FcmSender(
                    configs.fcm, policy, sleep=sleep, clock=clock, destinations=destinations
                )
            if vendor is Vendor.APNS:
                return ApnsSender(
                    configs.apns, policy, sleep=sleep, clock=clock, destinations=destinations
                )
            if vendor is Vendor.WEBHOOK:
                return WebhookSender(
                    configs.webhook,
                    policy,
                    sleep=sleep,
                    clock=clock,
                    allow_private_networks=self._private_tenant_urls,
                )
        except (ValueError, OSError) as error:
            log.warning("%s cannot send: %s", vendor.value, error)
            return RefusingSender(vendor.value, str(error))
        raise AssertionError(f"no sender for {vendor}")

    async def aclose(self) -> None:
        senders = list(self._senders.values())
        self._senders.clear()
        for sender in senders:
            await sender.aclose()
