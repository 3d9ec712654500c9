"""SendGrid's v3 Mail Send and Email Activity APIs, and its Event Webhook signed as SendGrid
signs it.

``POST /v3/mail/send`` with ``Authorization: Bearer <api key>`` answers 202 and an
``X-Message-Id``, after the checks SendGrid makes: the key, at least one personalization with
a ``to`` address, a ``from`` address, a subject, content with text/plain before text/html, and
string ``custom_args``. Refusals come as SendGrid writes them:
``{"errors": [{"message": ..., "field": ..., "help": null}]}``.

``GET /v3/messages?query=...&limit=N`` (Email Activity, "Filter all messages") lists the
messages accepted so far, newest first, one per recipient: ``{"messages": [{"from_email",
"msg_id", "subject", "to_email", "status", "opens_count", "clicks_count",
"last_event_time"}]}``. The query is the documented language's equality clauses joined by
AND: ``to_email="..."``, ``from_email``, ``subject``, ``msg_id``, ``status`` and
``unique_args['name']="..."`` (the custom args); anything else is refused with 400 as SendGrid
does. ``activity_lag_s`` holds each message out of the feed that long after it was accepted,
as SendGrid's feed trails its processing; ``activity_access=False`` is an account without the
Email Activity add-on (or a key without its scope): 403, as SendGrid answers.

The stand-in holds an EC P-256 key pair like a SendGrid account with signed webhooks:
``public_key`` is the verification key as the console shows it (base64 DER), and
``signed_events`` builds an Event Webhook request for messages it accepted.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs

import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.vendors.base import RecordedRequest, Reply, StandIn

SEND_PATH = "/v3/mail/send"
ACTIVITY_PATH = "/v3/messages"
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# One equality clause of the Email Activity query language, brackets allowed around it.
_CLAUSE = re.compile(
    r"""^\(?\s*(?:unique_args\['(?P<arg>[^']+)'\]|(?P<field>[a-z_]+))\s*=\s*"(?P<value>[^"]*)"\s*\)?$"""
)
_FIELDS = frozenset({"msg_id", "from_email", "subject", "to_email", "status"})
# SendGrid's sg_message_id / msg_id: the X-Message-Id and a suffix naming the filter host.
_FILTER_SUFFIX = ".filterdrecv-5645d9c87f-6r2ch-1-5F2B0E8A-1.0"


@dataclass(frozen=True)
class _Activity:
    """One message in the Email Activity feed."""

    fields: dict[str, str]  # msg_id, from_email, subject, to_email, status
    unique_args: dict[str, str]
    accepted_at: float  # monotonic
    last_event_time: str

    def matches(self, clauses: list[tuple[str | None, str | None, str]]) -> bool:
        return all(
            (self.unique_args.get(arg) if arg is not None else self.fields.get(str(field))) == value
            for arg, field, value in clauses
        )

    def summary(self) -> dict[str, Any]:
        return self.fields | {
            "opens_count": 0,
            "clicks_count": 0,
            "last_event_time": self.last_event_time,
        }


def _errors(status: int, message: str, field: str | None = None) -> Reply:
    return Reply.json(status, {"errors": [{"message": message, "field": field, "help": None}]})


class SendGridStandIn(StandIn):
    vendor: ClassVar[str] = "sendgrid"

    def __init__(
        self,
        api_key: str = "SG.stand-in-key",
        activity_lag_s: float = 0.0,
        activity_access: bool = True,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.activity_lag_s = activity_lag_s
        self.activity_access = activity_access
        self._signing_key = ec.generate_private_key(ec.SECP256R1())
        self._activity: list[_Activity] = []

    # --- the API ----------------------------------------------------------------------------

    def is_send(self, request: RecordedRequest) -> bool:
        return request.method == "POST" and request.path == SEND_PATH

    def error_reply(self, status: int) -> Reply:
        messages = {429: "too many requests", 500: "internal server error"}
        return _errors(status, messages.get(status, f"HTTP {status}"))

    def answer(self, request: RecordedRequest) -> Reply:
        is_activity = request.method == "GET" and request.path == ACTIVITY_PATH
        if not self.is_send(request) and not is_activity:
            return _errors(404, "not found")
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _errors(401, "The provided authorization grant is invalid, expired, or revoked")
        if is_activity:
            if not self.activity_access:
                return _errors(403, "access forbidden")
            return self._filter_messages(request)
        try:
            mail = request.json()
        except orjson.JSONDecodeError:
            return _errors(400, "Bad Request")
        problem = _problem(mail)
        if problem is not None:
            return _errors(400, *problem)
        message_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        self._record_activity(mail, message_id)
        return Reply(202, b"", {"x-message-id": message_id})

    # --- Email Activity -----------------------------------------------------------------------

    def _record_activity(self, mail: dict[str, Any], message_id: str) -> None:
        sender = mail["from"]["email"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self._lock:
            for personalization in mail["personalizations"]:
                args = dict(mail.get("custom_args", {})) | personalization.get("custom_args", {})
                for recipient in personalization["to"]:
                    self._activity.append(
                        _Activity(
                            fields={
                                "msg_id": f"{message_id}{_FILTER_SUFFIX}",
                                "from_email": sender,
                                "subject": personalization.get("subject", mail.get("subject", "")),
                                "to_email": recipient["email"],
                                "status": "processed",
                            },
                            unique_args=args,
                            accepted_at=time.monotonic(),
                            last_event_time=now,
                        )
                    )

    def _filter_messages(self, request: RecordedRequest) -> Reply:
        params = {key: values[-1] for key, values in parse_qs(request.query).items()}
        try:
            limit = int(params.get("limit", "10"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            return _errors(400, "limit must be greater than 0 and at most 1000", "limit")
        query = params.get("query")
        if not query:
            return _errors(400, "query is required", "query")
        clauses: list[tuple[str | None, str | None, str]] = []
        for text in query.split(" AND "):
            clause = _CLAUSE.match(text.strip())
            if clause is None:
                return _errors(400, f"invalid syntax: cannot read {text.strip()!r}")
            if clause["field"] is not None and clause["field"] not in _FIELDS:
                return _errors(400, f"invalid syntax: '{clause['field']}' is not a known field")
            clauses.append((clause["arg"], clause["field"], clause["value"]))
        visible_before = time.monotonic() - self.activity_lag_s
        with self._lock:
            found = [
                item.summary()
                for item in reversed(self._activity)
                if item.accepted_at <= visible_before and item.matches(clauses)
            ]
        return Reply.json(200, {"messages": found[:limit]})

    def lookups(self) -> list[RecordedRequest]:
        """The Email Activity queries received, in order."""
        return [r for r in self.requests() if r.method == "GET" and r.path == ACTIVITY_PATH]

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._activity.clear()

    # --- reading what was sent --------------------------------------------------------------

    def emails(self) -> list[dict[str, Any]]:
        """The mail bodies SendGrid accepted, in order."""
        return [request.json() for request in self.accepted()]

    # --- the Event Webhook ------------------------------------------------------------------

    @property
    def public_key(self) -> str:
        der = self._signing_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """The two headers SendGrid puts on an Event Webhook POST of ``body``."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self._signing_key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        }

    def event(self, accepted: RecordedRequest, kind: str, **fields: Any) -> dict[str, Any]:
        """An Event Webhook event about a message this stand-in accepted."""
        mail = accepted.json()
        answered_id = accepted.reply_headers["x-message-id"]
        event: dict[str, Any] = {
            "email": mail["personalizations"][0]["to"][0]["email"],
            "timestamp": int(time.time()),
            "event": kind,
            "sg_event_id": base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="),
            "sg_message_id": f"{answered_id}{_FILTER_SUFFIX}",
            "smtp-id": f"<{answered_id}@ismtpd0001p1iad2.sendgrid.net>",
        }
        event |= mail.get("custom_args", {})
        return event | fields

    def extra_control(self, action: str, request: RecordedRequest) -> Reply | None:
        if action == "public-key" and request.method == "GET":
            return Reply.json(200, {"public_key": self.public_key})
        # {"accepted_index": 0, "kind": "open", "fields": {...}} -> a signed Event Webhook POST
        if action != "signed-event" or request.method != "POST":
            return None
        spec = request.json()
        accepted = self.accepted()[int(spec.get("accepted_index", 0))]
        body, headers = self.signed_events(
            [self.event(accepted, spec["kind"], **spec.get("fields", {}))]
        )
        return Reply.json(200, {"body": body.decode(), "headers": headers})

    def signed_events(
        self, events: list[dict[str, Any]], timestamp: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers of an Event Webhook POST carrying ``events``."""
        body = orjson.dumps(events)
        return body, {"Content-Type": "application/json"} | self.sign(body, timestamp)


def _problem(mail: Any) -> tuple[str, str | None] | None:
    """What SendGrid would refuse in this mail body, as (message, field)."""
    if not isinstance(mail, dict):
        return "Bad Request", None
    personalizations = mail.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        return "The personalizations field is required.", "personalizations"
    for index, personalization in enumerate(personalizations):
        recipients = personalization.get("to") if isinstance(personalization, dict) else None
        if not isinstance(recipients, list) or not recipients:
            return "The to field is required.", f"personalizations.{index}.to"
        for position, recipient in enumerate(recipients):
            email = recipient.get("email") if isinstance(recipient, dict) else None
            if not isinstance(email, str) or not _ADDRESS.match(email):
                return (
                    "Does not contain a valid address.",
                    f"personalizations.{index}.to.{position}.email",
                )
    sender = mail.get("from")
    if not isinstance(sender, dict) or not _ADDRESS.match(str(sender.get("email", ""))):
        return "The from email does not contain a valid address.", "from.email"
    if not mail.get("subject") and not mail.get("template_id"):
        return "The subject is required.", "subject"
    content = mail.get("content")
    if not mail.get("template_id"):
        if not isinstance(content, list) or not content:
            return "Unless a valid template_id is provided, the content is required.", "content"
        types = [item.get("type") for item in content if isinstance(item, dict)]
        if (
            "text/html" in types
            and "text/plain" in types
            and types.index("text/plain") > types.index("text/html")
        ):
            return "If present, text/plain must be first.", "content"
    custom_args = mail.get("custom_args", {})
    if not isinstance(custom_args, dict) or not all(
        isinstance(value, str) for value in custom_args.values()
    ):
        return "Custom args values must be strings.", "custom_args"
    return None
