"""Messages to a customer's own endpoint: a JSON POST its receiver can authenticate.

    POST <url>    Content-Type: application/json
    X-CE-Timestamp: <unix seconds>
    X-CE-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>
    Idempotency-Key: <the send's idempotency key>
    {"id": <idempotency key>, "subject": ..., "body": ..., "metadata": {...}}

The timestamp is inside the signed text, as Stripe does it, so a receiver that refuses old
timestamps also refuses replays. Endpoints differ and fail alone: each host has its own
breaker, so one tenant's dead endpoint does not stop the others'.

Endpoints are the tenants' data, so they go to public addresses only unless
``allow_private_networks`` (a receiver on a developer's machine): see
``adapters.channels.destinations``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import orjson

from adapters.channels.config import WebhookConfig
from adapters.channels.destinations import DestinationRule, Resolve, resolve_host
from adapters.channels.http import RetryPolicy, Sleep, VendorClient, excerpt, new_http_client
from adapters.channels.ports import (
    NoAcceptanceRecords,
    OutboundMessage,
    PermanentSendError,
    RecipientRejected,
    SendReceipt,
    Vendor,
)

SIGNATURE_HEADER = "X-CE-Signature"
TIMESTAMP_HEADER = "X-CE-Timestamp"
MAX_HOSTS = 256


def sign_webhook(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def webhook_signature_valid(
    secret: str, timestamp: str, body: bytes, signature: str, *, now: float, tolerance_s: float
) -> bool:
    """What a receiver of our webhooks checks (and what the tests' receiver does)."""
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(sign_webhook(secret, int(timestamp), body), signature)


def envelope(message: OutboundMessage) -> bytes:
    return orjson.dumps(
        {
            "id": message.idempotency_key,
            "subject": message.subject,
            "body": message.body,
            "metadata": message.metadata,
        }
    )


def _private_endpoint(reason: str) -> RecipientRejected:
    return RecipientRejected(
        "webhook", f"{reason} (CE_ALLOW_PRIVATE_TENANT_URLS lets webhooks reach private networks)"
    )


def refusal(response: httpx.Response) -> PermanentSendError:
    if response.status_code == 410:  # the receiver says the endpoint is gone for good
        return RecipientRejected("webhook", "endpoint gone", status=410)
    return PermanentSendError(
        "webhook", "endpoint refused", status=response.status_code, detail=excerpt(response)
    )


class WebhookSender(NoAcceptanceRecords):
    def __init__(
        self,
        config: WebhookConfig,
        policy: RetryPolicy,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        allow_private_networks: bool = False,
        resolve: Resolve = resolve_host,
    ) -> None:
        if config.signing_secret is None:
            raise ValueError(f"webhooks are not configured: {', '.join(config.missing())}")
        self._secret = config.signing_secret.get_secret_value()
        self._policy = policy
        self._sleep = sleep
        self._clock = clock
        # One connection pool for every endpoint, one breaker per endpoint.
        self._http = new_http_client(
            policy,
            destinations=(
                None
                if allow_private_networks
                else DestinationRule(refuse=_private_endpoint, resolve=resolve)
            ),
        )
        self._hosts: OrderedDict[str, VendorClient] = OrderedDict()

    def _client_for(self, origin: str) -> VendorClient:
        client = self._hosts.get(origin)
        if client is None:
            client = VendorClient(
                Vendor.WEBHOOK,
                self._policy,
                dependency=f"webhook {origin}",
                http=self._http,
                sleep=self._sleep,
            )
            self._hosts[origin] = client
            if len(self._hosts) > MAX_HOSTS:  # the least recently used endpoint's breaker
                self._hosts.popitem(last=False)
        self._hosts.move_to_end(origin)
        return client

    async def send(self, message: OutboundMessage) -> SendReceipt:
        parts = urlsplit(message.to)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RecipientRejected("webhook", "not an http(s) URL")
        try:
            url = httpx.URL(message.to)
            parts.port  # noqa: B018 (read for its check: urlsplit refuses a port out of range)
        except (httpx.InvalidURL, ValueError):
            raise RecipientRejected("webhook", "not a valid URL") from None
        body = envelope(message)

        async def attempt(http: httpx.AsyncClient) -> httpx.Response:
            # Signed per attempt: a retry minutes later must not look like a replay.
            timestamp = int(self._clock())
            return await http.post(
                url,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    TIMESTAMP_HEADER: str(timestamp),
                    SIGNATURE_HEADER: sign_webhook(self._secret, timestamp, body),
                    "Idempotency-Key": message.idempotency_key,
                },
            )

        client = self._client_for(f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}")
        await client.exchange(attempt, refusal)
        return SendReceipt(
            vendor=Vendor.WEBHOOK, vendor_message_id=None, accepted_at=datetime.now(UTC)
        )

    async def aclose(self) -> None:
        self._hosts.clear()
        await self._http.aclose()
