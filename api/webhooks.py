"""Inbound vendor webhooks applied: what SendGrid, Twilio and Stripe tell us, once verified.

For each event of a verified request, in order:

1. skip it if its ``(vendor, event id)`` was applied before (vendors redeliver, for hours);
2. find the send it reports on: by our send key, echoed back by the vendor (SendGrid custom
   args, the Twilio status callback's query), else by the vendor's message id;
3. move the send's status forward (``domain.engagement``: a late ``delivered`` never undoes
   an ``opened``);
4. suppress or lift the address: unsubscribes, spam reports, hard bounces and SMS STOP
   suppress for good, a blocked bounce for a day, START and resubscribes lift;
5. queue the customer event it becomes (``email_open``, ``sms_delivered``; a Stripe event
   under its own type), through the same queue as ``/v1/channels/ingest``: the trigger
   evaluator signals the customer's journeys with it (or enters them in journeys it
   triggers), so a journey waiting for ``email_open`` wakes;
6. record the event as applied.

Every step is safe to repeat, so a crash between them means the vendor's redelivery finishes
the job; the record comes last so nothing is skipped that was not done. The queue is the
ingest's, durable before it answers: once we answer 2xx nothing is lost.

Which tenant an event belongs to comes from the send it reports on. A request signed with a
tenant's own vendor account speaks for that tenant's sends only. An opt-out with no send to
tie it to (an SMS STOP sent to our number) is mirrored for every tenant sending through the
account it came to, as the vendor itself stops that account from messaging the address.

Stripe events carry no send; they become customer events when the object's metadata names
the tenant and customer (``ce_tenant_id``, ``ce_customer_id``: set them when creating the checkout
session, invoice or payment intent), e.g. ``checkout.session.completed`` for a journey to wait
for. Inbound SMS other than the opt-out keywords is not tied to a customer yet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from pydantic import SecretStr

from adapters.bus.events import EventQueue
from adapters.channels.inbound import (
    ForgedWebhook,
    Suppression,
    VendorEvent,
    WebhookRejected,
)
from adapters.channels.ports import Vendor
from adapters.db.delivery import DeliveryRepository
from adapters.db.webhooks import SentMessage, WebhookRepository
from domain.bidding.ports import Clock
from domain.customer_events import DEFAULT_PRIORITY, CustomerEvent, EventSource
from domain.engagement import URGENT_PRIORITY, customer_event_name, is_urgent, send_status
from domain.journey_runs import looks_personal
from domain.journeys import Channel

log = logging.getLogger(__name__)

T = TypeVar("T")

CHANNEL_OF = {Vendor.SENDGRID: Channel.EMAIL, Vendor.TWILIO: Channel.SMS}
# A "blocked" bounce is the receiving server refusing for now: try the address again later.
TEMPORARY_SUPPRESSION = timedelta(days=1)
# Stripe object fields a journey may branch on; the rest (names, addresses, cards) stays out.
_STRIPE_PROPERTIES = ("id", "object", "amount", "amount_total", "amount_paid", "currency", "status")


class WebhookNotConfigured(WebhookRejected):
    """We hold no secret to verify this vendor's webhooks with: answer 503, the vendor retries
    (SendGrid and Stripe for days) until an operator sets it."""


@dataclass(frozen=True)
class Applied:
    received: int
    applied: int
    duplicates: int


@dataclass
class WebhookServices:
    """Built by ``workers.runtime``; the webhook routes read it from app state."""

    webhooks: WebhookRepository
    delivery: DeliveryRepository
    queue: EventQueue
    clock: Clock
    sendgrid_public_key: str | None = None
    twilio_auth_token: SecretStr | None = None
    stripe_secret: SecretStr | None = None
    public_base_url: str | None = None
    max_body_bytes: int = 1024 * 1024

    # --- verification ------------------------------------------------------------------------

    async def verified(
        self,
        vendor: Vendor,
        platform_secret: str | SecretStr | None,
        verify: Callable[[str | SecretStr], T],
        account_field: str | None = None,
    ) -> tuple[T, str | None]:
        """What ``verify`` reads from the request with the first secret that signed it: the
        platform's, or (``account_field`` naming the secret in a tenant's vendor settings) a
        tenant's own account's, that tenant's id coming back with it."""
        candidates: list[tuple[str | None, str | SecretStr]] = []
        if platform_secret:
            candidates.append((None, platform_secret))
        if account_field is not None:
            accounts = await self.webhooks.tenant_accounts(vendor.value)
            for owner, account in accounts.items():
                own_secret = account.get(account_field)
                if isinstance(own_secret, str) and own_secret:
                    candidates.append((owner, own_secret))
        if not candidates:
            raise WebhookNotConfigured(f"{vendor.value}: no key to verify its webhooks with")
        refusal: ForgedWebhook | None = None
        for signer, secret in candidates:
            try:
                return verify(secret), signer
            except ForgedWebhook as error:  # not this account's signature: try the next one
                refusal = refusal or error
        assert refusal is not None
        raise refusal

    # --- applying ----------------------------------------------------------------------------

    async def apply(self, events: Sequence[VendorEvent], account_tenant: str | None) -> Applied:
        applied = duplicates = 0
        for event in events:
            if await self.webhooks.applied(event.vendor.value, event.event_id):
                duplicates += 1
                continue
            await self._apply(event, account_tenant)
            await self.webhooks.mark_applied(event.vendor.value, event.event_id, self.clock.now())
            applied += 1
        return Applied(received=len(events), applied=applied, duplicates=duplicates)

    async def _apply(self, event: VendorEvent, account_tenant: str | None) -> None:
        if event.vendor is Vendor.STRIPE:
            await self._publish(self._stripe_event(event, account_tenant))
            return
        channel = CHANNEL_OF[event.vendor]
        sent = await self._send_of(event, account_tenant)
        if sent is not None:
            status = send_status(channel, event.kind)
            if status is not None:
                await self.webhooks.report(sent.key, status, event.occurred_at)
        if event.suppression is not None and event.address:
            await self._suppress(event, event.address, event.suppression, channel, sent,
                                 account_tenant)  # fmt: skip
        if sent is not None:
            await self._publish(self._engagement_event(event, channel, sent))

    async def _send_of(self, event: VendorEvent, account_tenant: str | None) -> SentMessage | None:
        sent: SentMessage | None = None
        key = event.metadata.get("send_key")
        if key:
            sent = await self.webhooks.send(key)
        if sent is None and event.vendor_message_id:
            sent = await self.webhooks.send_by_vendor_id(
                event.vendor.value, event.vendor_message_id
            )
        if sent is not None and account_tenant is not None and sent.tenant_id != account_tenant:
            log.warning("%s event %s: a tenant's account reported on another tenant's send",
                        event.vendor.value, event.event_id)  # fmt: skip
            return None
        return sent

    async def _suppress(
        self,
        event: VendorEvent,
        address: str,
        suppression: Suppression,
        channel: Channel,
        sent: SentMessage | None,
        account_tenant: str | None,
    ) -> None:
        if sent is not None:
            tenants = [sent.tenant_id]
        elif account_tenant is not None:
            tenants = [account_tenant]
        else:
            tenants = await self.webhooks.tenants_on_platform_account(event.vendor.value)
        cause = event.keyword.value.upper() if event.keyword is not None else event.kind
        reason = f"{event.vendor.value} {cause}"
        for tenant_id in tenants:
            if suppression is Suppression.LIFT:
                await self.delivery.lift(tenant_id, channel, address)
                continue
            expires_at = (
                event.occurred_at + TEMPORARY_SUPPRESSION
                if suppression is Suppression.TEMPORARY
                else None
            )
            await self.delivery.suppress(tenant_id, channel, address, reason, expires_at)

    def _engagement_event(
        self, event: VendorEvent, channel: Channel, sent: SentMessage
    ) -> CustomerEvent | None:
        name = customer_event_name(channel, event.kind)
        if name is None:
            return None
        return CustomerEvent(
            tenant_id=sent.tenant_id,
            event_id=f"{event.vendor.value}:{event.event_id}",
            customer_id=sent.customer_id,
            name=name,
            source=EventSource.CHANNEL_WEBHOOK,
            occurred_at=event.occurred_at,
            received_at=self.clock.now(),
            properties={
                "journey_id": sent.journey_id,
                "node_id": sent.node_id,
                "send_key": sent.key,
                "vendor": event.vendor.value,
            },
            priority=URGENT_PRIORITY if is_urgent(event.kind) else DEFAULT_PRIORITY,
        )

    def _stripe_event(self, event: VendorEvent, account_tenant: str | None) -> CustomerEvent | None:
        tenant_id = account_tenant or event.metadata.get("ce_tenant_id")
        customer_id = event.metadata.get("ce_customer_id")
        if not tenant_id or not customer_id or looks_personal(customer_id):
            log.info("stripe event %s (%s) names no customer of ours", event.event_id, event.kind)
            return None
        subject = _stripe_object(event.raw)
        properties: dict[str, Any] = {
            name: subject[name] for name in _STRIPE_PROPERTIES if name in subject
        }
        properties["metadata"] = {
            key: value for key, value in event.metadata.items() if not key.startswith("ce_")
        }
        return CustomerEvent(
            tenant_id=tenant_id,
            event_id=f"stripe:{event.event_id}",
            customer_id=customer_id,
            name=event.kind,
            source=EventSource.CHANNEL_WEBHOOK,
            occurred_at=event.occurred_at,
            received_at=self.clock.now(),
            properties=properties,
        )

    async def _publish(self, event: CustomerEvent | None) -> None:
        if event is None:
            return
        if not await self.webhooks.tenant_exists(event.tenant_id):
            log.warning("webhook event %s names unknown tenant %s", event.event_id, event.tenant_id)
            return
        await self.queue.publish([event])


def _stripe_object(raw: dict[str, Any]) -> dict[str, Any]:
    data = raw.get("data")
    found = data.get("object") if isinstance(data, dict) else None
    return found if isinstance(found, dict) else {}
