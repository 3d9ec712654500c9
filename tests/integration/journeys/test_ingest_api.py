"""``POST /v1/channels/ingest``: validation (4xx, never 5xx), duplicates, durability before the
answer, and the whole path to a journey: REST, queue, evaluator, a running workflow."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.journey_entry import JourneyStarter
from adapters.bus.events import JetStreamEventQueue
from adapters.db.journeys import (
    CustomerEventRepository,
    CustomerProfiles,
    EntryRepository,
    JourneyRepository,
)
from domain.journey_runs import workflow_id
from domain.platform import Role
from tests.integration.journeys.stand_in import StandInJourney
from tests.integration.platform.support import PlatformApi, bearer, platform_api
from tests.support.temporal import running_worker
from workers.triggers import TriggerEvaluator

INGEST = "/v1/channels/ingest"


def item(event_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "event_id": event_id or str(uuid.uuid4()),
        "customer_id": "cust-1",
        "name": "cart_abandoned",
        "source": "web",
        "timestamp": "2026-12-01T10:00:00+01:00",
        "properties": {"cart_url": "https://shop.example/cart/1"},
        "traits": {"email": "ada@example.com", "timezone": "Europe/Paris"},
    }
    value.update(overrides)
    return value


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[PlatformApi]:
    async with platform_api(tmp_path) as running:
        yield running


@pytest.fixture
async def manager(api: PlatformApi) -> dict[str, str]:
    return bearer(await api.key("acme", Role.MANAGER))


async def _tenant_id(api: PlatformApi, headers: dict[str, str]) -> str:
    me = await api.client.get("/api/v1/platform/me", headers=headers)
    tenant_id: str = me.json()["tenant"]["id"]
    return tenant_id


async def test_accepted_events_are_stored_before_the_answer(
    api: PlatformApi, manager: dict[str, str]
) -> None:
    batch = [item("e1"), item("e2", customer_id="cust-2", priority=90)]

    response = await api.client.post(INGEST, json={"events": batch}, headers=manager)

    assert response.status_code == 202
    assert response.json() == {"accepted": 2, "duplicates": 0}
    events = CustomerEventRepository((await api.runtime.database()).async_session)
    stored = await events.get(await _tenant_id(api, manager), "e2")
    assert stored is not None
    assert stored.priority == 90
    assert stored.traits["timezone"] == "Europe/Paris"
    assert stored.occurred_at.utcoffset() is not None


async def test_repeated_events_are_counted_as_duplicates(
    api: PlatformApi, manager: dict[str, str]
) -> None:
    await api.client.post(INGEST, json={"events": [item("e1")]}, headers=manager)

    again = await api.client.post(
        INGEST, json={"events": [item("e1"), item("e2"), item("e2")]}, headers=manager
    )

    assert again.status_code == 202
    assert again.json() == {"accepted": 1, "duplicates": 2}


@pytest.mark.parametrize(
    ("body", "status", "where"),
    [
        ({"events": [item(timestamp="2026-12-01T10:00:00")]}, 422, "timestamp"),
        ({"events": [item(timestamp="yesterday")]}, 422, "timestamp"),
        ({"events": [item(customer_id="ada@example.com")]}, 422, "customer_id"),
        ({"events": [item(customer_id="+33 6 12 34 56 78")]}, 422, "customer_id"),
        ({"events": [item(customer_id="a b")]}, 422, "customer_id"),
        ({"events": [item(source="fax")]}, 422, "source"),
        ({"events": [item(priority=101)]}, 422, "priority"),
        ({"events": [item(traits={"timezone": "Mars/Olympus"})]}, 422, "traits"),
        ({"events": [item(traits={"segments": "vip"})]}, 422, "traits"),
        ({"events": [item(name="has spaces")]}, 422, "name"),
        ({"events": [item(unknown_field=1)]}, 422, "unknown_field"),
        ({"events": []}, 422, "events"),
        ({"events": [item(properties={"blob": "x" * 20_000})]}, 422, "properties"),
        ({"events": [item() for _ in range(501)]}, 413, None),
        ({"nothing": 1}, 422, "events"),
    ],
)
async def test_bad_batches_get_4xx_naming_the_event(
    api: PlatformApi,
    manager: dict[str, str],
    body: dict[str, Any],
    status: int,
    where: str | None,
) -> None:
    response = await api.client.post(INGEST, json=body, headers=manager)

    assert response.status_code == status, response.text
    if where is not None:
        locations = [detail["loc"] for detail in response.json()["error"]["details"]]
        assert any(where in location for location in locations), locations


async def test_personal_customer_id_is_refused_by_event(
    api: PlatformApi, manager: dict[str, str]
) -> None:
    batch = [item("fine"), item("leaky", customer_id="ada@example.com")]

    response = await api.client.post(INGEST, json={"events": batch}, headers=manager)

    detail = response.json()["error"]["details"][0]
    assert detail["loc"] == ["body", "events", 1, "customer_id"]
    assert "event leaky" in detail["msg"]
    listed = await CustomerEventRepository((await api.runtime.database()).async_session).pending(10)
    assert listed == []  # nothing of a refused batch is taken


async def test_body_that_is_not_json_is_422(api: PlatformApi, manager: dict[str, str]) -> None:
    response = await api.client.post(
        INGEST, content=b"{not json", headers={**manager, "content-type": "application/json"}
    )

    assert response.status_code == 422


async def test_ingest_takes_manager_and_admin_keys_only(api: PlatformApi) -> None:
    statuses = {}
    for role in Role:
        headers = bearer(await api.key("acme", role))
        response = await api.client.post(INGEST, json={"events": [item()]}, headers=headers)
        statuses[role] = response.status_code
    anonymous = await api.client.post(INGEST, json={"events": [item()]})

    assert statuses == {role: 202 if role in (Role.ADMIN, Role.MANAGER) else 403 for role in Role}
    assert anonymous.status_code == 401


async def test_ingested_event_reaches_a_journey(
    api: PlatformApi, manager: dict[str, str], local_env: WorkflowEnvironment
) -> None:
    journey = {
        "name": "Abandoned cart",
        "trigger": {"type": "event", "event": "cart_abandoned"},
        "start": "pause",
        "nodes": [
            {"id": "pause", "type": "wait", "duration": "PT2S", "next": "done"},
            {"id": "done", "type": "exit"},
        ],
    }
    journey_id = (await api.client.post("/api/v1/journeys", json=journey, headers=manager)).json()[
        "id"
    ]
    await api.client.post(f"/api/v1/journeys/{journey_id}/publish", headers=manager)
    tenant_id = await _tenant_id(api, manager)
    sessions = (await api.runtime.database()).async_session

    async def temporal() -> Client:
        return local_env.client

    accepted = await api.client.post(INGEST, json={"events": [item("e1")]}, headers=manager)
    async with running_worker(local_env.client, workflows=[StandInJourney]) as task_queue:
        evaluator = TriggerEvaluator(
            await api.runtime.event_queue(),
            events=CustomerEventRepository(sessions),
            profiles=CustomerProfiles(sessions),
            journeys=JourneyRepository(sessions),
            entries=EntryRepository(sessions),
            starter=JourneyStarter(EntryRepository(sessions), temporal, task_queue=task_queue),
            clock=api.runtime.clock,
        )
        deliveries = await (await api.runtime.event_queue()).fetch(10, 1.0)
        await evaluator.process_batch(deliveries)
        handle = local_env.client.get_workflow_handle(workflow_id(tenant_id, journey_id, "cust-1"))
        signals = await handle.query(StandInJourney.signals)

    assert accepted.status_code == 202
    assert signals == ["e1"]
    profile = await CustomerProfiles(sessions).get(tenant_id, "cust-1")
    assert profile is not None
    assert profile.timezone == "Europe/Paris"
    assert profile.traits == {"email": "ada@example.com"}


async def test_ingest_over_jetstream_waits_for_the_stream(tmp_path: Path, nats_url: str) -> None:
    name = f"events-test-{uuid.uuid4().hex[:8]}"
    events = {"stream": name, "subject_prefix": name, "durable_prefix": f"{name}-triggers"}
    async with platform_api(tmp_path, nats_url=nats_url, events=events) as api:
        headers = bearer(await api.key("acme", Role.ADMIN))
        queue = await api.runtime.event_queue()

        first = await api.client.post(INGEST, json={"events": [item("e1")]}, headers=headers)
        again = await api.client.post(
            INGEST, json={"events": [item("e1"), item("e2", priority=80)]}, headers=headers
        )

        assert isinstance(queue, JetStreamEventQueue)
        assert first.json() == {"accepted": 1, "duplicates": 0}
        assert again.json() == {"accepted": 1, "duplicates": 1}
        nc = await nats.connect(nats_url)
        try:
            info = await nc.jetstream().stream_info(name)
            high = await nc.jetstream().stream_info(name, subjects_filter=f"{name}.high")
            assert info.state.messages == 2
            assert high.state.subjects == {f"{name}.high": 1}
        finally:
            await nc.jetstream().delete_stream(name)
            await nc.close()
