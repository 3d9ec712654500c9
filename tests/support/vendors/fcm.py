"""Firebase Cloud Messaging HTTP v1, with the Google OAuth2 token endpoint in front of it.

``POST /token`` takes ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` and an
``assertion``: a JWT signed RS256 by the service account's key (checked against its public
key: issuer, audience = this endpoint's URL, the FCM scope, an hour's life) and answers an
access token with ``expires_in``.

``POST /v1/projects/{project}/messages:send`` takes ``Authorization: Bearer <access token>``
and ``{"message": {"token": ..., "notification": {...}, "data": {...}}}`` and answers
``{"name": "projects/{project}/messages/{id}"}``; errors are google.rpc errors with an FcmError
code (UNREGISTERED for tokens in ``unregistered``, INVALID_ARGUMENT, UNAUTHENTICATED...).

``service_account`` writes a key file for a fresh key pair whose ``token_uri`` is this stand-in.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path
from typing import Any, ClassVar

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.vendors.base import RecordedRequest, Reply, StandIn

TOKEN_PATH = "/token"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
_SEND = re.compile(r"^/v1/projects/(?P<project>[a-z0-9-]+)/messages:send$")
_STATUS = {
    400: ("INVALID_ARGUMENT", "INVALID_ARGUMENT"),
    401: ("UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR"),
    403: ("PERMISSION_DENIED", "SENDER_ID_MISMATCH"),
    404: ("NOT_FOUND", "UNREGISTERED"),
    429: ("RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"),
    500: ("INTERNAL", "INTERNAL"),
    503: ("UNAVAILABLE", "UNAVAILABLE"),
}


def fcm_error(status: int, message: str, fcm_code: str | None = None) -> Reply:
    rpc_status, default_code = _STATUS.get(status, ("UNKNOWN", "UNSPECIFIED_ERROR"))
    return Reply.json(
        status,
        {
            "error": {
                "code": status,
                "message": message,
                "status": rpc_status,
                "details": [
                    {
                        "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                        "errorCode": fcm_code or default_code,
                    }
                ],
            }
        },
    )


class FcmStandIn(StandIn):
    vendor: ClassVar[str] = "fcm"

    def __init__(
        self,
        project_id: str = "stand-in-project",
        *,
        expires_in: int = 3599,
        unregistered: set[str] | None = None,
    ) -> None:
        super().__init__()
        self.project_id = project_id
        self.expires_in = expires_in
        self.unregistered = set(unregistered or ())
        self.client_email = f"push@{project_id}.iam.gserviceaccount.com"
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_id = secrets.token_hex(20)
        self._issued: dict[str, float] = {}  # access token -> expiry (unix seconds)

    # --- the service account ------------------------------------------------------------------

    def service_account(self, path: Path) -> Path:
        """Write the key file of this stand-in's service account to ``path``."""
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        path.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": self.project_id,
                    "private_key_id": self.key_id,
                    "private_key": pem,
                    "client_email": self.client_email,
                    "client_id": "1" * 21,
                    "token_uri": f"{self.base_url}{TOKEN_PATH}",
                }
            )
        )
        return path

    def revoke_tokens(self) -> None:
        """Forget every access token issued (FCM answers 401 to them from now on)."""
        self._issued.clear()

    # --- the API ----------------------------------------------------------------------------

    def is_send(self, request: RecordedRequest) -> bool:
        return request.method == "POST" and _SEND.match(request.path) is not None

    def token_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests() if r.path == TOKEN_PATH]

    def error_reply(self, status: int) -> Reply:
        return fcm_error(status, f"HTTP {status}")

    def answer(self, request: RecordedRequest) -> Reply:
        if request.method == "POST" and request.path == TOKEN_PATH:
            return self._token(request)
        match = _SEND.match(request.path)
        if request.method != "POST" or match is None:
            return fcm_error(404, "Not Found", "UNSPECIFIED_ERROR")
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if self._issued.get(bearer, 0.0) <= time.time():
            return fcm_error(
                401, "Request had invalid authentication credentials.", "UNSPECIFIED_ERROR"
            )
        if match["project"] != self.project_id:
            return fcm_error(403, "Permission denied on the project.", "UNSPECIFIED_ERROR")
        try:
            message = request.json()["message"]
            token = message["token"]
        except (ValueError, KeyError, TypeError):
            return fcm_error(400, "Invalid JSON payload received.")
        data = message.get("data", {})
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            return fcm_error(400, "Invalid value at 'message.data': values must be strings.")
        apns_headers = (message.get("apns") or {}).get("headers", {})
        if not isinstance(apns_headers, dict) or not all(
            isinstance(v, str) for v in apns_headers.values()
        ):
            return fcm_error(400, "Invalid value at 'message.apns.headers'.")
        tag = ((message.get("android") or {}).get("notification") or {}).get("tag", "")
        if not isinstance(tag, str):
            return fcm_error(400, "Invalid value at 'message.android.notification.tag'.")
        if not isinstance(token, str) or not token:
            return fcm_error(400, "The registration token is not a valid FCM registration token")
        if token in self.unregistered:
            return fcm_error(404, "Requested entity was not found.", "UNREGISTERED")
        return Reply.json(
            200, {"name": f"projects/{self.project_id}/messages/0:{secrets.token_hex(8)}"}
        )

    def _token(self, request: RecordedRequest) -> Reply:
        form = request.form()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return Reply.json(400, {"error": "unsupported_grant_type"})
        try:
            claims: dict[str, Any] = jwt.decode(
                form.get("assertion", ""),
                self._key.public_key(),
                algorithms=["RS256"],
                audience=f"{self.base_url}{TOKEN_PATH}",
                issuer=self.client_email,
                leeway=300,  # the clock skew Google tolerates
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.PyJWTError as error:
            return Reply.json(
                400, {"error": "invalid_grant", "error_description": f"Invalid JWT: {error}"}
            )
        if claims.get("scope") != SCOPE or claims["exp"] - claims["iat"] > 3600:
            return Reply.json(400, {"error": "invalid_scope"})
        token = "ya29.stand-in-" + secrets.token_urlsafe(24)
        self._issued[token] = time.time() + self.expires_in
        return Reply.json(
            200, {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}
        )
