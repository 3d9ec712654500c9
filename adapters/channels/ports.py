"""What a journey hands a channel, what it gets back, and how a send can fail.

    CampaignExpressError
    └── ChannelError                 a message did not go out (.vendor, .status, .code, .detail)
        ├── PermanentSendError       the vendor refused it: sending it again fails the same way
        │   ├── RecipientRejected    the address is dead or opted out at the vendor: suppress it
        │   └── ChannelMisconfigured our credentials, sender or settings are missing or refused
        └── TransientSendError       429, 5xx, timeouts, connection errors, retries spent: later
            ├── VendorUnavailable    the vendor's breaker is open: refused without a call
            └── SendOutcomeUnknown   the request may have reached the vendor, no answer came:
                                     ask it (``find_accepted``) before sending again

``str(error)`` names the vendor, the HTTP status and the vendor's error code, never the
vendor's free text (which may quote the address): that is in ``.detail``.

Exactly once, and where it ends: a send whose outcome was lost (a timeout after the request
left, a worker killed while the call was in flight) can only be settled by asking the vendor.
SendGrid (Email Activity API) and Twilio (the Messages list) can be asked, after their records
have caught up (``lookup_lag_s``); FCM, APNs and customers' webhook endpoints cannot, so on
those channels such a message may arrive twice (webhook receivers get the same
``Idempotency-Key`` header on every attempt and can drop the repeat).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from domain.errors import CampaignExpressError
from domain.journeys import Channel

# Our ids travel to the vendor under this prefix (SendGrid custom_args, Twilio StatusCallback
# query, push data) and come back in webhooks; the prefix keeps them apart from the vendor's own
# fields (a SendGrid event has its own "email" and "event").
ECHO_PREFIX = "ce_"
# The metadata name our idempotency key travels under: the webhooks find the send by it, and
# an unsure retry asks SendGrid for the message carrying it.
SEND_KEY = "send_key"


class Vendor(StrEnum):
    SENDGRID = "sendgrid"
    TWILIO = "twilio"
    FCM = "fcm"
    APNS = "apns"
    WEBHOOK = "webhook"
    STRIPE = "stripe"
    # In-app messages: no vendor, the customer's inbox in our own database.
    IN_APP = "in_app"


# Fixed: the ids of messages already sent, and so their retries', depend on it.
_NOTIFICATION_NAMESPACE = uuid.UUID("6f1c8e0e-3a4b-4f7d-9a51-6a2d0c7b8e11")


class OutboundMessage(BaseModel):
    """One rendered message to one address.

    ``to``: an email address, an E.164 phone number, a push token (``fcm:`` or ``apns:`` in
    front picks the service; a bare token goes to the tenant's default), or a webhook URL.
    ``metadata``: our ids (tenant_id, journey_id, node_id, workflow_id, send_key), echoed back
    by the vendors' webhooks where they can.
    """

    model_config = ConfigDict(frozen=True)

    channel: Channel
    to: str = Field(min_length=1, max_length=4096)
    subject: str = ""
    body: str
    html: str | None = None
    idempotency_key: str = Field(min_length=1, max_length=255)
    metadata: dict[str, str] = Field(default_factory=dict)

    def echo(self) -> dict[str, str]:
        return {f"{ECHO_PREFIX}{key}": value for key, value in sorted(self.metadata.items())}

    @property
    def notification_id(self) -> str:
        """A UUID of the idempotency key, the same on every attempt at this message. Push
        services take it as the message's id and collapse key: a message delivered twice (a
        retry after an answer was lost, or after a crash before the send was recorded)
        replaces the first while that one is still shown. (Once the user has dismissed or
        opened it, the second shows; an Android app drawing its own notifications ignores
        the tag.)"""
        return str(uuid.uuid5(_NOTIFICATION_NAMESPACE, self.idempotency_key))


def echoed(fields: dict[str, object]) -> dict[str, str]:
    """Our metadata out of a vendor's echo of it (the prefix taken off)."""
    return {
        key.removeprefix(ECHO_PREFIX): str(value)
        for key, value in fields.items()
        if key.startswith(ECHO_PREFIX) and value is not None
    }


class SendReceipt(BaseModel):
    model_config = ConfigDict(frozen=True)

    vendor: Vendor
    vendor_message_id: str | None
    accepted_at: datetime


class ChannelSender(Protocol):
    @property
    def lookup_lag_s(self) -> float | None:
        """How long after the vendor accepts a message its records may still not show it;
        None when the vendor keeps no records we can ask (``find_accepted`` always says None)."""
        ...

    async def send(self, message: OutboundMessage) -> SendReceipt:
        """Hand ``message`` to the vendor. Raises ``SendOutcomeUnknown`` instead of sending
        again in process when an attempt's outcome was lost, on vendors that can be asked."""
        ...

    async def find_accepted(self, message: OutboundMessage, since: datetime) -> SendReceipt | None:
        """The vendor's record of ``message``, accepted at or after ``since`` by an earlier
        attempt whose answer we never got; None when it has none (trust that only
        ``lookup_lag_s`` after the last attempt). Raises ``TransientSendError`` when the vendor
        cannot answer now, ``PermanentSendError`` (``ChannelMisconfigured``) when it refuses
        the question (an account without access to its records)."""
        ...


class NoAcceptanceRecords:
    """For vendors whose API cannot say whether it accepted a message (FCM, APNs, webhooks):
    a send whose outcome was lost is sent again, so it may arrive twice."""

    lookup_lag_s: float | None = None

    async def find_accepted(self, message: OutboundMessage, since: datetime) -> SendReceipt | None:
        return None


# --- errors ---------------------------------------------------------------------------------------


class ChannelError(CampaignExpressError):
    def __init__(
        self,
        vendor: str,
        reason: str,
        *,
        status: int | None = None,
        code: str | None = None,
        detail: str = "",
    ) -> None:
        parts = [reason]
        if status is not None:
            parts.append(f"HTTP {status}")
        if code:
            parts.append(f"code {code}")
        super().__init__(f"{vendor}: {', '.join(parts)}")
        self.vendor = vendor
        self.reason = reason
        self.status = status
        self.code = code
        self.detail = detail


class PermanentSendError(ChannelError):
    """The vendor refused this message; the same request would be refused again."""


class RecipientRejected(PermanentSendError):
    """The address is invalid, gone (an uninstalled app) or opted out at the vendor."""


class ChannelMisconfigured(PermanentSendError):
    """Credentials, sender or settings are missing or refused: an operator has to act."""


class TransientSendError(ChannelError):
    """Trying later may work; nothing was accepted, unless it is a ``SendOutcomeUnknown``.
    ``retry_after_s``: what the vendor asked."""

    def __init__(
        self,
        vendor: str,
        reason: str,
        *,
        status: int | None = None,
        code: str | None = None,
        detail: str = "",
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(vendor, reason, status=status, code=code, detail=detail)
        self.retry_after_s = retry_after_s


class VendorUnavailable(TransientSendError):
    """The vendor failed repeatedly; its breaker refuses calls for a while."""


class SendOutcomeUnknown(TransientSendError):
    """The request may have reached the vendor but no answer came back (a timeout once it was
    sent, a dropped connection, a 500, 502 or 504). Sending it again could send it twice: ask
    the vendor first (``ChannelSender.find_accepted``), once its records have caught up."""
