"""One customer's run through one journey: what its workflow starts with, hears, and reports.

Personal data stays out of Temporal: the workflow holds ids and decisions, never an email, a
phone number, a name or an event's properties. Activities read those from the database when
they need them (to evaluate a condition, render a template, send), so a history can be kept,
exported or shown in Temporal Web without exposing a customer.
"""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from domain.journeys import JourneyDefinition

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[\d\s().-]{7,}$")


def workflow_id(tenant_id: str, journey_id: str, customer_id: str) -> str:
    return f"journey-{tenant_id}-{journey_id}-{customer_id}"


def looks_personal(customer_id: str) -> bool:
    """An email address or a phone number used as a customer id (they belong in traits:
    workflow ids and search attributes are stored unencrypted)."""
    return bool(_EMAIL.match(customer_id) or _PHONE.match(customer_id))


class CustomerEventRef(BaseModel):
    """An ingested event, by reference: its properties stay in the database."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    name: str
    occurred_at: datetime


class JourneyRunInput(BaseModel):
    """What a JourneyWorkflow starts with. Fields are only ever added."""

    model_config = ConfigDict(frozen=True)

    version: int = 1
    tenant_id: str
    journey_id: str
    journey_version: int
    customer_id: str
    entry_id: str  # the journey_entries row of this pass
    entry_number: int = Field(ge=1)
    definition: JourneyDefinition
    trigger_event: CustomerEventRef | None = None
    # Carried across continue-as-new; None on a fresh entry.
    resume: JourneyRunState | None = None


class Step(BaseModel):
    """A node the customer went through, and how it ended."""

    model_config = ConfigDict(frozen=True)

    node_id: str
    entered_at: datetime
    outcome: str = ""  # "event", "timeout", a branch or split path, "sent", "skipped: ...", ...


class JourneyRunState(BaseModel):
    """What the ``state`` query answers, and what continue-as-new carries."""

    node_id: str | None
    steps: list[Step] = Field(default_factory=list)
    # The event the current step's conditions and templates read: the trigger, or the event
    # a wait-for-event node matched.
    context_event_id: str | None = None
    pending_events: list[CustomerEventRef] = Field(default_factory=list)
    finished: bool = False
    exit_reason: str = ""


JourneyRunInput.model_rebuild()
