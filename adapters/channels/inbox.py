"""In-app messages: "sending" one stores it in the customer's inbox, for the app to fetch.

The store is the delivery, so exactly once holds here where no vendor can promise it: the
message is stored under its idempotency key (once per tenant), a repeated send finds it there
and answers the same receipt, and ``find_accepted`` reads the store itself, up to date as soon
as a store committed. A store that fails raises its own error: the send is left 'sending', and
the retry asks the inbox first.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from adapters.channels.ports import (
    SEND_KEY,
    ChannelMisconfigured,
    OutboundMessage,
    SendReceipt,
    Vendor,
)
from domain.inbox import InboxMessage

# Our ids the app has no use for; the rest of the metadata (journey_id, node_id) travels
# with the message as its data.
_INTERNAL = frozenset({"tenant_id", "workflow_id", SEND_KEY})


class InboxStore(Protocol):
    """Where in-app messages are kept (``adapters.db.inbox.InboxRepository``)."""

    async def store(self, message: InboxMessage) -> str:
        """Store ``message`` unless its tenant has one under its send key; the stored id."""
        ...

    async def by_key(self, tenant_id: str, send_key: str) -> InboxMessage | None: ...


def _now() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    return str(uuid.uuid4())


class InboxSender:
    """The ``in_app`` channel: ``message.to`` is the customer id, ``metadata["tenant_id"]``
    the tenant whose inbox it goes to."""

    lookup_lag_s: float | None = 0.0

    def __init__(
        self,
        store: InboxStore,
        *,
        clock: Callable[[], datetime] = _now,
        new_id: Callable[[], str] = _new_id,
    ) -> None:
        self._store = store
        self._clock = clock
        self._new_id = new_id

    async def send(self, message: OutboundMessage) -> SendReceipt:
        tenant_id = _tenant_of(message)
        now = self._clock()
        stored_id = await self._store.store(
            InboxMessage(
                tenant_id=tenant_id,
                id=self._new_id(),
                customer_id=message.to,
                send_key=message.idempotency_key,
                title=message.subject,
                body=message.body,
                data={
                    key: value
                    for key, value in message.metadata.items()
                    if key not in _INTERNAL and value
                },
                created_at=now,
            )
        )
        return SendReceipt(vendor=Vendor.IN_APP, vendor_message_id=stored_id, accepted_at=now)

    async def find_accepted(self, message: OutboundMessage, since: datetime) -> SendReceipt | None:
        # The key is unique to this message: whatever is stored under it is this message,
        # whenever it was stored.
        found = await self._store.by_key(_tenant_of(message), message.idempotency_key)
        if found is None:
            return None
        return SendReceipt(
            vendor=Vendor.IN_APP, vendor_message_id=found.id, accepted_at=found.created_at
        )

    async def aclose(self) -> None:
        return None


def _tenant_of(message: OutboundMessage) -> str:
    tenant_id = message.metadata.get("tenant_id")
    if not tenant_id:
        raise ChannelMisconfigured(Vendor.IN_APP.value, "in-app message without a tenant_id")
    return tenant_id
