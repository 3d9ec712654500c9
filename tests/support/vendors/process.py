"""A stand-in in a subprocess, for processes started as a user would, and its remote control.

with StandInProcess("sendgrid", {"api_key": "SG.e2e"}, log=tmp_path / "sendgrid.log") as sg:
    env["CE_SENDGRID_BASE_URL"] = sg.base_url
    ...
    assert len(sg.accepted()) == 1
    body, headers = sg.signed_event(0, "open")   # an Event Webhook POST to send to the API

python -m tests.support.vendors sendgrid --config '{"api_key": "..."}' --url-file PATH
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import orjson

from tests.support.vendors.base import CONTROL_PREFIX, RecordedRequest

REPO = Path(__file__).resolve().parents[3]


class RemoteStandIn:
    """The test-facing calls of a ``StandIn``, over its control API."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def _call(self, method: str, action: str, payload: Any = None) -> httpx.Response:
        response = httpx.request(
            method, f"{self.base_url}{CONTROL_PREFIX}{action}", json=payload, timeout=10
        )
        response.raise_for_status()
        return response

    def requests(self, path_contains: str | None = None) -> list[RecordedRequest]:
        found = [RecordedRequest.from_wire(item) for item in self._call("GET", "requests").json()]
        return [r for r in found if path_contains is None or path_contains in r.path]

    def accepted(self) -> list[RecordedRequest]:
        return [RecordedRequest.from_wire(item) for item in self._call("GET", "accepted").json()]

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int | None = None,
        retry_after: str | None = None,
        delay_s: float = 0.0,
        path_contains: str | None = None,
        hold_s: float = 0.0,
    ) -> None:
        self._call(
            "POST",
            "faults",
            {
                "count": count,
                "status": status,
                "retry_after": retry_after,
                "delay_s": delay_s,
                "path_contains": path_contains,
                "hold_s": hold_s,
            },
        )

    def holding(self) -> int:
        """Answers held back right now: requests acted on whose client has no answer yet."""
        return int(self._call("GET", "holding").json()["holding"])

    def reset(self) -> None:
        self._call("POST", "reset")

    def public_key(self) -> str:
        """SendGrid: the Event Webhook verification key (CE_SENDGRID_WEBHOOK_PUBLIC_KEY)."""
        return str(self._call("GET", "public-key").json()["public_key"])

    def signed_event(
        self, accepted_index: int, kind: str, **fields: Any
    ) -> tuple[bytes, dict[str, str]]:
        """SendGrid: an Event Webhook POST (body, headers) about an accepted message."""
        answer = self._call(
            "POST",
            "signed-event",
            {"accepted_index": accepted_index, "kind": kind, "fields": fields},
        ).json()
        return answer["body"].encode(), answer["headers"]

    def status_callback(
        self, accepted_index: int, status: str, error_code: str | None = None
    ) -> tuple[str, bytes, dict[str, str]]:
        """Twilio: the status callback (url, body, headers) of an accepted message."""
        answer = self._call(
            "POST",
            "status-callback",
            {"accepted_index": accepted_index, "status": status, "error_code": error_code},
        ).json()
        return answer["url"], answer["body"].encode(), answer["headers"]


class StandInProcess:
    """``python -m tests.support.vendors <vendor>`` on a free port, stopped on exit."""

    def __init__(self, vendor: str, config: dict[str, Any] | None = None, *, log: Path) -> None:
        self.vendor = vendor
        self.config = config or {}
        self.log = log
        self._url_file = log.with_suffix(".url")
        self._process: subprocess.Popen[bytes] | None = None
        self.remote: RemoteStandIn | None = None

    def start(self, timeout_s: float = 30) -> RemoteStandIn:
        self._url_file.unlink(missing_ok=True)
        with self.log.open("wb") as output:
            self._process = subprocess.Popen(
                [
                    sys.executable, "-m", "tests.support.vendors", self.vendor,
                    "--config", orjson.dumps(self.config).decode(),
                    "--url-file", str(self._url_file),
                ],
                cwd=REPO,
                env={k: v for k, v in os.environ.items() if not k.startswith("CE_")},
                stdout=output,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while not self._url_file.exists() or not self._url_file.read_text().strip():
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.vendor} stand-in exited:\n{self.log.read_text()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{self.vendor} stand-in did not start:\n{self.log.read_text()}")
            time.sleep(0.05)
        self.remote = RemoteStandIn(self._url_file.read_text().strip())
        return self.remote

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def __enter__(self) -> RemoteStandIn:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
