"""Twilio's signed webhooks: status callbacks and inbound SMS, signed by the official SDK."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from adapters.channels.inbound import (
    ForgedWebhook,
    MalformedWebhook,
    SmsKeyword,
    Suppression,
    keyword,
    signed_url,
    twilio_event,
)
from adapters.channels.inbound.twilio import twilio_signature
from adapters.channels.ports import Vendor

TOKEN = "12345678901234567890123456789012"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CALLBACK = "https://ce.example.com/v1/webhooks/twilio?ce_send_key=entry-9%3Asms-1&ce_tenant_id=t-1"
INBOUND_URL = "https://ce.example.com/v1/webhooks/twilio"

STATUS = {
    "AccountSid": "AC" + "0" * 32,
    "ApiVersion": "2010-04-01",
    "From": "+15005550006",
    "MessageSid": "SM" + "a" * 32,
    "MessageStatus": "delivered",
    "SmsSid": "SM" + "a" * 32,
    "SmsStatus": "delivered",
    "To": "+33612345678",
}


def inbound(body: str, **extra: str) -> dict[str, str]:
    return {
        "AccountSid": "AC" + "0" * 32,
        "Body": body,
        "From": "+33612345678",
        "MessageSid": "SM" + "b" * 32,
        "NumMedia": "0",
        "SmsStatus": "received",
        "To": "+15005550006",
    } | extra


def signed(url: str, params: dict[str, str], token: str = TOKEN) -> tuple[bytes, dict[str, str]]:
    signature = RequestValidator(token).compute_signature(url, params)
    return urlencode(params).encode(), {"X-Twilio-Signature": signature}


def test_status_callback_signed_by_the_sdk_accepted() -> None:
    body, headers = signed(CALLBACK, STATUS)

    event = twilio_event(CALLBACK, body, headers, TOKEN, now=NOW)

    assert event.vendor is Vendor.TWILIO
    assert event.event_id == f"{STATUS['MessageSid']}:delivered"
    assert event.kind == "delivered"
    assert event.address == "+33612345678"
    assert event.vendor_message_id == STATUS["MessageSid"]
    assert event.metadata == {"send_key": "entry-9:sms-1", "tenant_id": "t-1"}
    assert event.occurred_at == NOW
    assert event.keyword is None


def test_each_status_of_a_message_is_its_own_event() -> None:
    events = []
    for status in ("queued", "sent", "delivered"):
        params = STATUS | {"MessageStatus": status, "SmsStatus": status}
        body, headers = signed(CALLBACK, params)
        events.append(twilio_event(CALLBACK, body, headers, TOKEN, now=NOW))

    assert [e.kind for e in events] == ["queued", "sent", "delivered"]
    assert len({e.event_id for e in events}) == 3


def test_our_signature_matches_the_sdk_with_repeated_and_blank_params() -> None:
    params = [("To", "+1"), ("MediaUrl", "b"), ("MediaUrl", "a"), ("Body", ""), ("A", "x")]
    grouped = {"To": ["+1"], "MediaUrl": ["b", "a"], "Body": [""], "A": ["x"]}

    class MultiDict(dict[str, list[str]]):
        def getall(self, name: str) -> list[str]:
            return self[name]

    sdk = RequestValidator(TOKEN).compute_signature(CALLBACK, MultiDict(grouped))

    assert twilio_signature(CALLBACK, params, TOKEN) == sdk


def test_signature_over_url_without_port_accepted_on_url_with_it() -> None:
    body, headers = signed(INBOUND_URL, inbound("hi"))

    event = twilio_event(
        "https://ce.example.com:443/v1/webhooks/twilio", body, headers, TOKEN, now=NOW
    )

    assert event.kind == "inbound"


def test_signature_with_sha256_settings_accepted() -> None:
    params = inbound("hi")
    signature = RequestValidator(TOKEN).compute_signature(INBOUND_URL, params, "HMAC_SHA256")
    headers = {
        "X-Twilio-Signature": signature,
        "X-Twilio-Webhooks-Signature-Settings": "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256",
    }

    event = twilio_event(INBOUND_URL, urlencode(params).encode(), headers, TOKEN, now=NOW)

    assert event.kind == "inbound"


def test_any_of_several_tokens_accepted() -> None:
    body, headers = signed(CALLBACK, STATUS)

    event = twilio_event(CALLBACK, body, headers, ["platform-token", TOKEN], now=NOW)

    assert event.kind == "delivered"


def test_signature_refused_when_another_token_signed() -> None:
    body, headers = signed(CALLBACK, STATUS, token="another-token")

    with pytest.raises(ForgedWebhook):
        twilio_event(CALLBACK, body, headers, TOKEN, now=NOW)


def test_signature_refused_when_a_param_tampered() -> None:
    _, headers = signed(CALLBACK, STATUS)
    tampered = urlencode(STATUS | {"MessageStatus": "failed"}).encode()

    with pytest.raises(ForgedWebhook):
        twilio_event(CALLBACK, tampered, headers, TOKEN, now=NOW)


def test_signature_refused_when_our_ids_in_the_url_tampered() -> None:
    body, headers = signed(CALLBACK, STATUS)
    other_tenant = CALLBACK.replace("ce_tenant_id=t-1", "ce_tenant_id=t-2")

    with pytest.raises(ForgedWebhook):
        twilio_event(other_tenant, body, headers, TOKEN, now=NOW)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Twilio-Signature": ""},
        {"X-Twilio-Signature": "x", "X-Twilio-Webhooks-Signature-Settings": "algorithm=MD5"},
    ],
    ids=["none", "empty", "unknown-algorithm"],
)
def test_missing_or_malformed_signature_refused(headers: dict[str, str]) -> None:
    body, _ = signed(CALLBACK, STATUS)

    with pytest.raises(ForgedWebhook):
        twilio_event(CALLBACK, body, headers, TOKEN, now=NOW)


def test_authentic_request_without_a_message_refused_as_malformed() -> None:
    body, headers = signed(INBOUND_URL, {"AccountSid": "AC" + "0" * 32})

    with pytest.raises(MalformedWebhook):
        twilio_event(INBOUND_URL, body, headers, TOKEN, now=NOW)


@pytest.mark.parametrize(
    "text", ["STOP", "stop", " Stop ", "STOPALL", "UNSUBSCRIBE", "cancel", "END", "quit"]
)
def test_opt_out_keywords_suppress_the_number(text: str) -> None:
    body, headers = signed(INBOUND_URL, inbound(text))

    event = twilio_event(INBOUND_URL, body, headers, TOKEN, now=NOW)

    assert event.kind == "inbound"
    assert event.event_id == "SM" + "b" * 32
    assert event.address == "+33612345678"
    assert event.keyword is SmsKeyword.STOP
    assert event.suppression is Suppression.PERMANENT


@pytest.mark.parametrize("text", ["START", "yes", "Unstop"])
def test_opt_in_keywords_lift_the_suppression(text: str) -> None:
    body, headers = signed(INBOUND_URL, inbound(text))

    event = twilio_event(INBOUND_URL, body, headers, TOKEN, now=NOW)

    assert event.keyword is SmsKeyword.START
    assert event.suppression is Suppression.LIFT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("HELP", SmsKeyword.HELP),
        ("info", SmsKeyword.HELP),
        ("stop please", None),
        ("please stop", None),
        ("STOPP", None),
        ("", None),
    ],
)
def test_only_a_whole_message_keyword_counts(text: str, expected: SmsKeyword | None) -> None:
    assert keyword(text) is expected


def test_advanced_opt_out_type_from_twilio_wins_over_the_text() -> None:
    body, headers = signed(INBOUND_URL, inbound("ARRET", OptOutType="STOP"))

    event = twilio_event(INBOUND_URL, body, headers, TOKEN, now=NOW)

    assert event.keyword is SmsKeyword.STOP
    assert event.suppression is Suppression.PERMANENT


def test_failure_for_an_opted_out_number_suppresses_it() -> None:
    params = STATUS | {"MessageStatus": "failed", "SmsStatus": "failed", "ErrorCode": "21610"}
    body, headers = signed(CALLBACK, params)

    event = twilio_event(CALLBACK, body, headers, TOKEN, now=NOW)

    assert event.kind == "failed"
    assert event.suppression is Suppression.PERMANENT


@pytest.mark.parametrize(
    ("public", "expected"),
    [
        (None, "http://10.0.0.7:8080/v1/webhooks/twilio?ce_tenant_id=t-1"),
        ("https://ce.example.com", "https://ce.example.com/v1/webhooks/twilio?ce_tenant_id=t-1"),
        ("https://ce.example.com/", "https://ce.example.com/v1/webhooks/twilio?ce_tenant_id=t-1"),
        ("https://example.com/ce", "https://example.com/ce/v1/webhooks/twilio?ce_tenant_id=t-1"),
    ],
)
def test_signed_url_behind_a_proxy_uses_the_public_scheme_and_host(
    public: str | None, expected: str
) -> None:
    seen = "http://10.0.0.7:8080/v1/webhooks/twilio?ce_tenant_id=t-1"

    assert signed_url(seen, public) == expected


def test_request_seen_behind_a_proxy_verified_against_the_public_url() -> None:
    body, headers = signed(CALLBACK, STATUS)
    seen = CALLBACK.replace("https://ce.example.com", "http://10.0.0.7:8080")

    event = twilio_event(signed_url(seen, "https://ce.example.com"), body, headers, TOKEN)

    assert event.kind == "delivered"
