"""One customer's run through one journey: what its workflow starts with, hears, and reports.

Personal data stays out of Temporal: the workflow holds ids and decisions, never an email, a
phone number, a name or an event's properties. Activities read those from the database when
they need them (to evaluate a condition, render a template, send), so a history can be kept,
exported or shown in Temporal Web without exposing a customer.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from domain.journeys import JourneyDefinition
from domain.profiles import UserProfile

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# A phone number as people write one: E.164 with its "+", or digits broken up by spaces,
# dots, dashes or brackets. Plain runs of digits stay allowed: many shops number customers.
_PHONE = re.compile(r"^(\+\d[\d\s().-]{6,}|(?=.*[\s().-])[\d\s().-]{7,})$")


def workflow_id(tenant_id: str, journey_id: str, customer_id: str) -> str:
    return f"journey-{tenant_id}-{journey_id}-{customer_id}"


def looks_personal(customer_id: str) -> bool:
    """An email address or a phone number used as a customer id (they belong in traits:
    workflow ids and search attributes are stored unencrypted)."""
    return bool(_EMAIL.match(customer_id) or _PHONE.match(customer_id))


def customer_id_problem(value: str) -> str | None:
    """Why ``value`` cannot be a customer id (None if it can)."""
    if looks_personal(value):
        return (
            "customer_id looks like an email address or a phone number; send your internal "
            "customer id and put contact details in traits"
        )
    if not all(char.isascii() and (char.isalnum() or char in "_.:-") for char in value):
        return "customer_id may hold letters, digits and _ . : - only"
    return None


def _internal_customer_id(value: str) -> str:
    problem = customer_id_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


# A customer as the API names one: the tenant's internal id, never contact details (ids end
# up in workflow ids and search attributes, which are stored unencrypted).
CustomerId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        description="your internal id of the customer: letters, digits and _ . : - only; an "
        "email address or a phone number is refused (they belong in traits)",
    ),
    AfterValidator(_internal_customer_id),
]


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


class CustomerData(Protocol):
    """What a journey's activities read and write about the customer (adapters implement it)."""

    async def profile(self, tenant_id: str, customer_id: str) -> UserProfile | None: ...

    async def event_properties(self, tenant_id: str, event_id: str) -> dict[str, Any] | None: ...

    async def set_traits(
        self, tenant_id: str, customer_id: str, traits: dict[str, Any]
    ) -> None: ...

    async def close_entry(self, entry_id: str, reason: str, at: datetime) -> None: ...
