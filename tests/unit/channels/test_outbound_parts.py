"""The pieces senders build requests from: addresses, echoed ids, Retry-After, signatures."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import parse_qsl, urlsplit

import pytest

from adapters.channels.apns import apns_payload
from adapters.channels.fcm import fcm_message
from adapters.channels.http import is_retryable, retry_after_seconds
from adapters.channels.ports import OutboundMessage, TransientSendError, echoed
from adapters.channels.registry import push_target
from adapters.channels.sendgrid import activity_query, mail_body
from adapters.channels.twilio import e164, status_callback
from adapters.channels.webhook import envelope, sign_webhook, webhook_signature_valid
from domain.journeys import Channel

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def message(**changes: object) -> OutboundMessage:
    fields: dict[str, object] = {
        "channel": Channel.EMAIL,
        "to": "ada@example.com",
        "subject": "Your cart",
        "body": "Still thinking?",
        "idempotency_key": "entry-9:email-1",
        "metadata": {"tenant_id": "t-1", "send_key": "entry-9:email-1"},
    }
    return OutboundMessage.model_validate(fields | changes)


def test_metadata_echoed_under_our_prefix_and_read_back() -> None:
    sent = message().echo()

    assert sent == {"ce_send_key": "entry-9:email-1", "ce_tenant_id": "t-1"}
    assert echoed({**sent, "email": "ada@example.com", "event": "open"}) == message().metadata


def test_mail_body_as_sendgrid_documents_it() -> None:
    body = mail_body(message(html="<p>Still thinking?</p>"), "Shop <shop@example.com>")

    assert body == {
        "personalizations": [{"to": [{"email": "ada@example.com"}]}],
        "from": {"email": "shop@example.com", "name": "Shop"},
        "subject": "Your cart",
        "content": [
            {"type": "text/plain", "value": "Still thinking?"},
            {"type": "text/html", "value": "<p>Still thinking?</p>"},
        ],
        "custom_args": {"ce_send_key": "entry-9:email-1", "ce_tenant_id": "t-1"},
    }


def test_mail_body_without_metadata_still_carries_the_send_key() -> None:
    body = mail_body(message(metadata={}), "shop@example.com")

    assert body["custom_args"] == {"ce_send_key": "entry-9:email-1"}
    assert body["from"] == {"email": "shop@example.com"}


def test_activity_query_finds_the_message_by_its_send_key() -> None:
    assert activity_query("entry-9:email-1") == "unique_args['ce_send_key']=\"entry-9:email-1\""
    assert activity_query('entry-9:"email"') is None


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("+33612345678", "+33612345678"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("+1 (415) 555-0100", "+14155550100"),
        ("+44.20.7946.0958", "+442079460958"),
        ("0612345678", None),
        ("+0612345678", None),
        ("call me", None),
    ],
)
def test_phone_numbers_as_people_write_them(written: str, expected: str | None) -> None:
    assert e164(written) == expected


def test_status_callback_carries_our_ids_in_its_query() -> None:
    url = status_callback("https://ce.example.com/v1/webhooks/twilio", message())

    assert urlsplit(url).path == "/v1/webhooks/twilio"
    assert dict(parse_qsl(urlsplit(url).query)) == {
        "ce_send_key": "entry-9:email-1",
        "ce_tenant_id": "t-1",
    }
    assert status_callback("https://x.example/hook?a=1", message()).startswith(
        "https://x.example/hook?a=1&ce_"
    )


def test_push_bodies_as_fcm_and_apns_document_them() -> None:
    push = message(channel=Channel.PUSH, to="token")

    assert fcm_message(push, "token") == {
        "message": {
            "token": "token",
            "notification": {"title": "Your cart", "body": "Still thinking?"},
            "data": {"ce_send_key": "entry-9:email-1", "ce_tenant_id": "t-1"},
            "android": {"notification": {"tag": push.notification_id}},
            "apns": {"headers": {"apns-collapse-id": push.notification_id}},
        }
    }
    assert apns_payload(push) == {
        "aps": {"alert": {"title": "Your cart", "body": "Still thinking?"}},
        "ce": {"tenant_id": "t-1", "send_key": "entry-9:email-1"},
    }


def test_notification_id_is_the_same_for_every_attempt_at_one_message() -> None:
    def notification_id(key: str) -> str:
        return (
            message(channel=Channel.PUSH)
            .model_copy(update={"idempotency_key": key})
            .notification_id
        )

    assert notification_id("entry-9:push-1") == notification_id("entry-9:push-1")
    assert notification_id("entry-9:push-1") != notification_id("entry-9:push-2")
    # Fixed across releases: a message sent before an upgrade keeps its id on retry.
    assert notification_id("entry-9:push-1") == str(
        uuid.uuid5(uuid.UUID("6f1c8e0e-3a4b-4f7d-9a51-6a2d0c7b8e11"), "entry-9:push-1")
    )


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("fcm:abc:def", ("fcm", "abc:def")),
        ("apns:" + "ab" * 32, ("apns", "ab" * 32)),
        ("abc:def", ("apns", "abc:def")),
        ("ab" * 32, ("apns", "ab" * 32)),
    ],
)
def test_push_service_from_the_token_prefix_else_the_default(
    address: str, expected: tuple[str, str]
) -> None:
    assert push_target(address, "apns") == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 120 ", 120.0),
        (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0),
        (format_datetime(NOW - timedelta(seconds=30), usegmt=True), 0.0),
        ("Sat, 28 Nov 2026 12:00:45 GMT", 45.0),
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_in_seconds_or_as_an_http_date(
    value: str | None, expected: float | None
) -> None:
    assert retry_after_seconds(value, NOW) == expected


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_throttling_timeouts_and_server_errors_are_retried(status: int) -> None:
    assert is_retryable(status)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 413])
def test_other_client_errors_are_not_retried(status: int) -> None:
    assert not is_retryable(status)


def test_webhook_signature_binds_the_timestamp() -> None:
    body = envelope(message(channel=Channel.WEBHOOK, to="https://hooks.example/ce"))
    stamp = int(NOW.timestamp())
    signature = sign_webhook("s3cret", stamp, body)
    expected = hmac.new(b"s3cret", f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()

    assert signature == f"sha256={expected}"
    assert webhook_signature_valid(
        "s3cret", str(stamp), body, signature, now=NOW.timestamp(), tolerance_s=300
    )
    assert not webhook_signature_valid(
        "s3cret", str(stamp + 1), body, signature, now=NOW.timestamp(), tolerance_s=300
    )
    assert not webhook_signature_valid(
        "s3cret", str(stamp), body, signature, now=NOW.timestamp() + 301, tolerance_s=300
    )


def test_errors_name_status_and_code_but_not_the_vendors_text() -> None:
    error = TransientSendError(
        "twilio", "retries spent", status=429, code="20429", detail="+33612345678 throttled"
    )

    assert str(error) == "twilio: retries spent, HTTP 429, code 20429"
    assert error.detail == "+33612345678 throttled"
