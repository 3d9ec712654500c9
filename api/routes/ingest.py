"""``POST /v1/channels/ingest``: customer events from apps, tills, kiosks, web, call centres,
partners and devices.

The same Bearer credentials as ``/api/v1`` (an API key or a token of a role that may write
campaigns: admin or manager). A batch is checked whole before anything is queued: a single
bad event refuses the batch (422 naming it by position, ``loc`` ``["body", "events", i,
...]``, and by id), so a sender never has to work out which half was taken.

**Accepted events are never lost.** 202 is answered only once the events are durable:

* with NATS (``CE_NATS_URL``), each event is published to JetStream stream ``events`` and the
  server's acknowledgement awaited (file storage); the trigger evaluator acknowledges a
  message only after processing it, so a worker crash means redelivery;
* without NATS (``up`` on one machine), the events are written to the ``customer_events``
  table before answering; the evaluator takes unprocessed rows, so a crash or restart means
  they are taken again.

If the queue cannot take the batch the answer is 503 and the sender retries the whole batch:
events that did land come back as ``duplicates``. A duplicate is an event id this tenant sent
before (within JetStream's duplicate window of ten minutes, or ever without NATS); it is
counted and not processed again.

Priority (``priority``, 0 to 100, default 50) decides what the evaluator takes first when a
backlog builds: events of 70 and above before 30 to 69, before the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
)

from adapters.bus.events import EventQueue, EventQueueUnavailable
from api.deps import TenantScopeDep, requires
from domain.bidding.ports import Clock
from domain.customer_events import (
    DEFAULT_PRIORITY,
    SEGMENTS_TRAIT,
    TIMEZONE_TRAIT,
    CustomerEvent,
    EventSource,
)
from domain.journey_runs import CustomerId, customer_id_problem
from domain.journeys import EventName
from domain.platform import Permission

router = APIRouter(prefix="/v1/channels", tags=["ingest"])

_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,200}$"


@dataclass
class IngestServices:
    """Built by ``workers.runtime``; the ingest route reads it from app state."""

    queue: EventQueue
    clock: Clock
    max_batch: int = 500
    max_properties_bytes: int = 16 * 1024


def get_ingest_services(request: Request) -> IngestServices:
    services: IngestServices = request.app.state.ingest
    return services


ServicesDep = Annotated[IngestServices, Depends(get_ingest_services)]


class IngestEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(pattern=_ID_PATTERN, description="unique per tenant; repeats are dropped")
    customer_id: CustomerId

    @field_validator("customer_id", mode="wrap")
    @classmethod
    def _named_by_event(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> str:
        """A batch refuses an event by its id as well as its position."""
        problem = customer_id_problem(value) if isinstance(value, str) else None
        if problem is not None:
            raise ValueError(f"event {info.data.get('event_id', '?')}: {problem}")
        checked: str = handler(value)
        return checked

    name: EventName
    source: EventSource
    timestamp: AwareDatetime = Field(description="when it happened, ISO 8601 with a UTC offset")
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(
        default_factory=dict,
        description="set on the customer's profile before triggers run: email, phone, "
        "first_name, timezone (IANA name), segments (a list, replaces the customer's), ...; "
        "null removes a trait",
    )
    priority: int = Field(default=DEFAULT_PRIORITY, ge=0, le=100)

    @field_validator("traits")
    @classmethod
    def _known_shapes(cls, value: dict[str, Any]) -> dict[str, Any]:
        timezone = value.get(TIMEZONE_TRAIT)
        if timezone is not None:
            try:
                ZoneInfo(str(timezone))
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {timezone!r} (an IANA name)") from None
        segments = value.get(SEGMENTS_TRAIT)
        if segments is not None and not (
            isinstance(segments, list) and all(isinstance(item, str) for item in segments)
        ):
            raise ValueError("segments is a list of segment names")
        return value


class IngestBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[IngestEvent] = Field(min_length=1)


class IngestAccepted(BaseModel):
    accepted: int
    duplicates: int


def _too_large(message: str, details: list[dict[str, Any]] | None = None) -> HTTPException:
    return HTTPException(
        status_code=413,
        detail={"code": "payload_too_large", "message": message, "details": details},
    )


@router.post(
    "/ingest",
    status_code=202,
    dependencies=[requires(Permission.CAMPAIGN_WRITE)],
    summary="Ingest a batch of customer events",
    responses={
        413: {"description": "more events than the batch limit"},
        422: {"description": "an event is invalid: `details` names it"},
        503: {"description": "the queue is unavailable: retry the batch"},
    },
)
async def ingest(
    batch: IngestBatch, services: ServicesDep, scope: TenantScopeDep
) -> IngestAccepted:
    if len(batch.events) > services.max_batch:
        raise _too_large(f"{len(batch.events)} events in one batch; at most {services.max_batch}")
    oversized = [
        {
            "loc": ["body", "events", position, "properties"],
            "msg": f"event {event.event_id}: properties take {size} bytes, at most "
            f"{services.max_properties_bytes}",
            "type": "too_large",
        }
        for position, event in enumerate(batch.events)
        if (size := len(orjson.dumps(event.properties))) > services.max_properties_bytes
    ]
    if oversized:
        raise HTTPException(
            status_code=422,
            detail={
                "code": "invalid_request",
                "message": "some events carry too many properties",
                "details": oversized,
            },
        )
    received_at = services.clock.now()
    events = [
        CustomerEvent(
            tenant_id=scope.tenant_id,
            event_id=event.event_id,
            customer_id=event.customer_id,
            name=event.name,
            source=event.source,
            occurred_at=event.timestamp,
            received_at=received_at,
            properties=event.properties,
            traits=event.traits,
            priority=event.priority,
        )
        for event in batch.events
    ]
    try:
        accepted = await services.queue.publish(events)
    except EventQueueUnavailable:
        raise HTTPException(
            status_code=503,
            detail={
                "code": "ingest_unavailable",
                "message": "the events could not be queued: retry the batch",
            },
            headers={"Retry-After": "2"},
        ) from None
    return IngestAccepted(accepted=accepted.accepted, duplicates=accepted.duplicates)
