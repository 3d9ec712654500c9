"""What a vendor's webhook says, once verified: ``VendorEvent``s, or a refusal.

    CampaignExpressError
    └── WebhookRejected        answer 4xx and apply nothing
        ├── ForgedWebhook      signature missing, malformed or wrong (401)
        ├── StaleWebhook       signed too long ago or too far ahead: a replay (401)
        └── MalformedWebhook   authentic, but not the payload the vendor documents (400)

The verifiers are pure functions over the raw body, the headers and (for Twilio) the URL: the
route hands them what it received, before any parsing, and maps the refusals to statuses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from adapters.channels.ports import Vendor
from domain.errors import CampaignExpressError

# How far a signed timestamp may be from our clock: Stripe's default, and SendGrid's in effect.
DEFAULT_TOLERANCE_S = 300.0


class WebhookRejected(CampaignExpressError):
    """The request is not an authentic, fresh, readable webhook: answer 4xx, apply nothing."""


class ForgedWebhook(WebhookRejected):
    pass


class StaleWebhook(WebhookRejected):
    pass


class MalformedWebhook(WebhookRejected):
    pass


class SmsKeyword(StrEnum):
    STOP = "stop"
    START = "start"
    HELP = "help"


class Suppression(StrEnum):
    """What the event means for the address (the delivery rules decide what to do with it)."""

    PERMANENT = "permanent"  # unsubscribed, spam report, hard bounce, SMS STOP
    TEMPORARY = "temporary"  # blocked for now (a SendGrid "blocked" bounce)
    LIFT = "lift"  # opted back in (SMS START, SendGrid group resubscribe)


class VendorEvent(BaseModel):
    """One event from a vendor. ``address`` and ``raw`` are personal data: keep them out of
    workflow ids, search attributes and unencrypted payloads."""

    model_config = ConfigDict(frozen=True)

    vendor: Vendor
    event_id: str  # the vendor's id for this event: deduplicate redeliveries on it
    kind: str  # delivered, open, bounce... (SendGrid); queued, sent... (Twilio); inbound; a type
    occurred_at: datetime
    address: str | None = None
    vendor_message_id: str | None = None  # what SendReceipt.vendor_message_id said at send time
    metadata: dict[str, str] = Field(default_factory=dict)  # our ids, echoed back
    keyword: SmsKeyword | None = None
    suppression: Suppression | None = None
    raw: dict[str, Any] = Field(default_factory=dict)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header whatever its case (a plain dict is not case-insensitive, Starlette's is)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def secret_values(secrets: str | SecretStr | Iterable[str | SecretStr]) -> list[str]:
    """One secret or several (rotation, or a tenant's account beside the platform's)."""
    items: Iterable[str | SecretStr] = (
        [secrets] if isinstance(secrets, str | SecretStr) else secrets
    )
    values = [item.get_secret_value() if isinstance(item, SecretStr) else item for item in items]
    return [value for value in values if value]


def now_or(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def check_fresh(timestamp: int, now: datetime, tolerance_s: float, vendor: str) -> None:
    age = int(now.timestamp()) - timestamp
    if abs(age) > tolerance_s:
        raise StaleWebhook(f"{vendor}: signed {age} s ago, outside the {tolerance_s:.0f} s allowed")
