"""One message to one customer outside any journey (``POST /v1/channels/activate``): what is
asked for, and how it went.

An activation goes through the same delivery rules as a journey's action: suppression, daily
caps and fatigue (unless transactional), quiet hours in the customer's time zone (the message
is scheduled for the next allowed time, unless transactional). Its id makes it idempotent:
asking again with the same ``activation_id`` answers with the first request's outcome and
sends nothing more.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.journey_runs import CustomerId
from domain.journeys import Channel, Template

ActivationId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,100}$")]


class ActivationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    activation_id: ActivationId | None = Field(
        default=None,
        description="your id for this message: a retry with the same id sends nothing more "
        "and answers the first outcome; without one, every request is a new message",
    )
    customer_id: CustomerId
    channel: Channel
    template: Template
    transactional: bool = Field(
        default=False, description="bypasses frequency caps, fatigue and quiet hours"
    )

    @model_validator(mode="after")
    def _webhooks_have_a_url(self) -> ActivationRequest:
        if self.channel is Channel.WEBHOOK and not self.template.url:
            raise ValueError("a webhook message needs template.url")
        return self


class ActivationInput(BaseModel):
    """What the Activation workflow is started with."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str
    activation_id: str
    customer_id: str
    channel: Channel
    template: Template
    transactional: bool


class ActivationOutcome(BaseModel):
    """``sent``; ``skipped`` (suppressed, capped, no address: ``detail`` says which);
    ``failed`` (the vendor refused it for good); ``scheduled``: put off by quiet hours or
    send-time optimisation until ``send_at``; ``pending``: not decided yet (a slow vendor)."""

    activation_id: str
    status: Literal["pending", "scheduled", "sent", "skipped", "failed"]
    detail: str = ""
    send_at: datetime | None = None
    vendor_message_id: str | None = None


def activation_workflow_id(tenant_id: str, activation_id: str) -> str:
    return f"activation-{tenant_id}-{activation_id}"
