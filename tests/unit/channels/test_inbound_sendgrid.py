"""SendGrid's signed Event Webhook: what the official SDK accepts, we accept; nothing else."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sendgrid.helpers.eventwebhook import EventWebhook  # type: ignore[import-untyped]

from adapters.channels.inbound import (
    ForgedWebhook,
    MalformedWebhook,
    StaleWebhook,
    Suppression,
    load_public_key,
    sendgrid_events,
)
from adapters.channels.inbound.sendgrid import SIGNATURE_HEADER, TIMESTAMP_HEADER
from adapters.channels.ports import Vendor

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
STAMP = str(int(NOW.timestamp()))


def shown_key(private: ec.EllipticCurvePrivateKey) -> str:
    """The verification key as SendGrid's console shows it: base64 of the DER public key."""
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def sign(private: ec.EllipticCurvePrivateKey, body: bytes, stamp: str = STAMP) -> dict[str, str]:
    signature = private.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {SIGNATURE_HEADER: base64.b64encode(signature).decode(), TIMESTAMP_HEADER: stamp}


@pytest.fixture
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def events_body(*events: dict[str, object]) -> bytes:
    return orjson.dumps(list(events))


OPEN = {
    "email": "ada@example.com",
    "timestamp": 1795910000,
    "event": "open",
    "sg_event_id": "c2VuZGdyaWQtZXZlbnQtMQ",
    "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
    "ce_tenant_id": "t-1",
    "ce_send_key": "entry-9:email-1",
}


def test_signature_accepted_by_the_sdk_is_accepted(key: ec.EllipticCurvePrivateKey) -> None:
    body = events_body(OPEN)
    headers = sign(key, body)
    sdk = EventWebhook()
    assert sdk.verify_signature(
        body.decode(),
        headers[SIGNATURE_HEADER],
        headers[TIMESTAMP_HEADER],
        sdk.convert_public_key_to_ecdsa(shown_key(key)),
    )

    [event] = sendgrid_events(body, headers, shown_key(key), now=NOW)

    assert event.vendor is Vendor.SENDGRID
    assert event.event_id == "c2VuZGdyaWQtZXZlbnQtMQ"
    assert event.kind == "open"
    assert event.address == "ada@example.com"
    assert event.vendor_message_id == "14c5d75ce93"
    assert event.metadata == {"tenant_id": "t-1", "send_key": "entry-9:email-1"}
    assert event.occurred_at == datetime.fromtimestamp(1795910000, UTC)


def test_headers_found_whatever_their_case(key: ec.EllipticCurvePrivateKey) -> None:
    body = events_body(OPEN)
    headers = {name.lower(): value for name, value in sign(key, body).items()}

    assert len(sendgrid_events(body, headers, shown_key(key), now=NOW)) == 1


def test_pem_key_accepted_as_well(key: ec.EllipticCurvePrivateKey) -> None:
    body = events_body(OPEN)
    pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )

    assert len(sendgrid_events(body, sign(key, body), pem, now=NOW)) == 1


def test_signature_refused_when_another_key_signed(key: ec.EllipticCurvePrivateKey) -> None:
    body = events_body(OPEN)
    other = ec.generate_private_key(ec.SECP256R1())

    with pytest.raises(ForgedWebhook):
        sendgrid_events(body, sign(other, body), shown_key(key), now=NOW)


def test_signature_refused_when_body_tampered(key: ec.EllipticCurvePrivateKey) -> None:
    body = events_body(OPEN)
    headers = sign(key, body)
    tampered = events_body(OPEN | {"event": "unsubscribe"})

    with pytest.raises(ForgedWebhook):
        sendgrid_events(tampered, headers, shown_key(key), now=NOW)


def test_signature_refused_when_timestamp_swapped(key: ec.EllipticCurvePrivateKey) -> None:
    body = events_body(OPEN)
    headers = sign(key, body) | {TIMESTAMP_HEADER: str(int(NOW.timestamp()) + 1)}

    with pytest.raises(ForgedWebhook):
        sendgrid_events(body, headers, shown_key(key), now=NOW)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {SIGNATURE_HEADER: "c2ln"},
        {TIMESTAMP_HEADER: STAMP},
        {SIGNATURE_HEADER: "not base64 !", TIMESTAMP_HEADER: STAMP},
        {SIGNATURE_HEADER: "c2ln", TIMESTAMP_HEADER: "yesterday"},
        {SIGNATURE_HEADER: base64.b64encode(b"not DER").decode(), TIMESTAMP_HEADER: STAMP},
    ],
    ids=["none", "no-timestamp", "no-signature", "not-base64", "bad-timestamp", "not-der"],
)
def test_malformed_signature_headers_refused(
    key: ec.EllipticCurvePrivateKey, headers: dict[str, str]
) -> None:
    with pytest.raises(ForgedWebhook):
        sendgrid_events(events_body(OPEN), headers, shown_key(key), now=NOW)


@pytest.mark.parametrize("offset", [timedelta(minutes=-6), timedelta(minutes=6)])
def test_old_or_future_signature_refused_as_stale(
    key: ec.EllipticCurvePrivateKey, offset: timedelta
) -> None:
    body = events_body(OPEN)
    headers = sign(key, body, str(int((NOW + offset).timestamp())))

    with pytest.raises(StaleWebhook):
        sendgrid_events(body, headers, shown_key(key), now=NOW)


def test_signature_within_tolerance_accepted(key: ec.EllipticCurvePrivateKey) -> None:
    body = events_body(OPEN)
    headers = sign(key, body, str(int((NOW - timedelta(minutes=4)).timestamp())))

    assert len(sendgrid_events(body, headers, shown_key(key), now=NOW)) == 1


def test_any_of_several_keys_accepted(key: ec.EllipticCurvePrivateKey) -> None:
    body = events_body(OPEN)
    other = ec.generate_private_key(ec.SECP256R1())

    assert sendgrid_events(body, sign(key, body), [shown_key(other), shown_key(key)], now=NOW)


@pytest.mark.parametrize(
    "body", [b"not json", b'{"event": "open"}', b"[1, 2]", b'[{"email": "x"}]']
)
def test_authentic_but_unreadable_body_refused_as_malformed(
    key: ec.EllipticCurvePrivateKey, body: bytes
) -> None:
    with pytest.raises(MalformedWebhook):
        sendgrid_events(body, sign(key, body), shown_key(key), now=NOW)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"event": "bounce", "type": "bounce"}, Suppression.PERMANENT),
        ({"event": "bounce", "type": "blocked"}, Suppression.TEMPORARY),
        ({"event": "spamreport"}, Suppression.PERMANENT),
        ({"event": "unsubscribe"}, Suppression.PERMANENT),
        ({"event": "group_unsubscribe", "asm_group_id": 7}, Suppression.PERMANENT),
        ({"event": "group_resubscribe", "asm_group_id": 7}, Suppression.LIFT),
        ({"event": "dropped", "reason": "Bounced Address"}, Suppression.PERMANENT),
        ({"event": "dropped", "reason": "Invalid"}, Suppression.PERMANENT),
        ({"event": "dropped", "reason": "Invalid SMTPAPI header"}, None),
        ({"event": "delivered"}, None),
        ({"event": "click", "url": "https://example.com"}, None),
    ],
)
def test_address_events_say_what_they_mean_for_suppression(
    key: ec.EllipticCurvePrivateKey, fields: dict[str, object], expected: Suppression | None
) -> None:
    body = events_body(OPEN | fields)

    [event] = sendgrid_events(body, sign(key, body), shown_key(key), now=NOW)

    assert event.kind == fields["event"]
    assert event.suppression == expected


def test_event_without_sendgrid_id_identified_by_its_content(
    key: ec.EllipticCurvePrivateKey,
) -> None:
    without_id = {k: v for k, v in OPEN.items() if k != "sg_event_id"}
    body = events_body(without_id, without_id, without_id | {"event": "click"})

    first, again, click = sendgrid_events(body, sign(key, body), shown_key(key), now=NOW)

    assert first.event_id == again.event_id != click.event_id


def test_batch_read_in_order(key: ec.EllipticCurvePrivateKey) -> None:
    body = events_body(
        OPEN | {"event": "delivered", "sg_event_id": "a"}, OPEN | {"sg_event_id": "b"}
    )

    events = sendgrid_events(body, sign(key, body), shown_key(key), now=NOW)

    assert [(e.event_id, e.kind) for e in events] == [("a", "delivered"), ("b", "open")]


@pytest.mark.parametrize(
    "text",
    [
        "not base64 !",
        base64.b64encode(b"not a key").decode(),
        base64.b64encode(
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            .public_key()
            .public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        ).decode(),
        base64.b64encode(
            ec.generate_private_key(ec.SECP384R1())
            .public_key()
            .public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        ).decode(),
    ],
    ids=["not-base64", "not-der", "rsa", "p384"],
)
def test_key_that_is_not_a_sendgrid_key_refused(text: str) -> None:
    with pytest.raises(ValueError, match="SendGrid"):
        load_public_key(text)
