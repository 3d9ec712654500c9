"""Customer events as ingested: where they come from, how urgent they are, what they change.

An event names a customer by an internal id and may carry ``traits`` (contact details,
``timezone``, ``segments``) that update the customer's profile before any journey trigger is
evaluated, so a journey entered by this very event already sees them.

Priority is a weight from 0 to 100 (default 50). Weights fall into three bands; when a backlog
builds, the evaluator drains a higher band before it takes anything from a lower one.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from domain.journey_runs import CustomerEventRef
from domain.profiles import UserProfile

DEFAULT_PRIORITY = 50
HIGH_PRIORITY_FROM = 70
NORMAL_PRIORITY_FROM = 30

# Traits with a column of their own on the profile; everything else lands in ``traits``.
TIMEZONE_TRAIT = "timezone"
SEGMENTS_TRAIT = "segments"


class EventSource(StrEnum):
    MOBILE_APP = "mobile_app"
    POS = "pos"
    KIOSK = "kiosk"
    WEB = "web"
    CALL_CENTER = "call_center"
    PARTNER_API = "partner_api"
    IOT = "iot"
    # Engagement the vendors report (opens, deliveries, opt-outs), and payments from Stripe.
    CHANNEL_WEBHOOK = "channel_webhook"


class PriorityBand(StrEnum):
    """Highest first: the order the evaluator drains them in."""

    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


BANDS_BY_URGENCY: tuple[PriorityBand, ...] = (
    PriorityBand.HIGH,
    PriorityBand.NORMAL,
    PriorityBand.LOW,
)


def band_of(priority: int) -> PriorityBand:
    if priority >= HIGH_PRIORITY_FROM:
        return PriorityBand.HIGH
    if priority >= NORMAL_PRIORITY_FROM:
        return PriorityBand.NORMAL
    return PriorityBand.LOW


class CustomerEvent(BaseModel):
    """One accepted event, as it travels from ingest to the trigger evaluator."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str
    event_id: str
    customer_id: str
    name: str
    source: EventSource
    occurred_at: datetime
    received_at: datetime
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    priority: int = DEFAULT_PRIORITY

    @property
    def band(self) -> PriorityBand:
        return band_of(self.priority)

    @property
    def dedup_key(self) -> str:
        """Unique per tenant: two tenants may use the same event ids."""
        return f"{self.tenant_id}:{self.event_id}"

    def ref(self) -> CustomerEventRef:
        return CustomerEventRef(
            event_id=self.event_id, name=self.name, occurred_at=self.occurred_at
        )


def with_traits(profile: UserProfile, traits: dict[str, Any]) -> UserProfile:
    """``profile`` after an event's traits: ``timezone`` and ``segments`` replace their fields,
    other traits are merged in, and a trait set to null is removed."""
    update: dict[str, Any] = {}
    merged = dict(profile.traits)
    for key, value in traits.items():
        if key == TIMEZONE_TRAIT:
            if isinstance(value, str) and value:
                update["timezone"] = value
        elif key == SEGMENTS_TRAIT:
            if isinstance(value, list):
                update["segments"] = list(dict.fromkeys(str(item) for item in value))
        elif value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    update["traits"] = merged
    return profile.model_copy(update=update)


def entered_segments(before: UserProfile | None, after: UserProfile) -> list[str]:
    """Segments ``after`` is in that ``before`` was not (all of them for a new profile)."""
    already = set(before.segments) if before is not None else set()
    return [segment for segment in after.segments if segment not in already]


def condition_context(profile: UserProfile | None, properties: dict[str, Any]) -> dict[str, Any]:
    """What ``profile.*`` and ``event.*`` paths in a journey's conditions read."""
    facts: dict[str, Any] = dict(profile.traits) if profile is not None else {}
    if profile is not None:
        facts |= {
            "segments": list(profile.segments),
            "loyalty_tier": profile.loyalty_tier.value if profile.loyalty_tier else None,
            "timezone": profile.timezone,
        }
    return {"profile": facts, "event": properties}
