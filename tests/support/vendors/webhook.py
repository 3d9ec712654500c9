"""A customer's endpoint for our signed webhooks.

It checks what a receiver following our documentation would: ``X-CE-Timestamp`` within five
minutes, and ``X-CE-Signature`` equal to ``sha256=`` + hex HMAC-SHA256 of ``"<timestamp>." +
body`` under the shared secret (computed here independently of the sender's code). Good
requests get 200, others 401; all are recorded.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import ClassVar

from tests.support.vendors.base import RecordedRequest, Reply, StandIn

TOLERANCE_S = 300


class WebhookReceiver(StandIn):
    vendor: ClassVar[str] = "webhook"

    def __init__(self, secret: str = "stand-in-webhook-secret", path: str = "/hooks/ce") -> None:
        super().__init__()
        self.secret = secret
        self.path = path

    @property
    def url(self) -> str:
        return f"{self.base_url}{self.path}"

    def is_send(self, request: RecordedRequest) -> bool:
        return request.method == "POST" and request.path == self.path

    def error_reply(self, status: int) -> Reply:
        return Reply(status, f"HTTP {status}".encode(), {"content-type": "text/plain"})

    def signature_valid(self, request: RecordedRequest) -> bool:
        timestamp = request.headers.get("x-ce-timestamp", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > TOLERANCE_S:
            return False
        mac = hmac.new(
            self.secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256
        )
        return hmac.compare_digest(
            f"sha256={mac.hexdigest()}", request.headers.get("x-ce-signature", "")
        )

    def answer(self, request: RecordedRequest) -> Reply:
        if not self.is_send(request):
            return Reply(404, b"no such hook")
        if not self.signature_valid(request):
            return Reply(401, b"bad signature")
        return Reply(200, b"ok")
