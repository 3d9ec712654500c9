"""Push through Apple Push Notification service, over HTTP/2 with a provider token.

    POST {base}/3/device/{device token}      (HTTP/2 only)
    authorization: bearer <JWT ES256, kid = key id, iss = team id, iat>
    apns-topic: <bundle id>   apns-push-type: alert   apns-priority: 10
    apns-id: <uuid>   apns-collapse-id: <the same uuid>
    {"aps": {"alert": {"title": ..., "body": ...}}, "ce": {"tenant_id": ..., ...}}
    -> 200, apns-id: <uuid>;   errors: {"reason": "BadDeviceToken"} and the like

The provider token is signed once and reused: Apple refuses tokens refreshed more often than
every 20 minutes and accepts them for an hour. The apns-id is derived from the idempotency key,
so every attempt at one message carries the same id; as the collapse id too, a message Apple
was given twice replaces the first while that one is still shown
(``OutboundMessage.notification_id``).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from adapters.channels.config import ApnsConfig
from adapters.channels.destinations import DestinationRule
from adapters.channels.http import RetryPolicy, Sleep, VendorClient, excerpt
from adapters.channels.ports import (
    ChannelMisconfigured,
    NoAcceptanceRecords,
    OutboundMessage,
    PermanentSendError,
    RecipientRejected,
    SendReceipt,
    Vendor,
)

TOKEN_REUSE_S = 50 * 60
_DEVICE_TOKEN = re.compile(r"^[0-9A-Fa-f]{16,200}$")

# https://developer.apple.com/documentation/usernotifications/handling-notification-responses-from-apns
_RECIPIENT_REASONS = frozenset(
    {"BadDeviceToken", "DeviceTokenNotForTopic", "Unregistered", "ExpiredToken"}
)
_ACCOUNT_REASONS = frozenset(
    {
        "BadCertificate",
        "BadCertificateEnvironment",
        "Forbidden",
        "InvalidProviderToken",
        "MissingProviderToken",
        "MissingTopic",
        "TopicDisallowed",
        "BadTopic",
        "UnrelatedKeyIdInToken",
    }
)


def load_signing_key(config: ApnsConfig) -> EllipticCurvePrivateKey:
    """The .p8 key: inline (a tenant's) or else the file (the platform's)."""
    if config.key is not None:
        pem = config.key.get_secret_value().encode()
    elif config.key_file is not None:
        pem = Path(config.key_file).read_bytes()
    else:
        raise ValueError("APNs has no signing key")
    try:
        key = load_pem_private_key(pem, None)
    except ValueError:
        raise ValueError("the APNs key is not a PEM private key") from None
    if not isinstance(key, EllipticCurvePrivateKey):
        raise ValueError("the APNs key is not an EC (P-256) key")
    return key


class ProviderTokens:
    """The ES256 provider token, signed once and reused for ``TOKEN_REUSE_S``."""

    def __init__(
        self,
        key: EllipticCurvePrivateKey,
        team_id: str,
        key_id: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = key
        self._team_id = team_id
        self._key_id = key_id
        self._clock = clock
        self._token: str | None = None
        self._signed_at = 0.0

    def get(self) -> str:
        now = self._clock()
        if self._token is None or now - self._signed_at >= TOKEN_REUSE_S:
            self._token = jwt.encode(
                {"iss": self._team_id, "iat": int(now)},
                self._key,
                algorithm="ES256",
                headers={"kid": self._key_id},
            )
            self._signed_at = now
        return self._token

    def forget(self, token: str) -> None:
        if self._token == token:
            self._token = None


def apns_payload(message: OutboundMessage) -> dict[str, Any]:
    alert = {"body": message.body}
    if message.subject:
        alert["title"] = message.subject
    payload: dict[str, Any] = {"aps": {"alert": alert}}
    if message.metadata:
        # Outside "aps", where Apple leaves custom keys to the app (to report opens with).
        payload["ce"] = dict(message.metadata)
    return payload


def reason_of(response: httpx.Response) -> str | None:
    try:
        reason = response.json().get("reason")
    except (ValueError, AttributeError):
        return None
    return reason if isinstance(reason, str) else None


def refusal(response: httpx.Response) -> PermanentSendError:
    status = response.status_code
    reason = reason_of(response)
    detail = excerpt(response)
    if status == 410 or reason in _RECIPIENT_REASONS:
        return RecipientRejected(
            "apns", "device token refused", status=status, code=reason, detail=detail
        )
    if status == 403 or reason in _ACCOUNT_REASONS:
        return ChannelMisconfigured(
            "apns", "key, team or topic refused", status=status, code=reason, detail=detail
        )
    return PermanentSendError(
        "apns", "notification refused", status=status, code=reason, detail=detail
    )


class ApnsSender(NoAcceptanceRecords):
    def __init__(
        self,
        config: ApnsConfig,
        policy: RetryPolicy,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        destinations: DestinationRule | None = None,
    ) -> None:
        if config.missing() or config.team_id is None or config.key_id is None:
            raise ValueError(f"APNs is not configured: {', '.join(config.missing())}")
        self._tokens = ProviderTokens(
            load_signing_key(config), config.team_id, config.key_id, clock=clock
        )
        self._base = config.base_url.rstrip("/")
        self._topic = config.topic or ""
        self._client = VendorClient(
            Vendor.APNS, policy, http2=True, sleep=sleep, destinations=destinations
        )

    async def send(self, message: OutboundMessage) -> SendReceipt:
        device = message.to
        if not _DEVICE_TOKEN.match(device):
            raise RecipientRejected("apns", "not an APNs device token")
        url = f"{self._base}/3/device/{device}"
        payload = apns_payload(message)
        headers = {
            "apns-topic": self._topic,
            "apns-push-type": "alert",
            "apns-priority": "10",
            "apns-id": message.notification_id,
            "apns-collapse-id": message.notification_id,
        }

        async def post(http: httpx.AsyncClient, token: str) -> httpx.Response:
            return await http.post(
                url, json=payload, headers=headers | {"authorization": f"bearer {token}"}
            )

        async def attempt(http: httpx.AsyncClient) -> httpx.Response:
            token = self._tokens.get()
            response = await post(http, token)
            if response.status_code == 403 and reason_of(response) == "ExpiredProviderToken":
                self._tokens.forget(token)
                response = await post(http, self._tokens.get())
            return response

        response = await self._client.exchange(attempt, refusal)
        return SendReceipt(
            vendor=Vendor.APNS,
            vendor_message_id=response.headers.get("apns-id", headers["apns-id"]),
            accepted_at=datetime.now(UTC),
        )

    async def aclose(self) -> None:
        await self._client.aclose()
