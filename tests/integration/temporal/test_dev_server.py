"""The dev server launcher against the real ``temporal`` binary, on free ports in a tmp CE_HOME."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from pydantic import BaseModel
from temporalio import workflow
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.testing import WorkflowEnvironment

from temporal import search_attributes
from temporal.dev_server import DevServer, DevServerConfig, DevServerError, find_binary
from temporal.search_attributes import TENANT_ID
from tests.support.services import free_port
from tests.support.temporal import new_task_queue, running_worker

pytestmark = pytest.mark.slow

T = TypeVar("T")
VISIBILITY_WAIT_S = 20.0


class Tag(BaseModel):
    tenant_id: str


@workflow.defn
class TaggedWait:
    """Tags itself with its tenant, then waits until terminated."""

    @workflow.run
    async def run(self, tag: Tag) -> None:
        workflow.upsert_search_attributes([TENANT_ID.value_set(tag.tenant_id)])
        await workflow.wait_condition(lambda: False)


@pytest.fixture
def config(tmp_path: Path) -> DevServerConfig:
    return DevServerConfig(
        home=tmp_path / "home",
        port=free_port(),
        ui_port=free_port(),
        http_port=free_port(),
        metrics_port=free_port(),
    )


@pytest.fixture
async def server(config: DevServerConfig) -> AsyncIterator[DevServer]:
    async with DevServer(config) as started:
        yield started


def alive(pid: int) -> bool:
    """Running, not merely a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


async def eventually(probe: Callable[[], Awaitable[T]], until: Callable[[T], bool]) -> T:
    """Visibility is eventually consistent: ask until the answer is the expected one."""
    async with asyncio.timeout(VISIBILITY_WAIT_S):
        while True:
            value = await probe()
            if until(value):
                return value
            await asyncio.sleep(0.1)


async def ids_for_tenant(client: Client, tenant_id: str) -> list[str]:
    return [run.id async for run in client.list_workflows(f'TenantId="{tenant_id}"')]


async def test_launcher_starts_the_binary_and_stops_it_on_exit(config: DevServerConfig) -> None:
    async with DevServer(config) as server:
        assert server.owned
        assert server.pid is not None
        pid = server.pid
        assert alive(pid)
        assert json.loads(config.record_path.read_text())["server"] == pid
        assert await server.client.service_client.check_health()
        async with httpx.AsyncClient() as http:
            assert (await http.get(config.ui_url, timeout=10)).status_code == 200
            # The side ports it was given, not ones it picked itself.
            metrics = await http.get(
                f"http://{config.ip}:{config.metrics_port}/metrics", timeout=10
            )
            assert metrics.status_code == 200
            assert "persistence_requests" in metrics.text
            namespaces = await http.get(
                f"http://{config.ip}:{config.http_port}/api/v1/namespaces", timeout=10
            )
            assert namespaces.status_code == 200

    assert not alive(pid)
    assert not config.record_path.exists()
    assert config.db_path.exists()
    assert "server start-dev" in config.log_path.read_text()


async def test_second_launcher_reuses_the_running_server_and_leaves_it_running(
    server: DevServer, config: DevServerConfig
) -> None:
    second = DevServer(config)
    await second.start()
    assert not second.owned
    assert second.pid == server.pid
    await second.stop()

    assert server.pid is not None
    assert alive(server.pid)
    assert await server.client.service_client.check_health()


async def test_launcher_uses_a_server_it_did_not_start_and_registers_attributes_on_it(
    config: DevServerConfig,
) -> None:
    # A dev server the user runs themselves, with none of our attributes.
    async with await WorkflowEnvironment.start_local(
        port=config.port, dev_server_existing_path=str(find_binary())
    ) as users_own:
        async with DevServer(config) as server:
            assert (server.owned, server.pid) == (False, None)
            assert not config.record_path.exists()

        assert await users_own.client.service_client.check_health()  # still running
        assert await search_attributes.register(users_own.client, "default") == []


async def test_search_attributes_are_registered_and_queryable(server: DevServer) -> None:
    client = server.client
    async with running_worker(client, workflows=[TaggedWait]) as task_queue:
        handles = {
            tenant: await client.start_workflow(
                TaggedWait.run, Tag(tenant_id=tenant), id=f"tagged-{uuid.uuid4()}",
                task_queue=task_queue,
            )
            for tenant in ("t1", "t2")
        }  # fmt: skip
        try:
            found = await eventually(lambda: ids_for_tenant(client, "t1"), bool)
        finally:
            for handle in handles.values():
                await handle.terminate()

    assert found == [handles["t1"].id]


async def test_a_namespace_other_than_default_is_created_with_the_attributes(
    tmp_path: Path,
) -> None:
    config = DevServerConfig(
        home=tmp_path, port=free_port(), ui_port=free_port(), namespace="campaigns", ui=False
    )

    async with DevServer(config) as server:
        assert server.client.namespace == "campaigns"
        assert await search_attributes.register(server.client, "campaigns") == []


async def test_workflows_and_attributes_survive_a_restart_on_the_same_file(
    config: DevServerConfig,
) -> None:
    workflow_id = f"survivor-{uuid.uuid4()}"
    async with DevServer(config) as first:
        # No worker: the workflow simply stays open, tagged at its start.
        await first.client.start_workflow(
            TaggedWait.run,
            Tag(tenant_id="t-restart"),
            id=workflow_id,
            task_queue=new_task_queue(),
            search_attributes=TypedSearchAttributes([SearchAttributePair(TENANT_ID, "t-restart")]),
        )
        await eventually(lambda: ids_for_tenant(first.client, "t-restart"), bool)

    async with DevServer(config) as second:
        assert second.owned
        assert second.pid != first.pid
        description = await second.client.get_workflow_handle(workflow_id).describe()
        assert description.status == WorkflowExecutionStatus.RUNNING
        found = await eventually(lambda: ids_for_tenant(second.client, "t-restart"), bool)
        assert found == [workflow_id]
        assert await search_attributes.register(second.client, config.namespace) == []


async def test_launcher_adopts_a_server_whose_starter_died(config: DevServerConfig) -> None:
    first = DevServer(config)
    await first.start()
    try:
        assert first.pid is not None
        record = json.loads(config.record_path.read_text())
        config.record_path.write_text(json.dumps(record | {"owner": dead_pid()}))

        adopter = DevServer(config)
        await adopter.start()
        assert (adopter.owned, adopter.pid) == (True, first.pid)
        assert json.loads(config.record_path.read_text())["owner"] == os.getpid()
        await adopter.stop()

        assert not alive(first.pid)
        assert not config.record_path.exists()
    finally:
        await first.stop()


async def test_launcher_waits_for_a_server_another_launcher_is_starting(
    config: DevServerConfig, tmp_path: Path
) -> None:
    config.home.mkdir(parents=True)
    with config.lock_path.open("a") as lock:
        # Another `up` holds the lock while it launches the server.
        fcntl.flock(lock, fcntl.LOCK_EX)
        waiter = DevServer(config)
        waiting = asyncio.create_task(waiter.start())
        await asyncio.sleep(0.5)
        assert not waiting.done()

        with (tmp_path / "other.log").open("wb") as log:
            launched = subprocess.Popen(config.command(find_binary()), stdout=log, stderr=log)
        try:
            record = {"server": launched.pid, "owner": os.getpid(), "address": config.address}
            config.record_path.write_text(json.dumps(record))
            # This test's server must still be up when the waiter looks, or the waiter rightly
            # launches its own (seen once: a failure that said only "owned is True").
            await asyncio.sleep(0.5)
            assert launched.poll() is None, (
                f"the other launcher's server exited ({launched.returncode}):\n"
                f"{(tmp_path / 'other.log').read_text()[-2000:]}"
            )
            fcntl.flock(lock, fcntl.LOCK_UN)

            await waiting
            assert (waiter.owned, waiter.pid) == (False, launched.pid)
            await waiter.stop()
            assert alive(launched.pid)  # the other launcher's to stop
        finally:
            launched.terminate()
            launched.wait()


async def test_two_launchers_at_once_start_one_server(config: DevServerConfig) -> None:
    first, second = DevServer(config), DevServer(config)

    await asyncio.gather(first.start(), second.start())
    try:
        assert sorted([first.owned, second.owned]) == [False, True]
        assert first.pid == second.pid
    finally:
        await second.stop()
        await first.stop()


async def test_a_binary_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    config = DevServerConfig(
        home=tmp_path, port=free_port(), ui_port=free_port(), extra_args=("--no-such-flag",)
    )

    with pytest.raises(DevServerError, match="exited with code") as raised:
        await DevServer(config).start()

    assert "no-such-flag" in str(raised.value)
    assert not config.record_path.exists()


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A port that accepts connections and never speaks, like a hung or foreign server."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


async def test_a_port_where_something_else_listens_is_reported_with_its_address(
    tmp_path: Path, silent_listener: int
) -> None:
    config = DevServerConfig(home=tmp_path, port=silent_listener, start_timeout_s=2)

    with pytest.raises(DevServerError, match=f"not answering at 127.0.0.1:{silent_listener}"):
        await DevServer(config).start()
