"""Messages to a customer's own endpoint: a JSON POST its receiver can authenticate.

    POST <url>    Content-Type: application/json
    X-CE-Timestamp: <unix seconds>
    X-CE-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>
    Idempotency-Key: <the send's idempotency key>
    {"id": <idempotency key>, "subject": ..., "body": ..., "metadata": {...}}

The timestamp is inside the signed text, as Stripe does it, so a receiver that refuses old
timestamps also refuses replays. Endpoints differ and fail alone: each host has its own
breaker, so one tenant's dead endpoint does not stop the others'.

Endpoints are the tenants' data, so a URL could name this platform's own network: the cloud's
metadata service, Redis, ClickHouse's HTTP port. Unless ``allow_private_networks`` (tests, a
receiver on a developer's machine), every address the host resolves to must be public, and the
request goes to the address that was checked (``Host`` and TLS name kept), so a DNS answer that
changes between the check and the connection cannot lead it inside. Redirects are not followed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import orjson

from adapters.channels.config import WebhookConfig
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

Resolve = Callable[[str, int], Awaitable[list[str]]]
"""Every address a host name resolves to (an address literal resolves to itself)."""


async def resolve_host(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def is_public(address: str) -> bool:
    """Routable on the internet: not loopback, private, link-local, shared, reserved or
    multicast."""
    ip = ipaddress.ip_address(address.partition("%")[0])  # an IPv6 zone is link-local anyway
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1 (3.11's is_global misses it)
    return ip.is_global and not ip.is_multicast


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
        self._allow_private_networks = allow_private_networks
        self._resolve = resolve
        self._policy = policy
        self._sleep = sleep
        self._clock = clock
        # One connection pool for every endpoint, one breaker per endpoint.
        self._http = new_http_client(policy)
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
        host = parts.hostname
        if parts.scheme not in ("http", "https") or not host:
            raise RecipientRejected("webhook", "not an http(s) URL")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            url = httpx.URL(message.to)
        except (ValueError, httpx.InvalidURL):  # a port out of range, say
            raise RecipientRejected("webhook", "not a valid URL") from None
        authority = parts.netloc.rpartition("@")[2]  # host[:port], as the URL gives it
        body = envelope(message)

        async def attempt(http: httpx.AsyncClient) -> httpx.Response:
            # Resolved per attempt, inside its timeout: a retry follows a moved endpoint.
            address = await self._destination(host, port)
            # Signed per attempt: a retry minutes later must not look like a replay.
            timestamp = int(self._clock())
            return await http.post(
                url.copy_with(host=address),
                content=body,
                headers={
                    "Host": authority,
                    "Content-Type": "application/json",
                    TIMESTAMP_HEADER: str(timestamp),
                    SIGNATURE_HEADER: sign_webhook(self._secret, timestamp, body),
                    "Idempotency-Key": message.idempotency_key,
                },
                # The certificate is checked against the name, not the address dialled.
                extensions={"sni_hostname": host} if parts.scheme == "https" else {},
            )

        client = self._client_for(f"{parts.scheme}://{authority}")
        await client.exchange(attempt, refusal)
        return SendReceipt(
            vendor=Vendor.WEBHOOK, vendor_message_id=None, accepted_at=datetime.now(UTC)
        )

    async def _destination(self, host: str, port: int) -> str:
        """The address to connect to: the first ``host`` resolves to, once all are allowed."""
        try:
            addresses = await self._resolve(host, port)
        except OSError as error:  # unknown name, or no resolver: retried as a network failure
            raise httpx.ConnectError(f"cannot resolve {host}: {error}") from error
        if not addresses:
            raise httpx.ConnectError(f"{host} resolves to no address")
        if not self._allow_private_networks:
            # All of them: a client may try any, and one private answer is enough to get in.
            inside = [address for address in addresses if not is_public(address)]
            if inside:
                raise RecipientRejected(
                    "webhook",
                    f"{host} resolves to {inside[0]}, not a public address "
                    "(CE_WEBHOOK_ALLOW_PRIVATE_NETWORKS lets webhooks reach private networks)",
                )
        return addresses[0]

    async def aclose(self) -> None:
        self._hosts.clear()
        await self._http.aclose()
