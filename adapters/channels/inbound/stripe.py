"""Stripe's webhooks: ``Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]``.

Each v1 is HMAC-SHA256 of ``"<t>." + body`` with an endpoint secret; during a secret's rotation
Stripe sends one v1 per live secret, and any one matching is enough. A ``t`` further than the
tolerance (5 minutes) from our clock is a replay, refused even with a good signature.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import SecretStr

from adapters.channels.inbound.events import (
    DEFAULT_TOLERANCE_S,
    ForgedWebhook,
    MalformedWebhook,
    VendorEvent,
    check_fresh,
    header,
    now_or,
    secret_values,
)
from adapters.channels.ports import Vendor

SIGNATURE_HEADER = "Stripe-Signature"

Secrets = str | SecretStr | Iterable[str | SecretStr]


def stripe_signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify_stripe(
    body: bytes,
    headers: Mapping[str, str],
    secrets: Secrets,
    *,
    now: datetime | None = None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> None:
    """Raise ``ForgedWebhook`` or ``StaleWebhook`` unless a secret signed this body lately."""
    value = header(headers, SIGNATURE_HEADER)
    if not value:
        raise ForgedWebhook("stripe: signature header missing")
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in value.split(","):
        name, _, given = item.strip().partition("=")
        if name == "t":
            timestamps.append(given)
        elif name == "v1":
            signatures.append(given)
    if len(timestamps) != 1 or not timestamps[0].isdigit() or not signatures:
        raise ForgedWebhook("stripe: signature header malformed")
    timestamp = int(timestamps[0])
    matched = any(
        hmac.compare_digest(stripe_signature(secret, timestamp, body), signature)
        for secret in secret_values(secrets)
        for signature in signatures
    )
    if not matched:
        raise ForgedWebhook("stripe: no signature matches")
    check_fresh(timestamp, now_or(now), tolerance_s, "stripe")


def parse_stripe(body: bytes, *, now: datetime | None = None) -> VendorEvent:
    """The event of a verified body. Raises ``MalformedWebhook``."""
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise MalformedWebhook("stripe: body is not JSON") from None
    if not isinstance(event, dict):
        raise MalformedWebhook("stripe: body is not an event")
    event_id, kind = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not isinstance(kind, str):
        raise MalformedWebhook("stripe: an event has an id and a type")
    created = event.get("created")
    data = event.get("data")
    found = data.get("object") if isinstance(data, dict) else None
    subject: dict[str, Any] = found if isinstance(found, dict) else {}
    metadata = subject.get("metadata")
    return VendorEvent(
        vendor=Vendor.STRIPE,
        event_id=event_id,
        kind=kind,
        occurred_at=(
            datetime.fromtimestamp(created, UTC) if isinstance(created, int) else now_or(now)
        ),
        address=_email(subject),
        vendor_message_id=subject.get("id") if isinstance(subject.get("id"), str) else None,
        # Stripe metadata is what our billing code set on the object, our ids among it.
        metadata=(
            {str(key): str(value) for key, value in metadata.items()}
            if isinstance(metadata, dict)
            else {}
        ),
        raw=event,
    )


def _email(subject: dict[str, Any]) -> str | None:
    for key in ("email", "customer_email", "receipt_email"):
        value = subject.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def stripe_event(
    body: bytes,
    headers: Mapping[str, str],
    secrets: Secrets,
    *,
    now: datetime | None = None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> VendorEvent:
    """Verify, then read: what the ``/v1/webhooks/stripe`` route calls."""
    verify_stripe(body, headers, secrets, now=now, tolerance_s=tolerance_s)
    return parse_stripe(body, now=now)
