"""Temporal in the processes a user starts: ``up`` with its embedded server, and ``worker``."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support.processes import CliProcess
from tests.support.services import free_port
from tests.support.temporal import local_env  # noqa: F401  (a fixture)

pytestmark = pytest.mark.slow


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "CE_HOME": str(tmp_path / "home"),
        "CE_API_PORT": str(free_port()),
        "CE_GRPC_PORT": str(free_port()),
        "CE_METRICS_PORT": str(free_port()),
        "CE_TEMPORAL__PORT": str(free_port()),
        "CE_TEMPORAL__UI_PORT": str(free_port()),
        "CE_TEMPORAL__HTTP_PORT": str(free_port()),
        "CE_TEMPORAL__METRICS_PORT": str(free_port()),
    }


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def address_of(environment: WorkflowEnvironment) -> str:
    return environment.client.service_client.config.target_host


def test_up_runs_temporal_with_its_web_ui_and_stops_it_on_sigterm(
    env: dict[str, str], tmp_path: Path
) -> None:
    up = CliProcess(["up"], env, tmp_path / "up.log")
    try:
        up.wait_for_output("running", timeout_s=120)
        output = up.output()
        web = f"http://127.0.0.1:{env['CE_TEMPORAL__UI_PORT']}"
        assert f"Temporal Web {web}\n" in output
        assert f"Temporal     127.0.0.1:{env['CE_TEMPORAL__PORT']}  (namespace default;" in output
        assert httpx.get(web, timeout=10).status_code == 200
        ready = httpx.get(f"http://127.0.0.1:{env['CE_API_PORT']}/ready", timeout=10).json()
        assert ready["checks"]["temporal"] == "ok"
        record = Path(env["CE_HOME"]) / "temporal.pid"
        server_pid = json.loads(record.read_text())["server"]
        assert alive(server_pid)
    finally:
        code = up.terminate()

    assert code == 0, up.output()
    assert not alive(server_pid)
    assert not record.exists()
    assert "Temporal dev server (pid" in up.output()


async def test_up_with_a_temporal_address_uses_that_server(
    env: dict[str, str],
    tmp_path: Path,
    local_env: WorkflowEnvironment,  # noqa: F811
) -> None:
    address = address_of(local_env)
    up = CliProcess(["up"], env | {"CE_TEMPORAL_ADDRESS": address}, tmp_path / "up.log")
    try:
        up.wait_for_output("running", timeout_s=120)
        assert f"Temporal     {address}  (namespace default)" in up.output()
        assert "Temporal Web" not in up.output()
    finally:
        assert up.terminate() == 0, up.output()
    assert not (Path(env["CE_HOME"]) / "temporal.db").exists()


async def test_worker_joins_a_cluster_and_stops_on_sigterm(
    env: dict[str, str],
    tmp_path: Path,
    local_env: WorkflowEnvironment,  # noqa: F811
) -> None:
    worker = CliProcess(
        ["worker"], env | {"CE_TEMPORAL_ADDRESS": address_of(local_env)}, tmp_path / "worker.log"
    )
    try:
        worker.wait_for_output("running", timeout_s=60)
        assert "worker       " in worker.output()
        metrics = f"http://127.0.0.1:{env['CE_METRICS_PORT']}/metrics"
        assert httpx.get(metrics, timeout=10).status_code == 200
    finally:
        assert worker.terminate() == 0, worker.output()


def test_worker_reports_a_cluster_that_does_not_answer(env: dict[str, str], tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    worker = CliProcess(
        ["worker"],
        env | {"CE_TEMPORAL_ADDRESS": address, "CE_TEMPORAL__CONNECT_WAIT_S": "1"},
        tmp_path / "worker.log",
    )

    assert worker.wait(timeout_s=60) == 1
    assert f"Error: Temporal is not answering at {address}" in worker.output()
    assert "Traceback" not in worker.output()
