"""Twilio's Messages API, and its signed status callbacks and inbound messages.

``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` with HTTP basic auth (sid, token) and
a form (To, From or MessagingServiceSid, Body, StatusCallback) answers 201 and the message
resource, after Twilio's checks; refusals are Twilio's JSON errors with their codes (20003
authenticate, 21211 invalid To, 21602 no body, 21603 no sender, 21604 no To, 21610 the
recipient replied STOP).

``status_callback`` and ``inbound_message`` build the requests Twilio would post to us, signed
by the official ``twilio`` SDK's RequestValidator with the account's auth token.

``GET /2010-04-01/Accounts/{AccountSid}/Messages.json`` reads the messages accepted so far,
newest first, filtered by ``To``, ``From`` and ``DateSent`` (``DateSent<`` / ``DateSent>`` for
"on or before" / "on or after", a ``YYYY-MM-DD`` date in GMT), in pages of ``PageSize``
(default 50, at most 1000) numbered by ``Page``, with Twilio's paging envelope
(``next_page_uri`` relative to the API's host). The messages stay as the POST created them:
queued, no ``date_sent`` yet, so a ``DateSent`` filter leaves them out, as Twilio's does.
"""

from __future__ import annotations

import base64
import operator
import re
import secrets
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode

from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from tests.support.vendors.base import RecordedRequest, Reply, StandIn

_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC[0-9a-f]{32})/Messages\.json$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def _error(status: int, code: int, message: str) -> Reply:
    return Reply.json(
        status,
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
    )


class TwilioStandIn(StandIn):
    vendor: ClassVar[str] = "twilio"

    def __init__(
        self,
        account_sid: str = "AC" + "0" * 31 + "1",
        auth_token: str = "stand-in-auth-token",
        opted_out: set[str] | None = None,
    ) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.opted_out = set(opted_out or ())  # numbers that replied STOP

    def is_send(self, request: RecordedRequest) -> bool:
        return request.method == "POST" and _PATH.match(request.path) is not None

    def error_reply(self, status: int) -> Reply:
        if status == 429:
            return _error(429, 20429, "Too Many Requests")
        if status >= 500:
            return _error(status, 20500, "Internal Server Error")
        return _error(status, 21604 if status == 400 else 20404, f"HTTP {status}")

    def answer(self, request: RecordedRequest) -> Reply:
        match = _PATH.match(request.path)
        if request.method not in ("POST", "GET") or match is None:
            return _error(404, 20404, "The requested resource was not found")
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if (
            request.headers.get("authorization") != f"Basic {expected}"
            or match["sid"] != self.account_sid
        ):
            return _error(401, 20003, "Authenticate")
        if request.method == "GET":
            return self._list(request)
        form = request.form()
        to, body = form.get("To", ""), form.get("Body", "")
        sender = form.get("From") or form.get("MessagingServiceSid")
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not _E164.match(to):
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not sender:
            return _error(400, 21603, "A 'From' phone number is required.")
        if not body:
            return _error(400, 21602, "Message body is required.")
        if to in self.opted_out:
            return _error(400, 21610, "Attempt to send to unsubscribed recipient")
        now = format_datetime(datetime.now(UTC), usegmt=True)
        sid = "SM" + secrets.token_hex(16)
        return Reply.json(
            201,
            {
                "account_sid": self.account_sid,
                "api_version": "2010-04-01",
                "body": body,
                "date_created": now,
                "date_sent": None,
                "date_updated": now,
                "direction": "outbound-api",
                "error_code": None,
                "error_message": None,
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "num_media": "0",
                "num_segments": "1",
                "price": None,
                "price_unit": "USD",
                "sid": sid,
                "status": "accepted" if form.get("MessagingServiceSid") else "queued",
                "to": to,
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            },
        )

    # --- the Messages list ----------------------------------------------------------------------

    def _list(self, request: RecordedRequest) -> Reply:
        params = dict(parse_qsl(request.query, keep_blank_values=True))
        try:
            size = int(params.get("PageSize", "50"))
            page = int(params.get("Page", "0"))
        except ValueError:
            return _error(400, 20001, "Invalid paging parameters")
        if not 1 <= size <= 1000 or page < 0:
            return _error(400, 20001, "Invalid paging parameters")
        try:
            wanted = [
                resource for resource in reversed(self.messages()) if _listed(resource, params)
            ]
        except ValueError:
            return _error(400, 20001, "Invalid DateSent")
        chunk = wanted[page * size : (page + 1) * size]
        base = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        filters = {key: value for key, value in params.items() if key not in ("Page", "PageToken")}

        def uri(number: int) -> str:
            return f"{base}?{urlencode(filters | {'PageSize': str(size), 'Page': str(number)})}"

        more = (page + 1) * size < len(wanted)
        return Reply.json(
            200,
            {
                "end": page * size + max(len(chunk) - 1, 0),
                "first_page_uri": uri(0),
                "messages": chunk,
                "next_page_uri": uri(page + 1) if more else None,
                "page": page,
                "page_size": size,
                "previous_page_uri": uri(page - 1) if page > 0 else None,
                "start": page * size,
                "uri": uri(page),
            },
        )

    def messages(self) -> list[dict[str, Any]]:
        """The Message resources created so far, oldest first."""
        return [request.reply_json() for request in self.accepted()]

    def lookups(self) -> list[RecordedRequest]:
        """The Messages list reads received, in order."""
        return [r for r in self.requests() if r.method == "GET" and _PATH.match(r.path)]

    # --- what Twilio posts back ---------------------------------------------------------------

    def extra_control(self, action: str, request: RecordedRequest) -> Reply | None:
        # {"accepted_index": 0, "status": "delivered"} -> a signed status callback
        if action != "status-callback" or request.method != "POST":
            return None
        spec = request.json()
        accepted = self.accepted()[int(spec.get("accepted_index", 0))]
        url, body, headers = self.status_callback(accepted, spec["status"], spec.get("error_code"))
        return Reply.json(200, {"url": url, "body": body.decode(), "headers": headers})

    def sign(self, url: str, params: dict[str, str]) -> dict[str, str]:
        signature = RequestValidator(self.auth_token).compute_signature(url, params)
        return {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        }

    def status_callback(
        self, accepted: RecordedRequest, status: str, error_code: str | None = None
    ) -> tuple[str, bytes, dict[str, str]]:
        """URL, body and headers of the callback Twilio posts when ``accepted`` reaches
        ``status`` (sent, delivered, undelivered, failed...)."""
        if accepted.status != 201:
            raise ValueError("not a message this stand-in accepted")
        form = accepted.form()
        resource: dict[str, Any] = accepted.reply_json()
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "From": form.get("From", ""),
            "MessageSid": resource["sid"],
            "MessageStatus": status,
            "SmsSid": resource["sid"],
            "SmsStatus": status,
            "To": form["To"],
        }
        if form.get("MessagingServiceSid"):
            params["MessagingServiceSid"] = form["MessagingServiceSid"]
        if error_code is not None:
            params["ErrorCode"] = error_code
        url = form["StatusCallback"]
        return url, urlencode(params).encode(), self.sign(url, params)

    def inbound_message(
        self, url: str, from_: str, body: str, to: str = "+15005550006"
    ) -> tuple[str, bytes, dict[str, str]]:
        """URL, body and headers of the webhook Twilio posts when ``from_`` texts ``to``."""
        sid = "SM" + secrets.token_hex(16)
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "Body": body,
            "From": from_,
            "MessageSid": sid,
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "To": to,
        }
        return url, urlencode(params).encode(), self.sign(url, params)


def _listed(resource: dict[str, Any], params: dict[str, str]) -> bool:
    """Whether a Message resource passes the list's filters (ValueError: an unreadable date)."""
    if "To" in params and resource["to"] != params["To"]:
        return False
    if "From" in params and resource["from"] != params["From"]:
        return False
    for name, keep in (
        ("DateSent", operator.eq),
        ("DateSent<", operator.le),
        ("DateSent>", operator.ge),
    ):
        if name not in params:
            continue
        day = datetime.strptime(params[name][:10], "%Y-%m-%d").date()
        sent = resource.get("date_sent")
        if sent is None or not keep(parsedate_to_datetime(sent).astimezone(UTC).date(), day):
            return False
    return True
