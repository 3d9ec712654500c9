"""In-app messages: what a journey's ``in_app`` action or an activation leaves in the
customer's inbox, for the app to fetch (``GET /v1/channels/inbox/{customer_id}``).

Storing the message is its delivery: there is no vendor in between. Each send stores once
(its idempotency key is unique per tenant), a retried send finds the message already there.
The app marks a message read (the send becomes ``opened`` and the customer event
``in_app_open`` is queued, once) or dismisses it (it is no longer listed). A message past
its ``expires_at`` is no longer listed either.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# The customer event the first read of an in-app message becomes: journeys wait for it by name.
IN_APP_OPEN = "in_app_open"


class InboxMessage(BaseModel):
    model_config = ConfigDict(frozen=True)

    tenant_id: str
    id: str
    customer_id: str
    send_key: str = Field(description="the idempotency key of the send that stored it")
    title: str
    body: str
    data: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    expires_at: datetime | None = None
    read_at: datetime | None = None
    dismissed_at: datetime | None = None

    def listed(self, now: datetime) -> bool:
        """Whether the app still sees it: neither dismissed nor expired."""
        return self.dismissed_at is None and (self.expires_at is None or self.expires_at > now)
