"""What every vendor stand-in shares: recording, programmed faults, a control API, a server.

A stand-in is an ASGI app served by hypercorn on a free loopback port (HTTP/1.1, and HTTP/2
with prior knowledge, which APNs needs). It answers as the vendor documents, records every
request it received (method, path, headers, body and what it answered), and can be told to
answer the next N calls with a status (429 with Retry-After, 500, 400...), slowly, or both;
or to act on them at once and hold the answer back (``hold_s``): the vendor took the message
and the client, if it gives up or dies meanwhile, never learns it.

In a test, run it in a thread:

    with SendGridStandIn(api_key="SG.test").serve() as sendgrid:
        ... CE_SENDGRID_BASE_URL = sendgrid.base_url ...
        assert len(sendgrid.accepted()) == 1

For processes started as a user would (``campaign-express up``), run it in a subprocess with
``StandInProcess`` and read it through the same calls over its control API (``/_standin/...``).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Generic, Self, TypeVar
from urllib.parse import parse_qsl

import orjson
from hypercorn.asyncio import serve
from hypercorn.config import Config

CONTROL_PREFIX = "/_standin/"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

log = logging.getLogger("tests.vendors")

S = TypeVar("S", bound="StandIn")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the stand-in received it, and the status it answered."""

    method: str
    path: str
    query: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    http_version: str
    status: int = 0  # what the stand-in answered
    reply_headers: dict[str, str] = field(default_factory=dict)
    reply_body: bytes = b""

    def json(self) -> Any:
        return orjson.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))

    def reply_json(self) -> Any:
        return orjson.loads(self.reply_body)

    def to_wire(self) -> dict[str, Any]:
        return asdict(self) | {
            "body": base64.b64encode(self.body).decode(),
            "reply_body": base64.b64encode(self.reply_body).decode(),
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> RecordedRequest:
        return cls(
            **(
                data
                | {
                    "body": base64.b64decode(data["body"]),
                    "reply_body": base64.b64decode(data["reply_body"]),
                }
            )
        )


@dataclass
class Fault:
    """How to answer one coming request: ``status`` None answers normally (after the delay)."""

    status: int | None = None
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None  # None: the vendor's own error body for the status
    path_contains: str | None = None  # only requests whose path contains this
    hold_s: float = 0.0  # after acting on the request (and recording it), before answering


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, value: Any, headers: dict[str, str] | None = None) -> Reply:
        return cls(
            status, orjson.dumps(value), {"content-type": "application/json"} | (headers or {})
        )


class StandIn:
    """Base of the vendor stand-ins: subclasses say how the vendor answers."""

    vendor: ClassVar[str]

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._faults: collections.deque[Fault] = collections.deque()
        self._holding = 0  # answers held back right now
        self._closing = threading.Event()
        self.base_url = ""  # set when served

    # --- what the vendor does (subclasses) --------------------------------------------------

    def answer(self, request: RecordedRequest) -> Reply:
        raise NotImplementedError

    def error_reply(self, status: int) -> Reply:
        """The vendor's error answer for ``status`` (a programmed fault)."""
        return Reply.json(status, {"error": f"HTTP {status}"})

    def is_send(self, request: RecordedRequest) -> bool:
        """Whether ``request`` asked the vendor to deliver a message."""
        raise NotImplementedError

    def http_version_refused(self, request: RecordedRequest) -> Reply | None:
        return None

    def extra_control(self, action: str, request: RecordedRequest) -> Reply | None:
        """Vendor-specific control actions (signed callbacks for a subprocess's clients)."""
        return None

    # --- what tests use -----------------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int | None = None,
        retry_after: str | None = None,
        delay_s: float = 0.0,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        path_contains: str | None = None,
        hold_s: float = 0.0,
    ) -> None:
        """Answer the next ``count`` requests (matching ``path_contains``) with ``status``
        (and Retry-After), after ``delay_s``; ``status`` None answers normally, late.
        ``hold_s``: act on the request, record it, then hold the answer that long."""
        extra = dict(headers or {})
        if retry_after is not None:
            extra["retry-after"] = retry_after
        with self._lock:
            for _ in range(count):
                self._faults.append(Fault(status, delay_s, extra, body, path_contains, hold_s))

    def holding(self) -> int:
        """How many answers are held back right now (``fail_next(hold_s=...)``)."""
        with self._lock:
            return self._holding

    def requests(self, path_contains: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            found = list(self._requests)
        return [r for r in found if path_contains is None or path_contains in r.path]

    def accepted(self) -> list[RecordedRequest]:
        """The messages the vendor accepted for delivery (each counted once per request)."""
        return [r for r in self.requests() if self.is_send(r) and 200 <= r.status < 300]

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._faults.clear()

    def serve(self, port: int = 0) -> ServerThread[Self]:
        """A server for this stand-in (a free port by default):
        ``with stand_in.serve() as running: ...``."""
        return ServerThread(self, port=port)

    # --- ASGI ------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        request = RecordedRequest(
            method=scope["method"],
            path=scope["path"],
            query=scope["query_string"].decode(),
            headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
            body=b"".join(chunks),
            http_version=scope["http_version"],
        )
        if request.path.startswith(CONTROL_PREFIX):
            reply = self._control(request)
        else:
            fault = self._take_fault(request.path)
            reply = await self._vendor_reply(request, fault)
            with self._lock:
                self._requests.append(_answered(request, reply))
            if fault is not None and fault.hold_s:
                await self._hold(fault.hold_s)
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [(k.encode(), v.encode()) for k, v in reply.headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": reply.body})

    async def _vendor_reply(self, request: RecordedRequest, fault: Fault | None) -> Reply:
        if fault is not None and fault.delay_s:
            await self._pause(fault.delay_s)
        if fault is not None and fault.status is not None:
            reply = self.error_reply(fault.status)
            body = fault.body if fault.body is not None else reply.body
            return Reply(fault.status, body, reply.headers | fault.headers)
        refused = self.http_version_refused(request)
        if refused is not None:
            return refused
        try:
            return self.answer(request)
        except Exception:  # a stand-in bug must show in the test, not as a hung client
            log.exception("%s stand-in failed on %s %s", self.vendor, request.method, request.path)
            return Reply(500, b"stand-in error")

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.path_contains is None or fault.path_contains in path:
                    self._faults.remove(fault)
                    return fault
        return None

    async def _hold(self, seconds: float) -> None:
        with self._lock:
            self._holding += 1
        try:
            await self._pause(seconds)
        finally:
            with self._lock:
                self._holding -= 1

    async def _pause(self, seconds: float) -> None:
        # Polls rather than sleeping once so that stopping the server ends the wait.
        deadline = time.monotonic() + seconds
        while not self._closing.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(min(0.05, max(deadline - time.monotonic(), 0)))

    def _control(self, request: RecordedRequest) -> Reply:
        action = request.path.removeprefix(CONTROL_PREFIX)
        if action == "requests" and request.method == "GET":
            return Reply.json(200, [r.to_wire() for r in self.requests()])
        if action == "accepted" and request.method == "GET":
            return Reply.json(200, [r.to_wire() for r in self.accepted()])
        if action == "holding" and request.method == "GET":
            return Reply.json(200, {"holding": self.holding()})
        if action == "faults" and request.method == "POST":
            spec = request.json()
            self.fail_next(
                int(spec.get("count", 1)),
                status=spec.get("status"),
                retry_after=spec.get("retry_after"),
                delay_s=float(spec.get("delay_s", 0.0)),
                path_contains=spec.get("path_contains"),
                hold_s=float(spec.get("hold_s", 0.0)),
            )
            return Reply(204)
        if action == "reset" and request.method == "POST":
            self.reset()
            return Reply(204)
        return self.extra_control(action, request) or Reply(404, b"unknown control action")


def _answered(request: RecordedRequest, reply: Reply) -> RecordedRequest:
    return RecordedRequest(
        **(
            asdict(request)
            | {
                "status": reply.status,
                "reply_headers": dict(reply.headers),
                "reply_body": reply.body,
            }
        )
    )


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class ServerThread(Generic[S]):
    """A stand-in served by hypercorn on a free loopback port, in a thread of its own."""

    def __init__(self, stand_in: S, host: str = "127.0.0.1", port: int = 0) -> None:
        self.stand_in = stand_in
        self._host = host
        self._requested_port = port
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._shutdown: asyncio.Event | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def start(self) -> S:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self._host, self._requested_port))
        # Listening before the server runs: early connections wait in the backlog.
        listener.listen(128)
        self.port = listener.getsockname()[1]
        config = Config()
        config.bind = [f"fd://{listener.detach()}"]  # hypercorn owns and closes it
        config.graceful_timeout = 2.0
        config.accesslog = None
        config.errorlog = log
        self._loop = asyncio.new_event_loop()
        self._shutdown = asyncio.Event()
        shutdown = self._shutdown

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(
                    serve(self.stand_in, config, shutdown_trigger=shutdown.wait)  # type: ignore[arg-type]
                )
            finally:
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
                self._loop.close()

        self._thread = threading.Thread(target=run, name=f"{self.stand_in.vendor}-stand-in")
        self._thread.start()
        self.stand_in.base_url = self.base_url
        return self.stand_in

    def stop(self) -> None:
        if self._thread is None or self._loop is None or self._shutdown is None:
            return
        self.stand_in._closing.set()
        self._loop.call_soon_threadsafe(self._shutdown.set)
        self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> S:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
