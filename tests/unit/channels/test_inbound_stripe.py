"""Stripe's signed webhooks, headers produced by the official ``stripe`` SDK."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import orjson
import pytest
import stripe

from adapters.channels.inbound import ForgedWebhook, MalformedWebhook, StaleWebhook, stripe_event
from adapters.channels.inbound.stripe import stripe_signature
from adapters.channels.ports import Vendor

SECRET = "whsec_test_secret_one"
NEXT_SECRET = "whsec_test_secret_two"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
T = int(NOW.timestamp())

EVENT = {
    "id": "evt_1Nxyz",
    "object": "event",
    "type": "invoice.paid",
    "created": T - 5,
    "livemode": False,
    "data": {
        "object": {
            "id": "in_1Nabc",
            "object": "invoice",
            "customer_email": "billing@example.com",
            "metadata": {"tenant_id": "t-1", "billing_cycle": "2026-11"},
        }
    },
}
BODY = orjson.dumps(EVENT)


def sdk_header(body: bytes, secret: str = SECRET, timestamp: int = T) -> str:
    return str(stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp))


def test_header_generated_by_the_sdk_accepted() -> None:
    event = stripe_event(BODY, {"Stripe-Signature": sdk_header(BODY)}, SECRET, now=NOW)

    assert event.vendor is Vendor.STRIPE
    assert event.event_id == "evt_1Nxyz"
    assert event.kind == "invoice.paid"
    assert event.occurred_at == datetime.fromtimestamp(T - 5, UTC)
    assert event.address == "billing@example.com"
    assert event.vendor_message_id == "in_1Nabc"
    assert event.metadata == {"tenant_id": "t-1", "billing_cycle": "2026-11"}


def test_what_we_accept_the_sdk_accepts() -> None:
    now = int(time.time())
    header = f"t={now},v1={stripe_signature(SECRET, now, BODY)}"

    constructed = stripe.Webhook.construct_event(BODY.decode(), header, SECRET)

    assert constructed["id"] == "evt_1Nxyz"


def test_any_v1_signature_matching_accepted_during_rotation() -> None:
    old = stripe_signature(SECRET, T, BODY)
    new = stripe_signature(NEXT_SECRET, T, BODY)
    header = f"t={T},v1={new},v1={old},v0=legacy"

    assert stripe_event(BODY, {"stripe-signature": header}, SECRET, now=NOW).kind == "invoice.paid"
    assert stripe_event(BODY, {"stripe-signature": header}, [NEXT_SECRET], now=NOW)


def test_signature_refused_when_another_secret_signed() -> None:
    with pytest.raises(ForgedWebhook):
        stripe_event(BODY, {"Stripe-Signature": sdk_header(BODY, "whsec_other")}, SECRET, now=NOW)


def test_signature_refused_when_body_tampered() -> None:
    tampered = orjson.dumps(EVENT | {"type": "invoice.payment_failed"})

    with pytest.raises(ForgedWebhook):
        stripe_event(tampered, {"Stripe-Signature": sdk_header(BODY)}, SECRET, now=NOW)


def test_signature_refused_when_timestamp_rewritten() -> None:
    header = sdk_header(BODY).replace(f"t={T}", f"t={T + 60}")

    with pytest.raises(ForgedWebhook):
        stripe_event(BODY, {"Stripe-Signature": header}, SECRET, now=NOW)


@pytest.mark.parametrize(
    "header",
    ["", "v1=abc", f"t={T}", f"t=soon,v1={'0' * 64}", f"t={T},t={T},v1={'0' * 64}", "garbage"],
    ids=["empty", "no-t", "no-v1", "bad-t", "two-t", "garbage"],
)
def test_malformed_header_refused(header: str) -> None:
    with pytest.raises(ForgedWebhook):
        stripe_event(BODY, {"Stripe-Signature": header}, SECRET, now=NOW)


def test_missing_header_refused() -> None:
    with pytest.raises(ForgedWebhook):
        stripe_event(BODY, {}, SECRET, now=NOW)


def test_replay_older_than_five_minutes_refused_as_stale() -> None:
    header = sdk_header(BODY, timestamp=T - 301)

    with pytest.raises(StaleWebhook):
        stripe_event(BODY, {"Stripe-Signature": header}, SECRET, now=NOW)


def test_delivery_four_minutes_old_accepted() -> None:
    header = sdk_header(BODY, timestamp=T - 240)

    assert stripe_event(BODY, {"Stripe-Signature": header}, SECRET, now=NOW)


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"id": "evt_1"}'])
def test_authentic_but_unreadable_body_refused_as_malformed(body: bytes) -> None:
    with pytest.raises(MalformedWebhook):
        stripe_event(body, {"Stripe-Signature": sdk_header(body)}, SECRET, now=NOW)
