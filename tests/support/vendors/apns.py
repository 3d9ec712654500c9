"""Apple Push Notification service's provider API, over HTTP/2 only.

``POST /3/device/{token}`` over HTTP/2 (prior knowledge on this cleartext port; the real
service uses TLS with ALPN ``h2``) with ``authorization: bearer <JWT>`` (ES256, ``kid`` = the
key id, ``iss`` = the team id, ``iat`` within the hour, checked against the signing key's public
half), ``apns-topic`` = the app's bundle id, ``apns-push-type`` and a JSON payload with ``aps``
of at most 4 KB answers 200 with an ``apns-id``. Errors are Apple's ``{"reason": ...}``:
BadDeviceToken, Unregistered (410, for tokens in ``unregistered``), InvalidProviderToken,
ExpiredProviderToken, BadTopic, PayloadTooLarge... A request over HTTP/1.1 is refused.

``signing_key`` writes the .p8 key (PKCS#8 PEM, P-256) a developer downloads from Apple.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.vendors.base import RecordedRequest, Reply, StandIn

_DEVICE = re.compile(r"^/3/device/(?P<token>[^/]+)$")
_TOKEN = re.compile(r"^[0-9a-fA-F]{64}$")
_PUSH_TYPES = {"alert", "background", "location", "voip", "complication", "fileprovider", "mdm"}
_REASON_STATUS = {
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
    400: "BadDeviceToken",
    403: "InvalidProviderToken",
    410: "Unregistered",
}


def reason(status: int, why: str, **extra: Any) -> Reply:
    return Reply.json(status, {"reason": why} | extra, {"apns-id": str(uuid.uuid4())})


class ApnsStandIn(StandIn):
    vendor: ClassVar[str] = "apns"

    def __init__(
        self,
        *,
        team_id: str = "TEAM123456",
        key_id: str = "KEY1234567",
        topic: str = "com.example.shop",
        unregistered: set[str] | None = None,
    ) -> None:
        super().__init__()
        self.team_id = team_id
        self.key_id = key_id
        self.topic = topic
        self.unregistered = set(unregistered or ())
        self._key = ec.generate_private_key(ec.SECP256R1())

    def signing_key(self, path: Path) -> Path:
        """Write the .p8 token signing key Apple would have issued for ``key_id``."""
        path.write_bytes(
            self._key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return path

    def is_send(self, request: RecordedRequest) -> bool:
        return request.method == "POST" and _DEVICE.match(request.path) is not None

    def error_reply(self, status: int) -> Reply:
        return reason(status, _REASON_STATUS.get(status, "InternalServerError"))

    def http_version_refused(self, request: RecordedRequest) -> Reply | None:
        if request.http_version != "2":
            return Reply(505, b"APNs speaks HTTP/2 only")
        return None

    def answer(self, request: RecordedRequest) -> Reply:
        match = _DEVICE.match(request.path)
        if request.method != "POST":
            return reason(405, "MethodNotAllowed")
        if match is None:
            return reason(404, "BadPath")
        refused = self._check_provider_token(request.headers.get("authorization", ""))
        if refused is not None:
            return refused
        topic = request.headers.get("apns-topic")
        if not topic:
            return reason(400, "MissingTopic")
        if topic != self.topic:
            return reason(
                400, "DeviceTokenNotForTopic" if topic.startswith(self.topic) else "BadTopic"
            )
        if request.headers.get("apns-push-type", "alert") not in _PUSH_TYPES:
            return reason(400, "InvalidPushType")
        apns_id = request.headers.get("apns-id") or str(uuid.uuid4())
        try:
            uuid.UUID(apns_id)
        except ValueError:
            return reason(400, "BadMessageId")
        if len(request.headers.get("apns-collapse-id", "").encode()) > 64:
            return reason(400, "BadCollapseId")
        if len(request.body) > 4096:
            return reason(413, "PayloadTooLarge")
        try:
            payload = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            return reason(400, "PayloadEmpty" if not request.body else "BadPayload")
        if not isinstance(payload, dict) or not isinstance(payload.get("aps"), dict):
            return reason(400, "PayloadEmpty")
        token = match["token"]
        if not _TOKEN.match(token):
            return reason(400, "BadDeviceToken")
        if token in self.unregistered:
            return reason(410, "Unregistered", timestamp=int(time.time() * 1000))
        return Reply(200, b"", {"apns-id": apns_id})

    def _check_provider_token(self, authorization: str) -> Reply | None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return reason(403, "MissingProviderToken")
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["ES256"],
                options={"require": ["iat", "iss"], "verify_iat": True},
            )
        except jwt.PyJWTError:
            return reason(403, "InvalidProviderToken")
        if header.get("kid") != self.key_id or claims.get("iss") != self.team_id:
            return reason(403, "InvalidProviderToken")
        if time.time() - float(claims["iat"]) > 3600:
            return reason(403, "ExpiredProviderToken")
        return None
