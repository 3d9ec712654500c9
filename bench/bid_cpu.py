"""CPU a bid costs inside the API process, without HTTP: where bench/bid.py's (b) goes.

bench/bid.py measures the whole server under wrk, so a change of a few microseconds a bid
drowns in the machine's noise. This drives the same route object the server mounts
(``BidEndpoint``) from 32 in-process "connections" on uvloop, with the body bench/wrk_bid.lua
sends, on `campaign-express up`'s own composition (demo tenant, chdb analytics, in-process
ledger), and reads the process's CPU time.

Baseline, measured in the same run: the same endpoint and intake (body checks, pydantic
validation, metrics) over a transport that answers at once; the pipeline's cost is the
difference. Run from the repository root, pinned to one core:

    taskset -c 1 .venv/bin/python bench/bid_cpu.py [--bids 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import uvloop
from measure import own_cpu_s  # beside this script: bench/

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from adapters.bid_transport import BidAnswer, BidTransport  # noqa: E402
from adapters.settings import Settings  # noqa: E402
from api.routes.bid import BidEndpoint, BidIntake  # noqa: E402
from domain.openrtb import BidRequest  # noqa: E402
from workers.runtime import Role, Runtime  # noqa: E402
from workers.serve import YOUNG_GENERATION  # noqa: E402

CONNECTIONS = 32
USERS_IN_LOAD = 20_000  # as bench/bid.py passes to bench/wrk_bid.lua
DEMO_PROFILES = 100_000
_HEADERS = [(b"content-type", b"application/json")]


def bodies(count: int = 2000) -> list[bytes]:
    """bench/wrk_bid.lua's request: the IAB simple banner with a device and a demo user."""
    draw = random.Random(7)
    template = (
        '{"id":"bench-%d","at":1,"cur":["USD"],"tmax":100,'
        '"imp":[{"id":"1","bidfloor":0.03,"banner":{"w":300,"h":250,"pos":0}}],'
        '"site":{"id":"102855","cat":["IAB3-1"],"domain":"www.foobar.com",'
        '"page":"http://www.foobar.com/1234.html","publisher":{"id":"8953","name":"foobar.com",'
        '"cat":["IAB3-1"],"domain":"foobar.com"}},'
        '"device":{"ua":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_6_8) AppleWebKit/537.13 '
        '(KHTML, like Gecko) Version/5.1.7 Safari/534.57.2","ip":"123.145.167.10",'
        '"devicetype":2,"geo":{"country":"USA"}},"user":{"id":"user-%06d"}}'
    )
    return [(template % (i, draw.randint(1, USERS_IN_LOAD))).encode() for i in range(1, count + 1)]


class Answered:
    """A transport that answers before doing anything: the baseline's 'pipeline'."""

    name = "baseline"

    async def bid(self, request: BidRequest, body: bytes, deadline: float) -> BidAnswer:
        return BidAnswer(b"{}")


async def drive(endpoint: BidEndpoint, requests: list[bytes], count: int) -> Counter[int]:
    """``count`` requests through ``endpoint`` from CONNECTIONS concurrent callers."""
    statuses: Counter[int] = Counter()
    sent = 0

    async def connection() -> None:
        nonlocal sent
        while sent < count:
            body = requests[sent % len(requests)]
            sent += 1

            async def receive(body: bytes = body) -> dict[str, object]:
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message: dict[str, object]) -> None:
                if message["type"] == "http.response.start":
                    statuses[int(message["status"])] += 1  # type: ignore[call-overload]

            scope = {"type": "http", "method": "POST", "path": "/v1/bid", "headers": _HEADERS}
            await endpoint(scope, receive, send)  # type: ignore[arg-type]

    await asyncio.gather(*(connection() for _ in range(CONNECTIONS)))
    return statuses


async def cpu_per_bid(endpoint: BidEndpoint, requests: list[bytes], bids: int) -> float:
    """Microseconds of this process's CPU a request, after as many requests to warm up."""
    await drive(endpoint, requests, bids)  # L1 fills, slates and contexts are cached
    gc.collect()
    gc.freeze()  # as serve.py does after startup
    started = own_cpu_s()
    statuses = await drive(endpoint, requests, bids)
    spent = own_cpu_s() - started
    if set(statuses) - {200, 204}:
        raise RuntimeError(f"unexpected statuses: {dict(statuses)}")
    return 1e6 * spent / bids


def endpoint_over(transport: BidTransport, settings: Settings) -> BidEndpoint:
    intake = BidIntake(
        transport,
        default_tmax_ms=settings.bid.default_tmax_ms,
        tmax_margin_ms=settings.bid.tmax_margin_ms,
    )
    return BidEndpoint(intake, max_body_bytes=settings.bid.max_body_bytes)


async def measure(bids: int, rounds: int) -> None:
    settings = Settings()
    requests = bodies()
    gc.set_threshold(YOUNG_GENERATION)
    async with Runtime(settings, Role.EMBEDDED) as runtime:
        pipeline = endpoint_over(await runtime.bid_transport(), settings)
        baseline = endpoint_over(Answered(), settings)
        floors, fulls = [], []
        for _ in range(rounds):  # interleaved, so drift on the machine hits both alike
            floors.append(await cpu_per_bid(baseline, requests, bids))
            fulls.append(await cpu_per_bid(pipeline, requests, bids))
    floor, full = min(floors), min(fulls)
    print(f"{bids:,} requests a round, {rounds} rounds, best round of each:")
    print(f"  baseline (checks, validation, metrics)  {floor:7.1f} us CPU a request")
    print(f"  /v1/bid inproc (16 candidates scored)   {full:7.1f} us CPU a request")
    print(f"  pipeline alone                          {full - floor:7.1f} us")
    print(f"  baseline/full                           {floor / full:7.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bids", type=int, default=20_000, help="requests a round")
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="ce-bid-cpu-"))
    os.environ |= {"CE_HOME": str(home), "CE_LOG_LEVEL": "WARNING"}
    print(f"loading the demo tenant ({DEMO_PROFILES:,} profiles) into {home} ...", flush=True)
    subprocess.run(
        [str(Path(sys.executable).parent / "campaign-express"), "demo", "--profiles",
         str(DEMO_PROFILES)],
        check=True, capture_output=True,
    )  # fmt: skip
    uvloop.run(measure(options.bids, options.rounds))


if __name__ == "__main__":
    main()
