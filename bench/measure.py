"""What the benchmarks measure with: process CPU, free ports, a phase of workflow runs, and
py-spy's raw output.

Imported by the scripts beside it (`python bench/<script>.py` puts bench/ on sys.path).
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowHistory

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# The tests' choice of ports, outside the range outgoing connections take theirs from.
from tests.support.services import free_port as free_port  # re-exported

STARTS_IN_FLIGHT = 32
PHASE_TIMEOUT_S = 600.0

# run number -> the handle of a workflow it started
Starter = Callable[[int], Awaitable["WorkflowHandle[Any, Any]"]]


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its reaped children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    # utime, stime, cutime, cstime are fields 14-17 of stat; fields[0] here is field 3.
    ticks = sum(int(value) for value in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class WorkflowPhase:
    results: list[Any]
    histories: list[WorkflowHistory]
    wall_s: float  # from the first start to the last result
    worker_cpu_s: float  # this process (the worker runs in it)
    server_cpu_s: float


async def run_workflows(
    numbers: Sequence[int],
    start: Starter,
    server_pid: int,
    client: Client,
    rpc_timeout: timedelta | None = None,
) -> WorkflowPhase:
    """Start a workflow for each of ``numbers`` (a bounded number of starts in flight), wait
    for every result, then fetch their histories (outside the timed part)."""
    gate = asyncio.Semaphore(STARTS_IN_FLIGHT)

    async def started(number: int) -> WorkflowHandle[Any, Any]:
        async with gate:
            return await start(number)

    cpu_before, server_before = own_cpu_s(), process_cpu_s(server_pid)
    began = time.perf_counter()
    async with asyncio.timeout(PHASE_TIMEOUT_S):
        handles = await asyncio.gather(*(started(number) for number in numbers))
        results = await asyncio.gather(*(handle.result() for handle in handles))
    wall = time.perf_counter() - began
    cpu, server = own_cpu_s() - cpu_before, process_cpu_s(server_pid) - server_before

    async def history(handle: WorkflowHandle[Any, Any]) -> WorkflowHistory:
        async with gate:
            return await client.get_workflow_handle(handle.id).fetch_history(
                rpc_timeout=rpc_timeout
            )

    async with asyncio.timeout(PHASE_TIMEOUT_S):
        histories = await asyncio.gather(*(history(handle) for handle in handles))
    return WorkflowPhase(list(results), list(histories), wall, cpu, server)


def py_spy_stacks(path: Path) -> Iterator[tuple[list[str], int]]:
    """Each stack of a py-spy raw (collapsed) profile, root first, with its sample count;
    frames without a function (thread and process labels) are left out. A frame whose name
    spans lines (py-spy writes some source text as it is, a verbose regex say) breaks its
    stack over several lines; only the last carries the count, the others are skipped."""
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [frame for frame in stack.split(";") if "(" in frame]
        if frames and count.isdigit():
            yield frames, int(count)
