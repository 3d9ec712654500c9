"""The real services tests talk to: Redis, NATS with JetStream and PostgreSQL on loopback.

Every development and CI machine runs them; when one is not answering, it is started here with
the same command the machine uses at boot.
"""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    start: tuple[str, ...]


REDIS = Service(
    "redis",
    6379,
    (
        "redis-server",
        "--daemonize",
        "yes",
        "--bind",
        "127.0.0.1",
        "-::1",
        "--port",
        "6379",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        "/var/lib/redis",
        "--logfile",
        "/var/log/redis/ci.log",
    ),
)
NATS = Service(
    "nats",
    4222,
    (
        "start-stop-daemon",
        "--start",
        "--oknodo",
        "--background",
        "--exec",
        "/usr/sbin/nats-server",
        "--",
        "-a",
        "127.0.0.1",
        "-p",
        "4222",
        "-js",
        "-sd",
        "/var/lib/nats-server",
        "-l",
        "/var/log/nats-server.log",
    ),
)
POSTGRES = Service("postgres", 5432, ())

# The relational backends every repository test runs on.
BACKENDS = ["sqlite", "postgresql"]


def answers(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _postgres_start_command() -> tuple[str, ...]:
    versions = sorted(p.name for p in Path("/etc/postgresql").iterdir())
    return ("pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start")


def ensure(service: Service, wait_s: float = 15.0) -> None:
    if answers(service.port):
        return
    command = service.start or _postgres_start_command()
    subprocess.run(command, check=False, capture_output=True)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if answers(service.port):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{service.name} is not answering on 127.0.0.1:{service.port}")


# Ports below the kernel's ephemeral range, so no outgoing connection can take one as its source
# port between free_port() and the server's bind (CI saw gRPC lose 127.0.0.1:59411 that way while
# a Temporal dev server opened its connections). Lowest port tried; the range's top is read below.
_LOWEST_TEST_PORT = 10_000
_handed_out: set[int] = set()
_draw = random.Random()  # its own: a test seeding the global one must not repeat our picks


def _ephemeral_ports_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def _bindable(port: int) -> bool:
    # Every interface, as the time-skipping test server binds; no SO_REUSEADDR, so a port with
    # connections lingering in TIME_WAIT is refused too.
    with socket.socket() as probe:
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A loopback port nothing is bound to, not handed out before in this process."""
    candidates = range(_LOWEST_TEST_PORT, _ephemeral_ports_start())
    if len(candidates) < 1_000:  # a machine whose ephemeral range starts low: take the kernel's
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            kernel_port: int = probe.getsockname()[1]
            _handed_out.add(kernel_port)
            return kernel_port
    for _ in range(200):
        port = _draw.choice(candidates)
        if port not in _handed_out and _bindable(port):
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free loopback port in {candidates}")


class PrivateRedis:
    """A redis-server of a test's own, on a free port, that the test may stop and restart.

    Tests that take Redis away must not take it from every other test.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateRedis:
        self._process = subprocess.Popen(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not answers(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError("private redis-server did not start")
            time.sleep(0.05)
        return self

    def pause(self) -> None:
        """Freeze the server: connections stay open, nothing answers (a hung dependency)."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)
            self._process.kill()
            self._process.wait()
            self._process = None
