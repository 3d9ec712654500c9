"""Push through the FCM stand-in (OAuth2 token first) and the APNs stand-in (HTTP/2)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import jwt
import pytest

from adapters.channels import (
    OutboundMessage,
    PermanentSendError,
    RecipientRejected,
    RetryPolicy,
    Vendor,
)
from adapters.channels.apns import TOKEN_REUSE_S, ApnsSender
from adapters.channels.config import ApnsConfig, FcmConfig
from adapters.channels.fcm import SCOPE, FcmSender
from domain.journeys import Channel
from tests.integration.channels.conftest import RecordedSleeps
from tests.support.vendors import ApnsStandIn, FcmStandIn

PUSH = OutboundMessage(
    channel=Channel.PUSH,
    to="fcm-registration-token:APA91b",
    subject="Back in stock",
    body="The shoes you liked are back",
    idempotency_key="entry-9:push",
    metadata={"tenant_id": "t-1", "send_key": "entry-9:push"},
)
DEVICE = "a1" * 32


class Clock:
    """Wall time the test moves (tokens are signed with it; the stand-ins check it)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def fcm_sender(
    fcm_config: FcmConfig, policy: RetryPolicy, sleeps: RecordedSleeps, clock: Clock
) -> AsyncIterator[FcmSender]:
    sender = FcmSender(fcm_config, policy, sleep=sleeps, clock=clock)
    yield sender
    await sender.aclose()


@pytest.fixture
async def apns_sender(
    apns_config: ApnsConfig, policy: RetryPolicy, sleeps: RecordedSleeps
) -> AsyncIterator[ApnsSender]:
    sender = ApnsSender(apns_config, policy, sleep=sleeps)
    yield sender
    await sender.aclose()


# --- FCM --------------------------------------------------------------------------------------


async def test_fcm_token_fetched_with_a_signed_assertion_then_message_sent(
    fcm_sender: FcmSender, fcm: FcmStandIn, clock: Clock
) -> None:
    receipt = await fcm_sender.send(PUSH)

    token_request, send_request = fcm.requests()
    assert token_request.path == "/token"
    grant = token_request.form()
    assert grant["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = jwt.decode(grant["assertion"], options={"verify_signature": False})
    assert claims == {
        "iss": fcm.client_email,
        "scope": SCOPE,
        "aud": f"{fcm.base_url}/token",
        "iat": int(clock.now),
        "exp": int(clock.now) + 3600,
    }
    assert jwt.get_unverified_header(grant["assertion"])["kid"] == fcm.key_id
    assert send_request.path == f"/v1/projects/{fcm.project_id}/messages:send"
    access_token = token_request.reply_json()["access_token"]
    assert send_request.headers["authorization"] == f"Bearer {access_token}"
    assert send_request.json() == {
        "message": {
            "token": "fcm-registration-token:APA91b",
            "notification": {"title": "Back in stock", "body": "The shoes you liked are back"},
            "data": {"ce_send_key": "entry-9:push", "ce_tenant_id": "t-1"},
            # A message FCM was given twice shows once, on Android and on iOS.
            "android": {"notification": {"tag": PUSH.notification_id}},
            "apns": {"headers": {"apns-collapse-id": PUSH.notification_id}},
        }
    }
    assert receipt.vendor is Vendor.FCM
    assert receipt.vendor_message_id == send_request.reply_json()["name"]


async def test_fcm_token_fetched_once_and_kept(fcm_sender: FcmSender, fcm: FcmStandIn) -> None:
    for _ in range(3):
        await fcm_sender.send(PUSH)

    assert len(fcm.token_requests()) == 1
    assert len(fcm.accepted()) == 3


@pytest.fixture
def short_lived_fcm() -> Iterator[FcmStandIn]:
    with FcmStandIn(expires_in=90).serve() as stand_in:
        yield stand_in


async def test_fcm_token_fetched_again_before_it_expires(
    short_lived_fcm: FcmStandIn, policy: RetryPolicy, clock: Clock, tmp_path: Path
) -> None:
    fcm = short_lived_fcm
    config = FcmConfig(
        project_id=fcm.project_id,
        service_account_file=fcm.service_account(tmp_path / "service-account.json"),
        base_url=fcm.base_url,
    )
    sender = FcmSender(config, policy, clock=clock)
    await sender.send(PUSH)
    await sender.send(PUSH)
    clock.now += 40  # inside the last minute of its 90 s

    await sender.send(PUSH)
    await sender.aclose()

    assert len(fcm.token_requests()) == 2


async def test_fcm_token_refused_midway_replaced_once(
    fcm_sender: FcmSender, fcm: FcmStandIn
) -> None:
    await fcm_sender.send(PUSH)
    fcm.revoke_tokens()

    await fcm_sender.send(PUSH)

    assert [r.status for r in fcm.requests()] == [200, 200, 401, 200, 200]
    assert len(fcm.token_requests()) == 2


async def test_fcm_token_endpoint_down_retried(
    fcm_sender: FcmSender, fcm: FcmStandIn, sleeps: RecordedSleeps
) -> None:
    fcm.fail_next(1, status=503, path_contains="/token")

    await fcm_sender.send(PUSH)

    assert [r.status for r in fcm.token_requests()] == [503, 200]
    assert len(sleeps) == 1


async def test_fcm_uninstalled_app_token_refused_as_the_recipients(
    fcm_sender: FcmSender, fcm: FcmStandIn
) -> None:
    with pytest.raises(RecipientRejected) as raised:
        await fcm_sender.send(PUSH.model_copy(update={"to": "uninstalled-app-token"}))

    assert raised.value.code == "UNREGISTERED"
    assert len(fcm.accepted()) == 0


async def test_fcm_quota_retried_after_the_retry_after_seconds(
    fcm_sender: FcmSender, fcm: FcmStandIn, sleeps: RecordedSleeps
) -> None:
    fcm.fail_next(1, status=429, retry_after="4", path_contains="messages:send")

    await fcm_sender.send(PUSH)

    assert sleeps == [4.0]
    assert len(fcm.accepted()) == 1


async def test_fcm_invalid_argument_permanent(fcm_sender: FcmSender, fcm: FcmStandIn) -> None:
    fcm.fail_next(1, status=400, path_contains="messages:send")

    with pytest.raises(PermanentSendError) as raised:
        await fcm_sender.send(PUSH)

    assert raised.value.code == "INVALID_ARGUMENT"
    assert not isinstance(raised.value, RecipientRejected)


async def test_fcm_service_account_given_inline_works_as_the_file(
    fcm_config: FcmConfig, fcm: FcmStandIn, policy: RetryPolicy
) -> None:
    from pydantic import SecretStr

    assert fcm_config.service_account_file is not None
    inline = fcm_config.model_copy(
        update={
            "service_account_file": None,
            "service_account_info": SecretStr(fcm_config.service_account_file.read_text()),
        }
    )
    sender = FcmSender(inline, policy)

    await sender.send(PUSH)
    await sender.aclose()

    assert len(fcm.accepted()) == 1


# --- APNs -------------------------------------------------------------------------------------


async def test_apns_request_as_documented_over_http2(
    apns_sender: ApnsSender, apns: ApnsStandIn
) -> None:
    receipt = await apns_sender.send(PUSH.model_copy(update={"to": DEVICE}))

    [request] = apns.requests()
    assert request.http_version == "2"
    assert request.method == "POST"
    assert request.path == f"/3/device/{DEVICE}"
    assert request.headers["apns-topic"] == apns.topic
    assert request.headers["apns-push-type"] == "alert"
    assert request.headers["apns-priority"] == "10"
    assert request.headers["apns-id"] == PUSH.notification_id
    assert request.headers["apns-collapse-id"] == PUSH.notification_id  # a twice-given shows once
    uuid.UUID(request.headers["apns-id"])
    token = request.headers["authorization"].removeprefix("bearer ")
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": apns.key_id, "typ": "JWT"}
    assert jwt.decode(token, options={"verify_signature": False})["iss"] == apns.team_id
    assert request.json() == {
        "aps": {"alert": {"title": "Back in stock", "body": "The shoes you liked are back"}},
        "ce": {"tenant_id": "t-1", "send_key": "entry-9:push"},
    }
    assert receipt.vendor is Vendor.APNS
    assert receipt.vendor_message_id == request.headers["apns-id"]


async def test_apns_provider_token_reused_then_renewed(
    apns_config: ApnsConfig, apns: ApnsStandIn, policy: RetryPolicy, clock: Clock
) -> None:
    clock.now -= TOKEN_REUSE_S  # signed 50 minutes ago, then renewed now
    sender = ApnsSender(apns_config, policy, clock=clock)
    device = PUSH.model_copy(update={"to": DEVICE})
    await sender.send(device)
    await sender.send(device)
    clock.now += TOKEN_REUSE_S

    await sender.send(device)
    await sender.aclose()

    tokens = [r.headers["authorization"] for r in apns.requests()]
    assert tokens[0] == tokens[1] != tokens[2]
    assert len(apns.accepted()) == 3


async def test_apns_unregistered_device_refused_as_the_recipients(
    apns_sender: ApnsSender, apns: ApnsStandIn
) -> None:
    with pytest.raises(RecipientRejected) as raised:
        await apns_sender.send(PUSH.model_copy(update={"to": "0f" * 32}))

    assert raised.value.status == 410
    assert raised.value.code == "Unregistered"


async def test_apns_not_a_device_token_refused_before_sending(
    apns_sender: ApnsSender, apns: ApnsStandIn
) -> None:
    with pytest.raises(RecipientRejected):
        await apns_sender.send(PUSH.model_copy(update={"to": "../../admin"}))

    assert apns.requests() == []


async def test_apns_throttled_and_unavailable_retried(
    apns_sender: ApnsSender, apns: ApnsStandIn, sleeps: RecordedSleeps
) -> None:
    apns.fail_next(1, status=429)
    apns.fail_next(1, status=503, retry_after="3")

    await apns_sender.send(PUSH.model_copy(update={"to": DEVICE}))

    assert [r.status for r in apns.requests()] == [429, 503, 200]
    assert sleeps[1] == 3.0
    # Every attempt at the message carries the same apns-id.
    assert len({r.headers["apns-id"] for r in apns.requests()}) == 1
