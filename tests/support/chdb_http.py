"""A ClickHouse HTTP interface in front of chdb, for tests of code that talks to ClickHouse.

No modern ClickHouse server can be installed on these machines (see ENVIRONMENT.md), so tests of
the clickhouse-connect path talk to this front instead. The engine does all the work: the front
only passes SQL, data, settings and the output format through and answers with the engine's bytes
and the headers clickhouse-connect reads (summary, query id, format, timezone, exception code).
Clients must use ``compress=False``.

It runs in a subprocess because chdb lets one process open only one data directory at a time,
and tests in the parent process open their own. ``ChdbHttpFront.stop()`` and ``start()`` on the
same port and directory give a real outage and recovery.

    python -m tests.support.chdb_http --path DIR --port PORT
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from adapters.analytics.store import open_chdb_session
from tests.support.services import answers, free_port

REPO = Path(__file__).resolve().parents[2]

# URL parameters of the ClickHouse HTTP interface that are not engine settings.
_TRANSPORT_PARAMS = frozenset(
    {
        "query",
        "database",
        "default_format",
        "query_id",
        "session_id",
        "session_timeout",
        "session_check",
        "user",
        "password",
        "quota_key",
        "compress",
        "decompress",
        "enable_http_compression",
        "client_protocol_version",
        "buffer_size",
        "wait_end_of_query",
        "send_progress_in_http_headers",
        "http_headers_progress_interval_ms",
    }
)
_INSERT_WITH_FORMAT = re.compile(
    r"^\s*(?P<statement>INSERT\s+INTO\s+.+?)\s+FORMAT\s+(?P<format>\w+)\s*$",
    re.IGNORECASE | re.DOTALL,
)
_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_ERROR_CODE = re.compile(r"Code:\s*(\d+)")


@dataclass
class _Outcome:
    body: bytes
    summary: dict[str, str]
    result_format: str


class _Engine:
    """One chdb engine; each request gets its own session so settings never leak between them."""

    def __init__(self, path: Path) -> None:
        self._path = path
        # Held open for the life of the front: the engine stays up between requests.
        self._anchor = open_chdb_session(path)
        self._lock = threading.Lock()

    def execute(self, params: dict[str, str], body: bytes) -> _Outcome:
        statement, data = _split_request(params.get("query", ""), body)
        settings = {k: v for k, v in params.items() if k not in _TRANSPORT_PARAMS}
        bound = {k[len("param_") :]: v for k, v in settings.items() if k.startswith("param_")}
        settings = {k: v for k, v in settings.items() if not k.startswith("param_")}
        default_format = params.get("default_format", "TabSeparated")
        with self._lock:
            session = open_chdb_session(self._path)
            try:
                session.query("SET session_timezone = 'UTC'")
                for name, value in settings.items():
                    session.query(f"SET {_identifier(name)} = {_literal(value)}")
                if database := params.get("database"):
                    session.query(f"USE {_identifier(database)}")
                insert = _INSERT_WITH_FORMAT.match(statement) if data else None
                if insert is not None:
                    with session.send_insert(insert["statement"], insert["format"]) as inserter:
                        inserter.append(data)
                        written = inserter.finish()
                    return _Outcome(
                        b"",
                        _summary(0, 0, written.rows_written, written.bytes_written, 0),
                        default_format,
                    )
                sql = f"{statement}\n{data.decode()}" if data else statement
                trailing = _TRAILING_FORMAT.search(sql)
                result_format = trailing.group(1) if trailing else default_format
                result = session.query(sql, result_format, params=bound or None)
                return _Outcome(
                    result.bytes(),
                    _summary(
                        result.rows_read(),
                        result.bytes_read(),
                        result.rows_written(),
                        result.bytes_written(),
                        int(result.elapsed() * 1e9),
                    ),
                    result_format,
                )
            finally:
                session.close()


def _split_request(query: str, body: bytes) -> tuple[str, bytes]:
    """(statement, data) the way ClickHouse reads them: the URL's query, then the body."""
    if query:
        return query, body
    head, newline, rest = body.partition(b"\n")
    if newline and _INSERT_WITH_FORMAT.match(head.decode(errors="replace")):
        return head.decode(), rest
    return body.decode(), b""


def _identifier(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"bad setting or database name {name!r}")
    return name


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _summary(
    read_rows: int, read_bytes: int, written_rows: int, written_bytes: int, elapsed_ns: int
) -> dict[str, str]:
    return {
        "read_rows": str(read_rows),
        "read_bytes": str(read_bytes),
        "written_rows": str(written_rows),
        "written_bytes": str(written_bytes),
        "total_rows_to_read": str(read_rows),
        "result_rows": str(written_rows or read_rows),
        "result_bytes": str(written_bytes or read_bytes),
        "elapsed_ns": str(elapsed_ns),
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    engine: _Engine

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        if url.path in ("/ping", "/") and not body and "query" not in params:
            self._reply(200, b"Ok.\n", {})
            return
        query_id = params.get("query_id") or str(uuid.uuid4())
        headers = {"X-ClickHouse-Query-Id": query_id, "X-ClickHouse-Timezone": "UTC"}
        try:
            outcome = self.engine.execute(params, body)
        except Exception as exc:  # the engine's message is the response, as ClickHouse does
            message = str(exc)
            code = _ERROR_CODE.search(message)
            headers["X-ClickHouse-Exception-Code"] = code.group(1) if code else "1000"
            self._reply(500, f"{message}\n".encode(), headers)
            return
        headers["X-ClickHouse-Format"] = outcome.result_format
        headers["X-ClickHouse-Summary"] = orjson.dumps(outcome.summary).decode()
        self._reply(200, outcome.body, headers)

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-ClickHouse-Server-Display-Name", "chdb-http-front")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def serve(path: Path, port: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    handler = type("Handler", (_Handler,), {"engine": _Engine(path)})
    with ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        server.daemon_threads = True
        server.serve_forever()


@dataclass
class ChdbHttpFront:
    """The front as a subprocess on ``port``, its data in ``path`` (kept across restarts)."""

    path: Path
    port: int = field(default_factory=free_port)
    start_timeout_s: float = 20.0
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?compress=false"

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.chdb_http",
                "--path",
                str(self.path),
                "--port",
                str(self.port),
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + self.start_timeout_s
        while not answers(self.port):
            if self._process.poll() is not None:
                stderr = self._process.stderr.read().decode() if self._process.stderr else ""
                raise RuntimeError(f"chdb HTTP front exited: {stderr}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"chdb HTTP front not answering on port {self.port}")
            time.sleep(0.05)

    def pause(self) -> None:
        """Freezes the server (SIGSTOP): connections open, requests never answered."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.send_signal(signal.SIGCONT)
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()

    def __enter__(self) -> ChdbHttpFront:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--path", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve(args.path, args.port)


if __name__ == "__main__":
    main()
