"""What we know about a customer, as the bid path and journeys use it."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class LoyaltyTier(StrEnum):
    GREEN = "green"
    GOLD = "gold"
    RESERVE = "reserve"


class Consent(BaseModel):
    """What the customer agreed to. Missing consent means no."""

    model_config = ConfigDict(frozen=True)

    personalized_ads: bool = False
    email: bool = False
    sms: bool = False
    push: bool = False


class UserProfile(BaseModel):
    """One customer of one tenant. ``user_id`` is the id exchanges send as ``user.buyeruid``."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str
    user_id: str
    interests: dict[str, float] = Field(
        default_factory=dict, description="interest -> affinity in [0, 1]"
    )
    segments: list[str] = Field(default_factory=list)
    loyalty_tier: LoyaltyTier | None = None
    consent: Consent = Field(default_factory=Consent)
    timezone: str = "UTC"
    traits: dict[str, Any] = Field(
        default_factory=dict,
        description="contact details and attributes from ingested events: email, phone, ...",
    )
