"""SendGrid's Event Webhook: ECDSA-signed batches of email events.

SendGrid signs ``timestamp + body`` (the raw bytes, as received) with ECDSA P-256 / SHA-256 and
sends the base64 DER signature in ``X-Twilio-Email-Event-Webhook-Signature`` and the unix
timestamp in ``X-Twilio-Email-Event-Webhook-Timestamp``. The verification key is the one the
SendGrid console shows: base64 of the DER public key (PEM is accepted too).

The body is a JSON array of events; each carries the message's ``custom_args`` as top-level
fields, which is where our ids come back.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

from adapters.channels.inbound.events import (
    DEFAULT_TOLERANCE_S,
    ForgedWebhook,
    MalformedWebhook,
    Suppression,
    VendorEvent,
    check_fresh,
    header,
    now_or,
)
from adapters.channels.ports import Vendor, echoed

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"

PublicKeyText = str | ec.EllipticCurvePublicKey

# Drop reasons that are about the address (others are about the message: "Invalid SMTPAPI
# header", "Spam Content").
_ADDRESS_DROPS = ("bounced address", "unsubscribed address", "spam reporting address")


def load_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """The key as SendGrid shows it (base64 DER) or as PEM. Raises ``ValueError``."""
    stripped = text.strip()
    try:
        if stripped.startswith("-----BEGIN"):
            key = load_pem_public_key(stripped.encode())
        else:
            key = load_der_public_key(base64.b64decode(stripped, validate=True))
    except (ValueError, binascii.Error):
        raise ValueError("not a SendGrid verification key (base64 of a DER public key)") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("a SendGrid verification key is an EC P-256 public key")
    return key


def verify_sendgrid(
    body: bytes,
    headers: Mapping[str, str],
    public_keys: PublicKeyText | Iterable[PublicKeyText],
    *,
    now: datetime | None = None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> None:
    """Raise ``ForgedWebhook`` or ``StaleWebhook`` unless one of the keys signed this body
    within ``tolerance_s`` of ``now``."""
    signature_text = header(headers, SIGNATURE_HEADER)
    timestamp = header(headers, TIMESTAMP_HEADER)
    if not signature_text or not timestamp:
        raise ForgedWebhook("sendgrid: signature headers missing")
    if not timestamp.strip().isdigit():
        raise ForgedWebhook("sendgrid: timestamp is not unix seconds")
    try:
        signature = base64.b64decode(signature_text, validate=True)
    except binascii.Error:
        raise ForgedWebhook("sendgrid: signature is not base64") from None
    signed = timestamp.encode() + body
    keys = (
        [public_keys] if isinstance(public_keys, str | ec.EllipticCurvePublicKey) else public_keys
    )
    if not any(_valid(_key(key), signature, signed) for key in keys):
        raise ForgedWebhook("sendgrid: signature does not match")
    check_fresh(int(timestamp), now_or(now), tolerance_s, "sendgrid")


def _key(key: PublicKeyText) -> ec.EllipticCurvePublicKey:
    return key if isinstance(key, ec.EllipticCurvePublicKey) else load_public_key(key)


def _valid(key: ec.EllipticCurvePublicKey, signature: bytes, signed: bytes) -> bool:
    try:
        key.verify(signature, signed, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def parse_sendgrid(body: bytes, *, now: datetime | None = None) -> list[VendorEvent]:
    """The events of a verified body. Raises ``MalformedWebhook``."""
    try:
        events = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise MalformedWebhook("sendgrid: body is not JSON") from None
    if not isinstance(events, list) or not all(isinstance(item, dict) for item in events):
        raise MalformedWebhook("sendgrid: body is not an array of events")
    return [_event(item, now_or(now)) for item in events]


def sendgrid_events(
    body: bytes,
    headers: Mapping[str, str],
    public_keys: PublicKeyText | Iterable[PublicKeyText],
    *,
    now: datetime | None = None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> list[VendorEvent]:
    """Verify, then read: what the ``/v1/webhooks/sendgrid`` route calls."""
    verify_sendgrid(body, headers, public_keys, now=now, tolerance_s=tolerance_s)
    return parse_sendgrid(body, now=now)


def _event(item: dict[str, Any], received_at: datetime) -> VendorEvent:
    kind = item.get("event")
    if not isinstance(kind, str) or not kind:
        raise MalformedWebhook("sendgrid: an event without its type")
    event_id = item.get("sg_event_id")
    if not isinstance(event_id, str) or not event_id:
        # Without SendGrid's id, the content itself identifies a redelivery.
        event_id = (
            "sha256:" + hashlib.sha256(orjson.dumps(item, option=orjson.OPT_SORT_KEYS)).hexdigest()
        )
    message_id = item.get("sg_message_id")
    email = item.get("email")
    return VendorEvent(
        vendor=Vendor.SENDGRID,
        event_id=event_id,
        kind=kind,
        occurred_at=_moment(item.get("timestamp"), received_at),
        address=email if isinstance(email, str) else None,
        # "<X-Message-Id>.<filter...>": the part before the dot is what the send got back.
        vendor_message_id=message_id.split(".", 1)[0] if isinstance(message_id, str) else None,
        metadata=echoed(item),
        suppression=_suppression(kind, item),
        raw=item,
    )


def _moment(value: object, fallback: datetime) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    return fallback


def _suppression(kind: str, item: dict[str, Any]) -> Suppression | None:
    if kind == "bounce":
        # "blocked" is a receiving server refusing for now (reputation, content): not dead.
        return Suppression.TEMPORARY if item.get("type") == "blocked" else Suppression.PERMANENT
    if kind in ("spamreport", "unsubscribe", "group_unsubscribe"):
        return Suppression.PERMANENT
    if kind == "group_resubscribe":
        return Suppression.LIFT
    if kind == "dropped":
        reason = str(item.get("reason", "")).strip().lower()
        about_address = reason == "invalid" or reason.startswith(_ADDRESS_DROPS)
        return Suppression.PERMANENT if about_address else None
    return None
