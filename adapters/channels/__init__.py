"""Outbound messages through SendGrid, Twilio, FCM, APNs and signed webhooks, in-app messages
into the customers' inboxes (``inbox``), and the vendors' inbound webhooks verified and read
(``adapters.channels.inbound``).

Every sender is an httpx client behind a breaker per vendor account, retrying 429s (after their
Retry-After), 5xx and connection failures only; see ``ports`` for the error tree. SendGrid and
Twilio never repeat a request whose answer was lost: they say so (``SendOutcomeUnknown``) and
can be asked later whether they took it (``ChannelSender.find_accepted``).
"""

from adapters.channels.config import InvalidVendorOverrides, VendorConfigs
from adapters.channels.http import RetryPolicy
from adapters.channels.inbox import InboxSender, InboxStore
from adapters.channels.ports import (
    ChannelError,
    ChannelMisconfigured,
    ChannelSender,
    NoAcceptanceRecords,
    OutboundMessage,
    PermanentSendError,
    RecipientRejected,
    SendOutcomeUnknown,
    SendReceipt,
    TransientSendError,
    Vendor,
    VendorUnavailable,
)
from adapters.channels.registry import ChannelSenders

__all__ = [
    "ChannelError",
    "ChannelMisconfigured",
    "ChannelSender",
    "ChannelSenders",
    "InboxSender",
    "InboxStore",
    "InvalidVendorOverrides",
    "NoAcceptanceRecords",
    "OutboundMessage",
    "PermanentSendError",
    "RecipientRejected",
    "RetryPolicy",
    "SendOutcomeUnknown",
    "SendReceipt",
    "TransientSendError",
    "Vendor",
    "VendorConfigs",
    "VendorUnavailable",
]
