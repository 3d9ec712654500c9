"""Twilio's webhooks: message status callbacks and inbound SMS (STOP, START, HELP).

Twilio signs each request with the account's auth token: ``X-Twilio-Signature`` is base64
HMAC-SHA1 over the full URL it requested (query included) followed by every POST parameter,
sorted by name, as name + value. Twilio has been inconsistent about writing the default port,
so the URL is tried with and without it, as its own validator does. Accounts set up for
webhook shared keys name the algorithm (HMAC-SHA256) in ``X-Twilio-Webhooks-Signature-Settings``.

There is no timestamp to refuse a replay with: a replay is the same MessageSid and status,
which the route's deduplication applies once.

The URL must be the one Twilio requested: behind a proxy, the route rebuilds it from
``CE_PUBLIC_BASE_URL`` and the request's path and query.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from pydantic import SecretStr

from adapters.channels.inbound.events import (
    ForgedWebhook,
    MalformedWebhook,
    SmsKeyword,
    Suppression,
    VendorEvent,
    header,
    now_or,
    secret_values,
)
from adapters.channels.ports import Vendor, echoed

SIGNATURE_HEADER = "X-Twilio-Signature"
SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"

_ALGORITHMS = {"HMAC_SHA1": hashlib.sha1, "HMAC_SHA256": hashlib.sha256}

# Twilio's default keywords; matched on the whole message, any case, as Twilio does.
_KEYWORDS = {
    **dict.fromkeys(("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"), SmsKeyword.STOP),
    **dict.fromkeys(("START", "YES", "UNSTOP"), SmsKeyword.START),
    **dict.fromkeys(("HELP", "INFO"), SmsKeyword.HELP),
}
# With Advanced Opt-Out, Twilio says which kind of keyword it matched (custom ones included).
_OPT_OUT_TYPES = {"STOP": SmsKeyword.STOP, "START": SmsKeyword.START, "HELP": SmsKeyword.HELP}
# A failed delivery because the recipient had replied STOP earlier.
_OPTED_OUT_ERROR = "21610"

Params = Sequence[tuple[str, str]]
Secrets = str | SecretStr | Iterable[str | SecretStr]


def form_params(body: bytes) -> list[tuple[str, str]]:
    """The POST parameters of a form body, blanks and repeats kept (they are signed too)."""
    try:
        return parse_qsl(body.decode(), keep_blank_values=True)
    except UnicodeDecodeError:
        raise MalformedWebhook("twilio: body is not a UTF-8 form") from None


def twilio_signature(url: str, params: Params, secret: str, algorithm: str = "HMAC_SHA1") -> str:
    grouped: dict[str, set[str]] = {}
    for name, value in params:
        grouped.setdefault(name, set()).add(value)
    text = url + "".join(
        name + value for name in sorted(grouped) for value in sorted(grouped[name])
    )
    digest = hmac.new(secret.encode(), text.encode(), _ALGORITHMS[algorithm]).digest()
    return base64.b64encode(digest).decode()


def verify_twilio(
    url: str, params: Params, headers: Mapping[str, str], auth_tokens: Secrets
) -> None:
    """Raise ``ForgedWebhook`` unless one of the tokens signed this URL and these params."""
    signature = header(headers, SIGNATURE_HEADER)
    if not signature:
        raise ForgedWebhook("twilio: signature header missing")
    algorithm = _algorithm(header(headers, SETTINGS_HEADER))
    for token in secret_values(auth_tokens):
        for candidate in _url_forms(url):
            expected = twilio_signature(candidate, params, token, algorithm)
            if hmac.compare_digest(expected.encode(), signature.strip().encode()):
                return
    raise ForgedWebhook("twilio: signature does not match")


def _algorithm(settings: str | None) -> str:
    for part in (settings or "").split(","):
        name, separator, value = part.partition("=")
        if separator and name.strip() == "algorithm" and value.strip():
            algorithm = value.strip().upper()
            if algorithm not in _ALGORITHMS:
                raise ForgedWebhook("twilio: unknown signature algorithm")
            return algorithm
    return "HMAC_SHA1"


def _url_forms(url: str) -> list[str]:
    """The URL as given, without its port and with it (the scheme's default when absent)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit(":", 1)[0] if parts.port else parts.netloc
    port = parts.port or (443 if parts.scheme == "https" else 80)
    forms = [
        url,
        urlunsplit(parts._replace(netloc=host)),
        urlunsplit(parts._replace(netloc=f"{host}:{port}")),
    ]
    return list(dict.fromkeys(forms))


def signed_url(request_url: str, public_base_url: str | None) -> str:
    """The URL Twilio requested and signed: behind a proxy, the request's path and query on the
    public scheme and host (``CE_PUBLIC_BASE_URL``, a path prefix in it kept)."""
    if not public_base_url:
        return request_url
    public, seen = urlsplit(public_base_url), urlsplit(request_url)
    path = public.path.rstrip("/") + seen.path
    return urlunsplit((public.scheme, public.netloc, path, seen.query, ""))


def keyword(text: str) -> SmsKeyword | None:
    """STOP, START or HELP when the whole message is one of Twilio's keywords."""
    return _KEYWORDS.get(text.strip().upper())


def parse_twilio(url: str, params: Params, *, now: datetime | None = None) -> VendorEvent:
    """The event of a verified request. Raises ``MalformedWebhook``."""
    fields = dict(params)
    sid = fields.get("MessageSid") or fields.get("SmsSid")
    if not sid:
        raise MalformedWebhook("twilio: no MessageSid")
    status = fields.get("MessageStatus") or fields.get("SmsStatus")
    # Our ids ride in the StatusCallback URL's query (see adapters.channels.twilio).
    metadata = echoed(dict(parse_qsl(urlsplit(url).query)))
    received_at = now_or(now)
    if status == "received" or (status is None and "Body" in fields):
        found = _OPT_OUT_TYPES.get(fields.get("OptOutType", "").upper()) or keyword(
            fields.get("Body", "")
        )
        return VendorEvent(
            vendor=Vendor.TWILIO,
            event_id=sid,
            kind="inbound",
            occurred_at=received_at,
            address=fields.get("From"),
            vendor_message_id=sid,
            metadata=metadata,
            keyword=found,
            suppression=_KEYWORD_SUPPRESSION.get(found) if found else None,
            raw=fields,
        )
    if not status:
        raise MalformedWebhook("twilio: neither a status callback nor an inbound message")
    opted_out = fields.get("ErrorCode") == _OPTED_OUT_ERROR
    return VendorEvent(
        vendor=Vendor.TWILIO,
        event_id=f"{sid}:{status}",
        kind=status,
        occurred_at=received_at,
        address=fields.get("To"),
        vendor_message_id=sid,
        metadata=metadata,
        suppression=Suppression.PERMANENT if opted_out else None,
        raw=fields,
    )


_KEYWORD_SUPPRESSION = {SmsKeyword.STOP: Suppression.PERMANENT, SmsKeyword.START: Suppression.LIFT}


def twilio_event(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    auth_tokens: Secrets,
    *,
    now: datetime | None = None,
) -> VendorEvent:
    """Verify, then read: what the ``/v1/webhooks/twilio`` route calls with the URL Twilio
    requested (``CE_PUBLIC_BASE_URL`` + path + query behind a proxy) and the raw form body."""
    params = form_params(body)
    verify_twilio(url, params, headers, auth_tokens)
    return parse_twilio(url, params, now=now)
