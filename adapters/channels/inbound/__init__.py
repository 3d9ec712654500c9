"""Vendors' webhooks verified and read: pure functions over the raw request, no web framework.

    sendgrid_events(body, headers, public_key)      -> list[VendorEvent]
    twilio_event(url, body, headers, auth_tokens)    -> VendorEvent  (url: see signed_url)
    stripe_event(body, headers, secrets)             -> VendorEvent

Each raises ``ForgedWebhook``, ``StaleWebhook`` or ``MalformedWebhook`` (all ``WebhookRejected``)
for the route to answer 4xx.
"""

from adapters.channels.inbound.events import (
    DEFAULT_TOLERANCE_S,
    ForgedWebhook,
    MalformedWebhook,
    SmsKeyword,
    StaleWebhook,
    Suppression,
    VendorEvent,
    WebhookRejected,
)
from adapters.channels.inbound.sendgrid import load_public_key, sendgrid_events
from adapters.channels.inbound.stripe import stripe_event
from adapters.channels.inbound.twilio import keyword, signed_url, twilio_event

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "ForgedWebhook",
    "MalformedWebhook",
    "SmsKeyword",
    "StaleWebhook",
    "Suppression",
    "VendorEvent",
    "WebhookRejected",
    "keyword",
    "load_public_key",
    "sendgrid_events",
    "signed_url",
    "stripe_event",
    "twilio_event",
]
