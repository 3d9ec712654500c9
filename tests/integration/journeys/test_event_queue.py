"""The event queue on real JetStream (and on the database): duplicates, priority, and an event
taken by a consumer that dies before acknowledging it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import nats
import pytest
from nats.aio.client import Client as NatsClient
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.journey_entry import JourneyStarter
from adapters.bus.events import JetStreamConfig, JetStreamEventQueue, StoredEventQueue
from domain.customer_events import CustomerEvent, EventSource
from domain.journey_runs import workflow_id
from tests.integration.journeys.conftest import NOW, Kit, definition
from tests.integration.journeys.stand_in import StandInJourney
from tests.support.temporal import running_worker
from workers.triggers import EvaluatorConfig, TriggerEvaluator


def event(tenant_id: str, event_id: str, priority: int = 50, **extra: object) -> CustomerEvent:
    return CustomerEvent.model_validate(
        {
            "tenant_id": tenant_id,
            "event_id": event_id,
            "customer_id": extra.pop("customer_id", "cust-1"),
            "name": extra.pop("name", "cart_abandoned"),
            "source": EventSource.WEB,
            "occurred_at": NOW,
            "received_at": NOW,
            "priority": priority,
            **extra,
        }
    )


@pytest.fixture
def config() -> JetStreamConfig:
    name = f"events-test-{uuid.uuid4().hex[:8]}"
    return JetStreamConfig(
        stream=name, subject_prefix=name, durable_prefix=f"{name}-triggers", ack_wait_s=1.0
    )


@pytest.fixture
async def nc(nats_url: str, config: JetStreamConfig) -> AsyncIterator[NatsClient]:
    client = await nats.connect(nats_url)
    yield client
    try:
        await client.jetstream().delete_stream(config.stream)
    finally:
        await client.close()


async def test_jetstream_publish_reports_duplicates(
    nc: NatsClient, config: JetStreamConfig
) -> None:
    queue = JetStreamEventQueue(nc.jetstream(), config)
    await queue.start()

    first = await queue.publish([event("t1", "e1"), event("t1", "e2"), event("t1", "e1")])
    retried = await queue.publish([event("t1", "e1"), event("t1", "e3")])
    other_tenant = await queue.publish([event("t2", "e1")])

    assert (first.accepted, first.duplicates) == (2, 1)
    assert (retried.accepted, retried.duplicates) == (1, 1)
    assert (other_tenant.accepted, other_tenant.duplicates) == (1, 0)


async def test_jetstream_fetch_drains_higher_priority_first(
    nc: NatsClient, config: JetStreamConfig
) -> None:
    queue = JetStreamEventQueue(nc.jetstream(), config)
    await queue.start()
    await queue.publish(
        [event("t", f"low-{n}", priority=5) for n in range(3)]
        + [event("t", f"normal-{n}", priority=50) for n in range(2)]
        + [event("t", f"high-{n}", priority=95) for n in range(2)]
    )

    order: list[list[str]] = []
    for _ in range(3):
        deliveries = await queue.fetch(10, 0.5)
        order.append([delivery.event.event_id for delivery in deliveries])
        for delivery in deliveries:
            await delivery.ack()

    assert order == [["high-0", "high-1"], ["normal-0", "normal-1"], ["low-0", "low-1", "low-2"]]
    assert await queue.fetch(10, 0.1) == []
    info = await nc.jetstream().stream_info(config.stream)
    assert info.state.messages == 0  # work-queue retention: acknowledged means gone


async def _evaluator(
    queue: JetStreamEventQueue | StoredEventQueue, kit: Kit, client: Client, task_queue: str
) -> TriggerEvaluator:
    async def temporal() -> Client:
        return client

    return TriggerEvaluator(
        queue,
        events=kit.events,
        profiles=kit.profiles,
        journeys=kit.journeys,
        entries=kit.entries,
        starter=JourneyStarter(kit.entries, temporal, task_queue=task_queue),
        clock=_Clock(),
        config=EvaluatorConfig(fetch_wait_s=0.2),
    )


class _Clock:
    def now(self):  # type: ignore[no-untyped-def]
        return NOW

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time()


async def _until(condition, timeout_s: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("processed_before_crash", [False, True])
async def test_event_held_by_a_crashed_consumer_is_processed_once(
    processed_before_crash: bool,
    nats_url: str,
    nc: NatsClient,
    config: JetStreamConfig,
    kit: Kit,
    local_env: WorkflowEnvironment,
) -> None:
    journey_id = await kit.publish(definition(entry={"reentry": True}))
    ingest = JetStreamEventQueue(nc.jetstream(), config)
    await ingest.start()
    accepted = await ingest.publish([event(kit.tenant_id, "e1")])
    assert accepted.accepted == 1

    async with running_worker(local_env.client, workflows=[StandInJourney]) as task_queue:
        # A worker takes the event (and maybe processes it), then dies before acknowledging.
        doomed = await nats.connect(nats_url)
        crashed_queue = JetStreamEventQueue(doomed.jetstream(), config)
        taken = await crashed_queue.fetch(10, 1.0)
        assert [delivery.event.event_id for delivery in taken] == ["e1"]
        if processed_before_crash:
            evaluator = await _evaluator(crashed_queue, kit, local_env.client, task_queue)
            await evaluator.process(taken[0].event)
        await doomed.close()

        # Another worker: the event comes back once the first one's ack deadline passes.
        survivor = JetStreamEventQueue(nc.jetstream(), config)
        evaluator = await _evaluator(survivor, kit, local_env.client, task_queue)
        evaluator.start()
        try:

            async def drained() -> bool:
                info = await nc.jetstream().stream_info(config.stream)
                return info.state.messages == 0

            await _until(drained)
        finally:
            await evaluator.stop()

        history = await kit.entries.history(journey_id, "cust-1")
        handle = local_env.client.get_workflow_handle(
            workflow_id(kit.tenant_id, journey_id, "cust-1")
        )
        runs = [
            execution
            async for execution in local_env.client.list_workflows(f"WorkflowId = '{handle.id}'")
        ]
    stored = await kit.events.get(kit.tenant_id, "e1")
    assert len(history) == 1
    assert len(runs) == 1
    assert stored is not None


async def test_stored_queue_keeps_unprocessed_events_across_restarts(kit: Kit) -> None:
    first = StoredEventQueue(kit.events)
    accepted = await first.publish([event(kit.tenant_id, "e1"), event(kit.tenant_id, "e1")])
    taken = await first.fetch(10, 0.1)
    # The process dies with the event in hand.

    restarted = StoredEventQueue(kit.events)
    again = await restarted.fetch(10, 0.1)

    assert (accepted.accepted, accepted.duplicates) == (1, 1)
    assert [d.event.event_id for d in taken] == [d.event.event_id for d in again] == ["e1"]


async def test_stored_queue_holds_back_an_event_to_retry(kit: Kit) -> None:
    queue = StoredEventQueue(kit.events)
    await queue.publish([event(kit.tenant_id, "e1"), event(kit.tenant_id, "e2")])

    first = await queue.fetch(1, 0.1)
    await first[0].retry_later()
    second = await queue.fetch(10, 0.1)

    assert [d.event.event_id for d in first] == ["e1"]
    assert [d.event.event_id for d in second] == ["e2"]
    await kit.events.mark_processed(kit.tenant_id, "e2", NOW + timedelta(seconds=1))
    await second[0].ack()

    async def first_is_back() -> bool:
        return [d.event.event_id for d in await queue.fetch(10, 0.05)] == ["e1"]

    await _until(first_is_back, timeout_s=5)
