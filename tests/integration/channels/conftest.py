"""Each vendor's stand-in on a free loopback port, and the adapters' settings pointing at it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from adapters.channels import RetryPolicy
from adapters.channels.config import (
    ApnsConfig,
    FcmConfig,
    SendGridConfig,
    TwilioConfig,
    WebhookConfig,
)
from adapters.channels.destinations import Resolve
from tests.support.vendors import (
    ApnsStandIn,
    FcmStandIn,
    SendGridStandIn,
    TwilioStandIn,
    WebhookReceiver,
)

SENDGRID_KEY = "SG.test-key"
CALLBACK_BASE = "https://ce.example.com/v1/webhooks/twilio"


class RecordedSleeps(list[float]):
    """The senders' waits between attempts, recorded instead of sat through."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> RecordedSleeps:
    return RecordedSleeps()


@pytest.fixture
def policy() -> RetryPolicy:
    return RetryPolicy(
        timeout_s=5,
        attempts=3,
        total_s=600,
        backoff_initial_s=0.01,
        backoff_max_s=0.05,
        retry_after_max_s=30,
        failures_to_open=50,
    )


@pytest.fixture
def sendgrid() -> Iterator[SendGridStandIn]:
    with SendGridStandIn(api_key=SENDGRID_KEY).serve() as stand_in:
        yield stand_in


@pytest.fixture
def sendgrid_config(sendgrid: SendGridStandIn) -> SendGridConfig:
    return SendGridConfig(
        api_key=SecretStr(SENDGRID_KEY), base_url=sendgrid.base_url, from_="Shop <shop@example.com>"
    )


@pytest.fixture
def twilio() -> Iterator[TwilioStandIn]:
    with TwilioStandIn(opted_out={"+33699999999"}).serve() as stand_in:
        yield stand_in


@pytest.fixture
def twilio_config(twilio: TwilioStandIn) -> TwilioConfig:
    return TwilioConfig(
        account_sid=twilio.account_sid,
        auth_token=SecretStr(twilio.auth_token),
        base_url=twilio.base_url,
        from_="+15005550006",
        status_callback_url=CALLBACK_BASE,
    )


@pytest.fixture
def fcm() -> Iterator[FcmStandIn]:
    with FcmStandIn(unregistered={"uninstalled-app-token"}).serve() as stand_in:
        yield stand_in


@pytest.fixture
def fcm_config(fcm: FcmStandIn, tmp_path: Path) -> FcmConfig:
    return FcmConfig(
        project_id=fcm.project_id,
        service_account_file=fcm.service_account(tmp_path / "service-account.json"),
        base_url=fcm.base_url,
    )


@pytest.fixture
def apns() -> Iterator[ApnsStandIn]:
    with ApnsStandIn(unregistered={"0f" * 32}).serve() as stand_in:
        yield stand_in


@pytest.fixture
def apns_config(apns: ApnsStandIn, tmp_path: Path) -> ApnsConfig:
    return ApnsConfig(
        team_id=apns.team_id,
        key_id=apns.key_id,
        key_file=apns.signing_key(tmp_path / "AuthKey.p8"),
        topic=apns.topic,
        base_url=apns.base_url,
    )


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(secret="hook-secret").serve() as stand_in:
        yield stand_in


@pytest.fixture
def webhook_config() -> WebhookConfig:
    return WebhookConfig(signing_secret=SecretStr("hook-secret"))


def fixed_resolver(answers: dict[str, list[str]]) -> Resolve:
    """A DNS with fixed answers, as a name under an attacker's control can give any."""

    async def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers[host]

    return resolve
