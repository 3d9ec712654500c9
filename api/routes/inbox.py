"""``/v1/channels/inbox/{customer_id}``: the in-app messages a customer's app shows, and what
the customer did with them.

``GET`` lists the inbox newest first (neither dismissed nor expired), with the unread count
and the cursor of the next page (``before``). ``POST .../{message_id}/read`` records the
first read: the send becomes ``opened`` and the customer event ``in_app_open`` is queued for
the customer's journeys (properties: ``journey_id``, ``node_id``, ``send_key``,
``message_id``), so a journey waiting for it wakes; reading it again changes nothing.
``POST .../{message_id}/dismiss`` hides it. Another customer's message, or another tenant's,
is 404 like a missing one.

The app's backend calls these with the same API key it sends events with
(``campaign:write``): the inbox holds rendered, personal text.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel

from adapters.bus.events import EventQueue, EventQueueUnavailable
from adapters.channels.ports import Vendor
from adapters.db.inbox import Cursor, InboxRepository
from adapters.db.webhooks import SentMessage, WebhookRepository
from api.deps import TenantScopeDep, requires
from domain.bidding.ports import Clock
from domain.customer_events import CustomerEvent, EventSource
from domain.inbox import IN_APP_OPEN, InboxMessage
from domain.platform import Permission

router = APIRouter(prefix="/v1/channels/inbox", tags=["inbox"])

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass
class InboxServices:
    """Built by ``workers.runtime``; the inbox routes read it from app state."""

    inbox: InboxRepository
    webhooks: WebhookRepository
    queue: EventQueue
    clock: Clock

    async def read(self, message: InboxMessage) -> InboxMessage:
        """``message`` read. The first read reports the open before recording the read: a
        failure in between leaves it unread, and reading it again finishes the job (the send
        only moves forward, the event is queued under one id)."""
        if message.read_at is not None:
            return message
        at = self.clock.now()
        sent = await self.webhooks.send(message.send_key)
        if sent is not None and sent.tenant_id != message.tenant_id:
            sent = None
        if sent is not None:
            await self.webhooks.report(sent.key, "opened", at)
        await self.queue.publish([_open_event(message, sent, at)])
        await self.inbox.mark_read(message.tenant_id, message.customer_id, message.id, at)
        return await self._reloaded(message)

    async def dismiss(self, message: InboxMessage) -> InboxMessage:
        at = self.clock.now()
        await self.inbox.dismiss(message.tenant_id, message.customer_id, message.id, at)
        return await self._reloaded(message)

    async def _reloaded(self, message: InboxMessage) -> InboxMessage:
        found = await self.inbox.get(message.tenant_id, message.customer_id, message.id)
        return found or message


def _open_event(message: InboxMessage, sent: SentMessage | None, at: datetime) -> CustomerEvent:
    # The send's record names the journey step; a message stored without one (nothing
    # recorded the send) still has them in its data.
    origin: dict[str, Any] = (
        message.data if sent is None else {"journey_id": sent.journey_id, "node_id": sent.node_id}
    )
    return CustomerEvent(
        tenant_id=message.tenant_id,
        event_id=f"{IN_APP_OPEN}:{message.id}",
        customer_id=message.customer_id,
        name=IN_APP_OPEN,
        source=EventSource.CHANNEL_WEBHOOK,
        occurred_at=at,
        received_at=at,
        properties={
            "journey_id": origin.get("journey_id"),
            "node_id": origin.get("node_id"),
            "send_key": message.send_key,
            "message_id": message.id,
            "vendor": Vendor.IN_APP.value,
        },
    )


def get_inbox_services(request: Request) -> InboxServices:
    services: InboxServices = request.app.state.inbox
    return services


ServicesDep = Annotated[InboxServices, Depends(get_inbox_services)]
CustomerPath = Annotated[str, Path(min_length=1, max_length=200)]
MessagePath = Annotated[str, Path(min_length=1, max_length=36)]


class InboxItem(BaseModel):
    id: str
    title: str
    body: str
    data: dict[str, Any]
    created_at: datetime
    expires_at: datetime | None
    read_at: datetime | None
    dismissed_at: datetime | None

    @classmethod
    def of(cls, message: InboxMessage) -> InboxItem:
        return cls.model_validate(message.model_dump())


class InboxListing(BaseModel):
    messages: list[InboxItem]
    unread: int
    next: str | None


def encode_cursor(message: InboxMessage) -> str:
    raw = orjson.dumps([message.created_at.isoformat(), message.id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        created_at, message_id = orjson.loads(raw)
        moment = datetime.fromisoformat(created_at)
    except (ValueError, TypeError):  # binascii and orjson errors are ValueErrors
        raise _bad_cursor() from None
    if moment.tzinfo is None or not isinstance(message_id, str):
        raise _bad_cursor()
    return moment, message_id


def _bad_cursor() -> HTTPException:
    return HTTPException(
        status_code=422,
        detail={
            "code": "invalid_request",
            "message": "before is not a cursor this API gave",
            "details": [
                {"loc": ["query", "before"], "msg": "unknown cursor", "type": "value_error"}
            ],
        },
    )


def _queue_down() -> HTTPException:
    return HTTPException(
        status_code=503,
        detail={"code": "ingest_unavailable", "message": "the open could not be queued: retry"},
        headers={"Retry-After": "2"},
    )


@router.get(
    "/{customer_id}",
    dependencies=[requires(Permission.CAMPAIGN_WRITE)],
    summary="A customer's in-app inbox, newest first",
)
async def inbox(
    customer_id: CustomerPath,
    services: ServicesDep,
    scope: TenantScopeDep,
    unread_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    before: Annotated[str | None, Query(max_length=500)] = None,
) -> InboxListing:
    now = services.clock.now()
    messages = await services.inbox.list(
        scope.tenant_id,
        customer_id,
        now=now,
        unread_only=unread_only,
        limit=limit + 1,
        before=decode_cursor(before) if before is not None else None,
    )
    page = messages[:limit]
    return InboxListing(
        messages=[InboxItem.of(message) for message in page],
        unread=await services.inbox.unread(scope.tenant_id, customer_id, now),
        next=encode_cursor(page[-1]) if len(messages) > limit else None,
    )


@router.post(
    "/{customer_id}/{message_id}/read",
    dependencies=[requires(Permission.CAMPAIGN_WRITE)],
    summary="Mark an in-app message read",
    responses={
        404: {"description": "no such message in this customer's inbox"},
        503: {"description": "the open could not be queued: retry"},
    },
)
async def read(
    customer_id: CustomerPath, message_id: MessagePath, services: ServicesDep, scope: TenantScopeDep
) -> InboxItem:
    message = scope.found(
        await services.inbox.get(scope.tenant_id, customer_id, message_id), "message", message_id
    )
    try:
        return InboxItem.of(await services.read(message))
    except EventQueueUnavailable:
        raise _queue_down() from None


@router.post(
    "/{customer_id}/{message_id}/dismiss",
    dependencies=[requires(Permission.CAMPAIGN_WRITE)],
    summary="Dismiss an in-app message: it is no longer listed",
    responses={404: {"description": "no such message in this customer's inbox"}},
)
async def dismiss(
    customer_id: CustomerPath, message_id: MessagePath, services: ServicesDep, scope: TenantScopeDep
) -> InboxItem:
    message = scope.found(
        await services.inbox.get(scope.tenant_id, customer_id, message_id), "message", message_id
    )
    return InboxItem.of(await services.dismiss(message))
