"""Push through Firebase Cloud Messaging's HTTP v1 API.

    POST {token url}   grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>
      the JWT signed RS256 with the service account's key: iss = its client_email, scope =
      firebase.messaging, aud = the token URL -> {"access_token": ..., "expires_in": 3599}
    POST {base}/v1/projects/{project}/messages:send   Authorization: Bearer <access token>
    {"message": {"token": ..., "notification": {"title": ..., "body": ...}, "data": {...},
                 "android": {"notification": {"tag": <id>}},
                 "apns": {"headers": {"apns-collapse-id": <id>}}}}
    -> 200 {"name": "projects/{project}/messages/{id}"}

The access token is kept until a minute before it expires (or FCM calls it stale with a 401),
so one token serves every send of the hour.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from adapters.channels.config import FcmConfig
from adapters.channels.destinations import DestinationRule
from adapters.channels.http import (
    RetryPolicy,
    Sleep,
    VendorBusy,
    VendorClient,
    excerpt,
    is_retryable,
)
from adapters.channels.ports import (
    ChannelMisconfigured,
    NoAcceptanceRecords,
    OutboundMessage,
    PermanentSendError,
    RecipientRejected,
    SendReceipt,
    Vendor,
)

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME_S = 3600
REFRESH_MARGIN_S = 60.0

# FcmError codes (https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode).
_RECIPIENT_CODES = frozenset({"UNREGISTERED", "SENDER_ID_MISMATCH"})
_ACCOUNT_CODES = frozenset({"THIRD_PARTY_AUTH_ERROR", "PERMISSION_DENIED", "UNAUTHENTICATED"})


class ServiceAccount(BaseModel):
    """The fields of a Google service account key file that signing needs."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    client_email: str
    private_key: SecretStr
    private_key_id: str | None = None
    token_uri: str = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL, not a secret)


def load_service_account(config: FcmConfig) -> ServiceAccount:
    """From the inline JSON (a tenant's) or else the key file (the platform's)."""
    if config.service_account_info is not None:
        text = config.service_account_info.get_secret_value()
    elif config.service_account_file is not None:
        text = Path(config.service_account_file).read_text()
    else:
        raise ValueError("FCM has no service account")
    try:
        return ServiceAccount.model_validate(json.loads(text))
    except (ValueError, ValidationError):
        # The text is a secret: name the problem, not the content.
        raise ValueError("the FCM service account is not a key file's JSON") from None


class AccessTokens:
    """OAuth2 access tokens for one service account, fetched once and kept until expiry."""

    def __init__(
        self,
        account: ServiceAccount,
        token_url: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        key = load_pem_private_key(account.private_key.get_secret_value().encode(), None)
        if not isinstance(key, RSAPrivateKey):
            raise ValueError("the FCM service account key is not an RSA key")
        self._key = key
        self._account = account
        self._token_url = token_url
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        # One fetch at a time: a burst of sends after expiry must not stampede the endpoint.
        self._lock = asyncio.Lock()

    async def get(self, http: httpx.AsyncClient) -> str:
        async with self._lock:
            if self._token is not None and self._clock() < self._expires_at - REFRESH_MARGIN_S:
                return self._token
            self._token, self._expires_at = await self._fetch(http)
            return self._token

    def forget(self, token: str) -> None:
        """FCM refused ``token``: the next ``get`` fetches another."""
        if self._token == token:
            self._token = None

    def assertion(self) -> str:
        now = int(self._clock())
        claims = {
            "iss": self._account.client_email,
            "scope": SCOPE,
            "aud": self._token_url,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_S,
        }
        headers = {"kid": self._account.private_key_id} if self._account.private_key_id else None
        return jwt.encode(claims, self._key, algorithm="RS256", headers=headers)

    async def _fetch(self, http: httpx.AsyncClient) -> tuple[str, float]:
        asked_at = self._clock()
        response = await http.post(
            self._token_url, data={"grant_type": GRANT_TYPE, "assertion": self.assertion()}
        )
        if is_retryable(response.status_code):
            raise VendorBusy(
                response.status_code, code=None, detail=excerpt(response), retry_after_s=None
            )
        try:
            answer: dict[str, Any] = response.json() if response.is_success else {}
        except ValueError:
            answer = {}
        token, lifetime = answer.get("access_token"), answer.get("expires_in")
        if not isinstance(token, str) or not isinstance(lifetime, int | float):
            raise ChannelMisconfigured(
                "fcm",
                "service account refused by the token endpoint",
                status=response.status_code,
                detail=excerpt(response),
            )
        return token, asked_at + float(lifetime)


def fcm_message(message: OutboundMessage, token: str) -> dict[str, Any]:
    notification = {"body": message.body}
    if message.subject:
        notification["title"] = message.subject
    body: dict[str, Any] = {
        "token": token,
        "notification": notification,
        # A message FCM was given twice replaces the first while it is still shown.
        "android": {"notification": {"tag": message.notification_id}},
        "apns": {"headers": {"apns-collapse-id": message.notification_id}},
    }
    if message.metadata:
        # Our ids ride in the data payload so the app can report opens against them.
        body["data"] = message.echo()
    return {"message": body}


def error_code(response: httpx.Response) -> str | None:
    """The FcmError code of an error answer, else its google.rpc status."""
    try:
        error = response.json().get("error") or {}
        for detail in error.get("details") or []:
            if str(detail.get("@type", "")).endswith("FcmError") and detail.get("errorCode"):
                return str(detail["errorCode"])
        status = error.get("status")
    except (ValueError, AttributeError):
        return None
    return str(status) if status else None


def refusal(response: httpx.Response) -> PermanentSendError:
    status = response.status_code
    code = error_code(response)
    detail = excerpt(response)
    if code in _RECIPIENT_CODES:
        return RecipientRejected("fcm", "token refused", status=status, code=code, detail=detail)
    if status in (401, 403) or code in _ACCOUNT_CODES:
        return ChannelMisconfigured(
            "fcm", "project or credentials refused", status=status, code=code, detail=detail
        )
    return PermanentSendError("fcm", "message refused", status=status, code=code, detail=detail)


class FcmSender(NoAcceptanceRecords):
    def __init__(
        self,
        config: FcmConfig,
        policy: RetryPolicy,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        destinations: DestinationRule | None = None,
    ) -> None:
        if config.missing():
            raise ValueError(f"FCM is not configured: {', '.join(config.missing())}")
        account = load_service_account(config)
        self._tokens = AccessTokens(account, config.token_url or account.token_uri, clock=clock)
        self._url = f"{config.base_url.rstrip('/')}/v1/projects/{config.project_id}/messages:send"
        self._client = VendorClient(Vendor.FCM, policy, sleep=sleep, destinations=destinations)

    async def send(self, message: OutboundMessage) -> SendReceipt:
        body = fcm_message(message, message.to)

        async def post(http: httpx.AsyncClient, access: str) -> httpx.Response:
            return await http.post(
                self._url, json=body, headers={"Authorization": f"Bearer {access}"}
            )

        async def attempt(http: httpx.AsyncClient) -> httpx.Response:
            access = await self._tokens.get(http)
            response = await post(http, access)
            if response.status_code == 401:  # revoked or expired early: one fresh token
                self._tokens.forget(access)
                response = await post(http, await self._tokens.get(http))
            return response

        response = await self._client.exchange(attempt, refusal)
        try:
            name = response.json().get("name")
        except (ValueError, AttributeError):
            name = None
        return SendReceipt(
            vendor=Vendor.FCM,
            vendor_message_id=name if isinstance(name, str) else None,
            accepted_at=datetime.now(UTC),
        )

    async def aclose(self) -> None:
        await self._client.aclose()
