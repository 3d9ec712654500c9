"""What the vendors report about a message after it left: the send's new status, and the
customer event journeys can wait for.

A SendGrid ``open`` of a journey's email becomes the customer event ``email_open``; a Twilio
``delivered`` status becomes ``sms_delivered``. Journeys wait for these by name like any other
event (``{"type": "wait_for_event", "event": "email_open", ...}``), and their properties say
which journey and step sent the message (``journey_id``, ``node_id``), so a condition can
pick its own email's open out of others.

Transport chatter (SendGrid ``processed`` and ``deferred``, Twilio ``queued`` and ``sending``)
changes nothing and wakes no one: every event sent to a journey costs history.
"""

from __future__ import annotations

from domain.journeys import Channel

# A send's status only moves forward: a late ``delivered`` does not undo an ``opened``.
# Failures rank above delivery (a bounce may follow the receiving server's acceptance) and
# below engagement (an opened message was not lost); complaints and opt-outs rank last.
_RANK = {
    "sending": 0,
    "sent": 1,
    "delivered": 2,
    "bounced": 3,
    "dropped": 3,
    "undelivered": 3,
    "failed": 3,
    "opened": 4,
    "clicked": 5,
    "spam_reported": 6,
    "unsubscribed": 6,
}

_EMAIL_STATUS = {
    "delivered": "delivered",
    "open": "opened",
    "click": "clicked",
    "bounce": "bounced",
    "dropped": "dropped",
    "spamreport": "spam_reported",
    "unsubscribe": "unsubscribed",
    "group_unsubscribe": "unsubscribed",
}
_SMS_STATUS = {
    "delivered": "delivered",
    "read": "opened",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",
}
_PUBLISHED = {
    Channel.EMAIL: frozenset(_EMAIL_STATUS) | {"group_resubscribe"},
    Channel.SMS: frozenset(_SMS_STATUS),
}
# Opt-outs and failures change what a journey should do next: they go ahead of opens.
_URGENT = frozenset({"bounce", "dropped", "spamreport", "unsubscribe", "group_unsubscribe"})
URGENT_PRIORITY = 70


def send_status(channel: Channel, kind: str) -> str | None:
    """The status a vendor event puts a send in, or None when it says nothing new."""
    table = _EMAIL_STATUS if channel is Channel.EMAIL else _SMS_STATUS
    return table.get(kind)


def advances(current: str, reported: str) -> bool:
    """Whether a reported status replaces the current one (reports arrive out of order)."""
    return _RANK.get(reported, -1) > _RANK.get(current, -1)


def customer_event_name(channel: Channel, kind: str) -> str | None:
    """The customer event a vendor event becomes (``email_open``), or None for chatter."""
    if kind not in _PUBLISHED.get(channel, frozenset()):
        return None
    return f"{channel.value}_{kind}"


def is_urgent(kind: str) -> bool:
    return kind in _URGENT
