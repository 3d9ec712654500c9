"""The platform's worker: converter, sandbox, drain on stop, failures that stop the process."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from adapters.settings import Settings
from domain.campaigns import CampaignStatus
from domain.money import to_micros
from temporal.client import connect
from temporal.sandbox import workflow_runner
from temporal.search_attributes import CAMPAIGN_ID
from tests.support.temporal import new_task_queue, running_worker
from workers.runtime import Role, Runtime
from workers.serve import Servers
from workers.temporal_worker import build_worker


class Flight(BaseModel):
    campaign_id: uuid.UUID
    budget: Decimal
    start_at: datetime
    status: CampaignStatus = CampaignStatus.SCHEDULED


class Settled(BaseModel):
    campaign_id: uuid.UUID
    spent_micros: int
    ended_at: datetime
    status: CampaignStatus


@activity.defn
async def settle(flight: Flight) -> Settled:
    return Settled(
        campaign_id=flight.campaign_id,
        spent_micros=to_micros(flight.budget),
        ended_at=flight.start_at + timedelta(days=30),
        status=CampaignStatus.COMPLETED,
    )


@workflow.defn
class MonthLongFlight:
    """Waits a month, then settles: one model in, one out, domain code inside the sandbox."""

    @workflow.run
    async def run(self, flight: Flight) -> Settled:
        workflow.upsert_search_attributes([CAMPAIGN_ID.value_set(str(flight.campaign_id))])
        await workflow.sleep(timedelta(days=30))
        return await workflow.execute_activity(
            settle, flight, start_to_close_timeout=timedelta(seconds=10)
        )


async def test_workflow_and_activity_exchange_pydantic_models_across_a_month(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    client = time_skipping_env.client
    flight = Flight(
        campaign_id=uuid.uuid4(),
        budget=Decimal("1500.25"),
        start_at=datetime(2026, 12, 1, tzinfo=UTC),
    )
    async with running_worker(
        client, workflows=[MonthLongFlight], activities=[settle]
    ) as task_queue:
        handle = await client.start_workflow(
            MonthLongFlight.run, flight, id=f"flight-{uuid.uuid4()}", task_queue=task_queue
        )
        settled = await handle.result()

    attributes = (await handle.describe()).typed_search_attributes
    assert attributes.get(CAMPAIGN_ID) == str(flight.campaign_id)

    assert settled == Settled(
        campaign_id=flight.campaign_id,
        spent_micros=1_500_250_000,
        ended_at=datetime(2026, 12, 31, tzinfo=UTC),
        status=CampaignStatus.COMPLETED,
    )


class Step(BaseModel):
    name: str


class SlowSteps:
    """An activity still running when the worker is told to stop."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.finished = False

    @activity.defn(name="slow_step")
    async def slow_step(self, step: Step) -> Step:
        self.started.set()
        await asyncio.sleep(0.5)
        self.finished = True
        return step


@workflow.defn
class OneSlowStep:
    @workflow.run
    async def run(self, step: Step) -> Step:
        result: Step = await workflow.execute_activity(
            "slow_step", step, result_type=Step, start_to_close_timeout=timedelta(seconds=30)
        )
        return result


@pytest.mark.slow
async def test_stopping_lets_the_activity_in_hand_finish(local_env: WorkflowEnvironment) -> None:
    client = local_env.client
    steps = SlowSteps()
    task_queue = new_task_queue()
    servers = Servers(Settings())
    await servers.temporal_worker(
        build_worker(
            client,
            workflows=[OneSlowStep],
            activities=[steps.slow_step],
            task_queue=task_queue,
            graceful_shutdown_s=30,
            runner=workflow_runner("tests"),
        )
    )
    handle = await client.start_workflow(
        OneSlowStep.run, Step(name="publish"), id=f"slow-{uuid.uuid4()}", task_queue=task_queue
    )
    await asyncio.wait_for(steps.started.wait(), timeout=20)

    await servers.stop()

    assert steps.finished
    events = [event.event_type async for event in handle.fetch_history_events()]
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED in events
    await handle.terminate()


@pytest.mark.slow
async def test_a_worker_that_cannot_start_stops_the_process(
    local_env: WorkflowEnvironment,
) -> None:
    address = local_env.client.service_client.config.target_host
    client = await connect(address, "no-such-namespace")
    servers = Servers(Settings())
    await servers.temporal_worker(
        build_worker(
            client,
            workflows=[OneSlowStep],
            activities=[],
            task_queue=new_task_queue(),
            runner=workflow_runner("tests"),
        )
    )

    with pytest.raises(RuntimeError, match="no-such-namespace"):
        await servers.wait(asyncio.Event())
    await servers.stop()


async def test_runtime_connects_to_the_configured_cluster_and_checks_it(
    local_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CE_TEMPORAL_ADDRESS", local_env.client.service_client.config.target_host)

    async with Runtime(Settings(), Role.WORKER) as runtime:
        client = await runtime.temporal_client()
        assert await runtime.temporal_client() is client
        assert await runtime.temporal_dev_server() is None
        [check] = [check for check in runtime.checks if check.name == "temporal"]
        await check.probe()


async def test_runtime_outside_up_needs_a_cluster_address() -> None:
    async with Runtime(Settings(), Role.API) as runtime:
        with pytest.raises(RuntimeError, match="set CE_TEMPORAL_ADDRESS"):
            await runtime.temporal_client()
