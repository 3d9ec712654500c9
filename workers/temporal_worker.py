"""The Temporal worker: the platform's workflows and activities on the platform's task queue.

``campaign-express worker`` runs one in its own process; ``up`` runs one beside the API. Both
register the same things: :data:`workflows.WORKFLOWS` and the activities the runtime builds
over its adapters (:meth:`workers.runtime.Runtime.temporal_activities`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio.client import Client
from temporalio.worker import Worker, WorkflowRunner

from temporal import task_queues
from temporal.sandbox import workflow_runner
from workflows.registry import WORKFLOWS

if TYPE_CHECKING:  # the runtime imports every adapter; tests import this module without it
    from workers.runtime import Runtime

log = logging.getLogger(__name__)


def build_worker(
    client: Client,
    *,
    workflows: Sequence[type],
    activities: Sequence[Callable[..., Any]],
    task_queue: str = task_queues.PLATFORM,
    graceful_shutdown_s: float = 5.0,
    runner: WorkflowRunner | None = None,
) -> Worker:
    """A worker with our sandbox (see :mod:`temporal.sandbox`); the data converter is the
    client's. On shutdown, activities in hand get ``graceful_shutdown_s`` to finish before
    they are cancelled; workflow tasks need no drain (the server hands them to another
    worker, or to this one after a restart)."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(workflows),
        activities=list(activities),
        workflow_runner=runner or workflow_runner(),
        graceful_shutdown_timeout=timedelta(seconds=graceful_shutdown_s),
    )


@dataclass(frozen=True)
class PlatformWorker:
    """The worker a process runs, or None as ``worker`` when nothing is registered yet."""

    worker: Worker | None
    workflows: int
    activities: int

    def describe(self) -> str:
        if self.worker is None:
            return (
                f"worker       idle: no workflows or activities registered "
                f"(task queue {task_queues.PLATFORM!r})"
            )
        return (
            f"worker       task queue {task_queues.PLATFORM!r}: {self.workflows} workflows, "
            f"{self.activities} activities"
        )


async def platform_worker(runtime: Runtime) -> PlatformWorker:
    """The worker for everything registered, over the runtime's client and adapters.

    With nothing registered there is nothing to poll for: the SDK refuses an empty worker, and
    a worker that polled would only hold tasks nobody can run. The process then keeps running
    idle with a warning, so a deployment can start before its first workflow ships.
    """
    client = await runtime.temporal_client()  # connects (or fails clearly) either way
    activities = await runtime.temporal_activities()
    if not WORKFLOWS and not activities:
        log.warning("no Temporal workflows or activities are registered: this worker polls nothing")
        return PlatformWorker(None, 0, 0)
    worker = build_worker(
        client,
        workflows=WORKFLOWS,
        activities=activities,
        graceful_shutdown_s=runtime.settings.temporal.graceful_shutdown_s,
    )
    return PlatformWorker(worker, len(WORKFLOWS), len(activities))
