"""The bid path under load, against a baseline measured in the same run.

Three targets, each loaded by wrk at the same fixed concurrency with the same OpenRTB body (a
300x250 banner whose user is one of the demo profiles):

  (a) baseline  a bare Starlette route that only parses the body with orjson (bench/baseline_app.py)
  (b) inproc    `campaign-express up` (embedded defaults) scoring 16 candidates per request
  (c) nats      `campaign-express api` forwarding over NATS to `campaign-express bidder` processes
                (Redis holds the shared ledger)

The machines here are shared and their speed drifts by tens of percent within minutes, so the
baseline is not measured once up front: it runs beside (b), and beside (c), and the two take
turns, ``--rounds`` times each; the turn whose ratio is the median one is reported, baseline
and target from the same turn. While one is loaded the other is stopped (SIGSTOP to its process
groups, `up`'s Temporal dev server's included), so `up`'s background work does not tax the
baseline.

It prints req/s, p50 and p99 for each and the ratios b/a and c/a, then p99 for (b) held at 80 %
of its peak rate. Server processes are pinned to CPU 1 and wrk to CPU 0, so each target gets
one core and the load generator the other (the machine has two; NATS and Redis float).

Needs wrk (Debian: apt-get install wrk), and for (c) Redis and NATS on their standard ports.
Run from the repository root:

    .venv/bin/python bench/bid.py [--duration 10] [--rounds 3] [--connections 32] [--skip-nats]
                                  [--profile]

--profile records (b) with py-spy for 10 s and prints the hottest functions.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import nats
from measure import py_spy_stacks  # beside this script: bench/
from nats.js.errors import NotFoundError

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WRK_SCRIPT = REPO / "bench" / "wrk_bid.lua"
SERVER_CPU = "1"
WRK_CPU = "0"
DEMO_PROFILES = 100_000
USERS_IN_LOAD = 20_000
NATS_URL = "nats://127.0.0.1:4222"
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def delete_stream(name: str) -> None:
    """The bidders' analytics stream: nothing reads it after the run."""

    async def delete() -> None:
        client = await nats.connect(NATS_URL)
        try:
            with contextlib.suppress(NotFoundError):
                await client.jetstream().delete_stream(name)
        finally:
            await client.close()

    asyncio.run(delete())


@dataclass(frozen=True)
class Load:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int


def _latency_ms(text: str, label: str) -> float:
    match = re.search(rf"^\s*{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no {label} latency:\n{text}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(url: str, duration_s: int, connections: int, *script_args: str) -> Load:
    command = [
        "taskset", "-c", WRK_CPU, "wrk", "-t1", f"-c{connections}", f"-d{duration_s}s",
        "--latency", "-s", str(WRK_SCRIPT), url, "--", f"users={USERS_IN_LOAD}", *script_args,
    ]  # fmt: skip
    text = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if rate is None:
        raise RuntimeError(f"wrk printed no rate:\n{text}")
    return Load(
        requests_per_s=float(rate.group(1)),
        p50_ms=_latency_ms(text, "50%"),
        p99_ms=_latency_ms(text, "99%"),
        non_2xx=int(errors.group(1)) if errors else 0,
    )


@contextmanager
def server(
    args: list[str], env: Mapping[str, str], log: Path, ready_url: str
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, *args],
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
            process_group=0,  # its own group, so frozen() stops its children too
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{args} did not come up:\n{log.read_text()}")
                try:
                    if httpx.get(ready_url, timeout=1).status_code < 500:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            if process.poll() is not None:  # something else answered: a leftover on our port
                raise RuntimeError(f"{args} exited; is another server on {ready_url}?")
            yield process
        finally:
            stop_group(process)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process's group, then ``await_exit``."""
    tell_to_stop(process)
    await_exit(process)


def tell_to_stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process's group, woken too in case it is stopped."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
        os.killpg(process.pid, signal.SIGCONT)


def await_exit(process: subprocess.Popen[bytes]) -> None:
    """The process gone, its group killed if it takes longer than 30 s."""
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def dev_server_pid(home: Path) -> int | None:
    """The Temporal dev server `up` started (in a session of its own, on `up`'s CPU)."""
    try:
        return int(json.loads((home / "temporal.pid").read_text())["server"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def metric(metrics_url: str, name: str) -> float:
    total = 0.0
    for line in httpx.get(metrics_url, timeout=5).text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


@contextmanager
def frozen(groups: list[int]) -> Iterator[None]:
    """Process groups (by leader pid) stopped, taking no CPU, until the block ends."""
    stopped: list[int] = []
    try:
        for group in groups:
            os.killpg(group, signal.SIGSTOP)
            stopped.append(group)
        yield
    finally:
        for group in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGCONT)


def take_turns(
    baseline: tuple[str, list[int]],
    target: tuple[str, list[int]],
    rounds: int,
    duration_s: int,
    connections: int,
) -> tuple[Load, Load]:
    """The baseline and a target, loaded in turn ``rounds`` times, each while the other is
    stopped: the turn (baseline, target) whose ratio is the median one."""
    loads: tuple[list[Load], list[Load]] = ([], [])
    for url, _ in (baseline, target):
        run_wrk(url, 5, connections)  # warm-up: caches, allocator and pools settle
    for _ in range(rounds):
        for (url, _groups), (_, others), into in (
            (baseline, target, loads[0]),
            (target, baseline, loads[1]),
        ):
            with frozen(others):
                into.append(run_wrk(url, duration_s, connections))
    print(
        "  turns, req/s: "
        + ", ".join(
            f"{a.requests_per_s:.0f}/{t.requests_per_s:.0f}" for a, t in zip(*loads, strict=True)
        )
        + " (baseline/target)",
        flush=True,
    )
    turns = sorted(
        zip(*loads, strict=True), key=lambda turn: turn[1].requests_per_s / turn[0].requests_per_s
    )
    return turns[len(turns) // 2]


def at_rate(url: str, target: float, duration_s: int, connections: int) -> Load:
    """Hold ``target`` req/s (within 5 %): each connection pauses between requests (wrk has no
    -R), the pause found by a few short runs, as latency moves with the rate."""
    pause = 1000 * connections / target
    for _ in range(4):
        probe = run_wrk(url, 5, connections, f"delay={round(pause)}")
        if probe.requests_per_s <= 0 or abs(probe.requests_per_s / target - 1) <= 0.05:
            break
        # Each connection's cycle is pause + latency: scale the pause to the wanted cycle.
        cycle_ms = 1000 * connections / probe.requests_per_s
        pause = max(0.0, pause + 1000 * connections / target - cycle_ms)
    return run_wrk(url, duration_s, connections, f"delay={round(pause)}")


def profile(pid: int, seconds: int, url: str, connections: int) -> None:
    py_spy = BIN / "py-spy"
    out = Path(tempfile.mkdtemp()) / "profile.txt"
    load = subprocess.Popen(
        ["taskset", "-c", WRK_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds + 4}s",
         "-s", str(WRK_SCRIPT), url, "--", f"users={USERS_IN_LOAD}"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(2)
    subprocess.run(
        [str(py_spy), "record", "-p", str(pid), "-d", str(seconds), "-r", "250", "-f", "raw",
         "-o", str(out), "--nonblocking"],
        check=True, capture_output=True,
    )  # fmt: skip
    load.wait()
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for frames, samples in py_spy_stacks(out):
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    print(f"\npy-spy, {total} samples of the `up` process under load")
    print("  self  function")
    for frame, samples in own.most_common(20):
        print(f"{100 * samples / total:5.1f}%  {frame[:110]}")
    print(" incl.  function (our code)")
    ours = [
        (frame, samples)
        for frame, samples in inclusive.most_common()
        if any(f"{package}/" in frame for package in ("domain", "adapters", "api", "inference"))
    ]
    for frame, samples in ours[:25]:
        print(f"{100 * samples / total:5.1f}%  {frame[:110]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--rounds", type=int, default=3, help="turns of baseline and target")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--agents", type=int, default=8, help="agents per bidder process (c)")
    parser.add_argument("--bidders", type=int, default=1, help="bidder processes (c)")
    parser.add_argument("--skip-nats", action="store_true", help="measure (a) and (b) only")
    parser.add_argument("--profile", action="store_true", help="py-spy the (b) process")
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/bid.py needs wrk on PATH (Debian: apt-get install wrk)")
    # The servers are in process groups of their own, out of reach of the terminal's signals:
    # a SIGTERM or hangup must unwind through the finally blocks that stop them.
    for stop in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop, lambda number, frame: sys.exit(128 + number))

    home = Path(tempfile.mkdtemp(prefix="ce-bench-"))
    cli = str(BIN / "campaign-express")
    base_env = {
        "CE_HOME": str(home),
        "CE_LOG_LEVEL": "WARNING",
        "CE_API_PORT": "18080",
        "CE_GRPC_PORT": "19090",
        "CE_METRICS_PORT": "19091",
    }
    url = "http://127.0.0.1:18080/v1/bid"
    baseline_url = "http://127.0.0.1:18079/v1/bid"
    metrics_url = "http://127.0.0.1:19091/metrics"
    print(f"loading the demo tenant ({DEMO_PROFILES:,} profiles) into {home} ...", flush=True)
    subprocess.run(
        [cli, "demo", "--profiles", str(DEMO_PROFILES)],
        env={**os.environ, **base_env},
        check=True,
        capture_output=True,
    )
    results: dict[str, tuple[Load, Load]] = {}  # target: (it, the baseline) in the median turn
    turns = (options.rounds, options.duration, options.connections)

    with server(
        [str(BIN / "uvicorn"), "--app-dir", str(REPO), "bench.baseline_app:app", "--port", "18079",
         "--log-level", "warning", "--no-access-log"],
        {}, home / "baseline.log", "http://127.0.0.1:18079/docs",
    ) as bare:  # fmt: skip
        with server([cli, "up"], base_env, home / "up.log", "http://127.0.0.1:18080/health") as up:
            print("(b) against (a)", flush=True)
            groups = [up.pid] + [pid for pid in [dev_server_pid(home)] if pid is not None]
            a, b = take_turns((baseline_url, [bare.pid]), (url, groups), *turns)
            results["b  /v1/bid inproc"] = (b, a)
            rows = metric(metrics_url, "campaign_inference_batch_rows_sum")
            requests = metric(metrics_url, "campaign_bid_requests_total")
            bids = metric(metrics_url, 'campaign_bid_requests_total{outcome="bid"}')
            with frozen([bare.pid]):
                paced = at_rate(url, 0.8 * b.requests_per_s, options.duration, options.connections)
                if options.profile:
                    profile(up.pid, 10, url, options.connections)

        if not options.skip_nats:
            nats_env = base_env | {
                "CE_BID_TRANSPORT": "nats",
                "CE_NATS_URL": NATS_URL,
                "CE_REDIS_URL": "redis://127.0.0.1:6379/12",
                "CE_BID__NATS_SUBJECT": f"bench-bids-{os.getpid()}",
                "CE_ANALYTICS__STREAM": f"bench-analytics-{os.getpid()}",
                "CE_ANALYTICS__SUBJECT": f"bench-analytics-{os.getpid()}.events",
            }
            bidders: list[subprocess.Popen[bytes]] = []
            try:
                for n in range(options.bidders):
                    bidders.append(
                        subprocess.Popen(
                            ["taskset", "-c", SERVER_CPU, cli, "bidder", "--agents",
                             str(options.agents)],
                            env={**os.environ, **nats_env, "CE_METRICS_PORT": str(19100 + n)},
                            stdout=(home / f"bidder-{n}.log").open("wb"),
                            stderr=subprocess.STDOUT,
                            process_group=0,
                        )
                    )  # fmt: skip
                time.sleep(4)
                with server(
                    [cli, "api"], nats_env, home / "api.log", "http://127.0.0.1:18080/health"
                ) as api:
                    print("(c) against (a)", flush=True)
                    fleet = [api.pid, *(bidder.pid for bidder in bidders)]
                    a, c = take_turns((baseline_url, [bare.pid]), (url, fleet), *turns)
                    results["c  /v1/bid over NATS"] = (c, a)
            finally:
                for bidder in bidders:  # all told first: each may take its drain time
                    tell_to_stop(bidder)
                for bidder in bidders:
                    await_exit(bidder)
                subprocess.run(
                    ["redis-cli", "-n", "12", "flushdb"], check=False, capture_output=True
                )
                delete_stream(nats_env["CE_ANALYTICS__STREAM"])

    print(
        f"\nwrk -t1 -c{options.connections}, {options.rounds} turns of {options.duration} s, "
        f"server on CPU {SERVER_CPU}, wrk on CPU {WRK_CPU}; the turn of median ratio"
    )
    print(f"{'target':42} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'x/a':>6}")
    for name, (load, baseline) in results.items():
        for label, row, ratio in (
            ("a  baseline (Starlette + orjson parse)", baseline, 1.0),
            (name, load, load.requests_per_s / baseline.requests_per_s),
        ):
            print(
                f"{label:42} {row.requests_per_s:9.0f} {row.p50_ms:8.2f} {row.p99_ms:8.2f} "
                f"{row.non_2xx:8d} {ratio:6.3f}"
            )
    print(f"\n(b) scored {rows / max(requests, 1):.1f} candidate rows per request; "
          f"{100 * bids / max(requests, 1):.1f}% of requests got a bid")  # fmt: skip
    print(
        f"(b) at {paced.requests_per_s:.0f} req/s "
        f"({100 * paced.requests_per_s / b.requests_per_s:.0f}% of its peak): "
        f"p50 {paced.p50_ms:.2f} ms, p99 {paced.p99_ms:.2f} ms (target < 10 ms)"
    )
    print("targets: b/a >= 0.35; p99 < 10 ms for b at 80% of its peak")


if __name__ == "__main__":
    main()
