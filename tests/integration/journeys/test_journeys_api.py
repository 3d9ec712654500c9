"""``/api/v1/journeys`` on an embedded platform: drafts, versions, moves, validation, audit,
tenant isolation, and the Temporal Schedule of a schedule-triggered journey."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from api.journeys import schedule_id
from domain.platform import Role
from tests.integration.platform.support import (
    PlatformApi,
    Probe,
    assert_tenant_isolated,
    bearer,
    platform_api,
)

REPO = Path(__file__).resolve().parents[3]
BASE = "/api/v1/journeys"


def document(**overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "name": "Welcome",
        "trigger": {"type": "event", "event": "signed_up"},
        "start": "hello",
        "nodes": [
            {
                "id": "hello",
                "type": "action",
                "channel": "email",
                "template": {"subject": "Hi", "body": "Welcome {{ profile.first_name }}"},
                "next": "done",
            },
            {"id": "done", "type": "exit"},
        ],
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


async def test_journey_goes_from_draft_to_versions(
    api: PlatformApi, manager: dict[str, str]
) -> None:
    created = await api.client.post(BASE, json=document(), headers=manager)
    journey_id = created.json()["id"]
    path = f"{BASE}/{journey_id}"

    first = await api.client.post(f"{path}/publish", headers=manager)
    unchanged = await api.client.post(f"{path}/publish", headers=manager)
    edited = await api.client.put(path, json=document(name="Welcome, v2"), headers=manager)
    second = await api.client.post(f"{path}/publish", headers=manager)
    versions = await api.client.get(f"{path}/versions", headers=manager)
    v1 = await api.client.get(f"{path}/versions/1", headers=manager)
    shown = await api.client.get(path, headers=manager)

    assert created.status_code == 201
    assert created.json()["status"] == "draft"
    assert created.json()["published_version"] is None
    assert first.json()["published_version"] == 1
    assert first.json()["status"] == "published"
    assert unchanged.json()["published_version"] == 1
    assert edited.json()["draft"]["name"] == "Welcome, v2"
    assert edited.json()["published_version"] == 1
    assert second.json()["published_version"] == 2
    assert [item["version"] for item in versions.json()["items"]] == [2, 1]
    assert v1.json()["definition"]["name"] == "Welcome"
    assert shown.json()["name"] == "Welcome, v2"


async def test_invalid_definitions_answer_422_with_where_and_why(
    api: PlatformApi, manager: dict[str, str]
) -> None:
    broken_graph = document(start="nowhere")
    unknown_node = document(nodes=[{"id": "x", "type": "teleport"}])
    missing_trigger = {key: value for key, value in document().items() if key != "trigger"}

    responses = [
        await api.client.post(BASE, json=body, headers=manager)
        for body in (broken_graph, unknown_node, missing_trigger)
    ]
    validated = await api.client.post(f"{BASE}/validate", json=broken_graph, headers=manager)
    fine = await api.client.post(f"{BASE}/validate", json=document(), headers=manager)

    assert [response.status_code for response in responses] == [422, 422, 422]
    graph_error = responses[0].json()["error"]
    assert graph_error["code"] == "invalid_request"
    assert "start names no node: 'nowhere'" in graph_error["details"][0]["msg"]
    assert responses[1].json()["error"]["details"][0]["loc"][:3] == ["body", "nodes", 0]
    assert responses[2].json()["error"]["details"][0]["loc"] == ["body", "trigger"]
    assert validated.status_code == 422
    assert fine.status_code == 200
    assert fine.json() == {"valid": True}
    listed = await api.client.get(BASE, headers=manager)
    assert listed.json()["total"] == 0


async def test_shipped_abandoned_cart_example_posts_as_is(
    api: PlatformApi, manager: dict[str, str]
) -> None:
    example = json.loads((REPO / "examples" / "journeys" / "abandoned-cart.json").read_text())

    created = await api.client.post(BASE, json=example, headers=manager)
    published = await api.client.post(f"{BASE}/{created.json()['id']}/publish", headers=manager)

    assert created.status_code == 201
    assert published.status_code == 200


async def test_moves_follow_the_status_rules_and_are_audited(
    api: PlatformApi, manager: dict[str, str]
) -> None:
    admin = bearer(await api.key("acme", Role.ADMIN))
    journey_id = (await api.client.post(BASE, json=document(), headers=manager)).json()["id"]
    path = f"{BASE}/{journey_id}"

    early_pause = await api.client.post(f"{path}/pause", headers=manager)
    await api.client.post(f"{path}/publish", headers=manager)
    paused = await api.client.post(f"{path}/pause", headers=manager)
    resumed = await api.client.post(f"{path}/resume", headers=manager)
    archived = await api.client.post(f"{path}/archive", headers=manager)
    republished = await api.client.post(f"{path}/publish", headers=manager)
    edited = await api.client.put(path, json=document(), headers=manager)
    only_paused = await api.client.get(BASE, params={"status": "archived"}, headers=manager)
    audit = await api.client.get(
        "/api/v1/platform/audit-log", params={"target_id": journey_id}, headers=admin
    )

    assert early_pause.status_code == 409
    assert early_pause.json()["error"]["code"] == "invalid_status"
    assert paused.json()["status"] == "paused"
    assert resumed.json()["status"] == "published"
    assert archived.json()["status"] == "archived"
    assert republished.status_code == 409
    assert edited.status_code == 409
    assert [item["id"] for item in only_paused.json()["items"]] == [journey_id]
    actions = [entry["action"] for entry in audit.json()["items"]]
    assert sorted(actions) == sorted(
        [
            "journey.create",
            "journey.publish",
            "journey.pause",
            "journey.resume",
            "journey.archive",
        ]
    )


async def test_listing_pages_and_filters(api: PlatformApi, manager: dict[str, str]) -> None:
    ids = [
        (await api.client.post(BASE, json=document(name=f"J{n}"), headers=manager)).json()["id"]
        for n in range(3)
    ]
    await api.client.post(f"{BASE}/{ids[0]}/publish", headers=manager)

    page = await api.client.get(BASE, params={"limit": 2}, headers=manager)
    published = await api.client.get(BASE, params={"status": "published"}, headers=manager)

    assert page.json()["total"] == 3
    assert len(page.json()["items"]) == 2
    assert [item["id"] for item in published.json()["items"]] == [ids[0]]


async def test_viewers_read_but_do_not_write(api: PlatformApi, manager: dict[str, str]) -> None:
    viewer = bearer(await api.key("acme", Role.VIEWER))
    journey_id = (await api.client.post(BASE, json=document(), headers=manager)).json()["id"]

    read = await api.client.get(f"{BASE}/{journey_id}", headers=viewer)
    write = await api.client.post(f"{BASE}/{journey_id}/publish", headers=viewer)

    assert read.status_code == 200
    assert write.status_code == 403


async def test_journeys_are_invisible_to_other_tenants(
    api: PlatformApi, manager: dict[str, str]
) -> None:
    intruder = bearer(await api.key("globex", Role.MANAGER))
    journey_id = (await api.client.post(BASE, json=document(), headers=manager)).json()["id"]
    await api.client.post(f"{BASE}/{journey_id}/publish", headers=manager)
    path = f"{BASE}/{journey_id}"

    await assert_tenant_isolated(
        api.client,
        owner=manager,
        intruder=intruder,
        reads=[path, f"{path}/versions", f"{path}/versions/1"],
        writes=[
            Probe("PUT", path, document(name="Hijacked")),
            Probe("POST", f"{path}/publish"),
            Probe("POST", f"{path}/pause"),
            Probe("POST", f"{path}/resume"),
            Probe("POST", f"{path}/archive"),
        ],
        listings=[BASE, f"{BASE}?status=published"],
        object_ids=[journey_id],
    )


# --- schedule-triggered journeys ---------------------------------------------------------------


def scheduled(**trigger: Any) -> dict[str, Any]:
    return document(trigger={"type": "schedule", "at": "09:00", **trigger})


async def _schedule_exists(client: Client, tenant_and_journey: tuple[str, str]) -> bool:
    try:
        await client.get_schedule_handle(schedule_id(*tenant_and_journey)).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def test_schedule_follows_publish_pause_resume_and_archive(
    api: PlatformApi, manager: dict[str, str], local_env: WorkflowEnvironment
) -> None:
    async def temporal() -> Client:
        return local_env.client

    api.app.state.journeys.temporal = temporal
    me = await api.client.get("/api/v1/platform/me", headers=manager)
    tenant_id = me.json()["tenant"]["id"]
    journey_id = (
        await api.client.post(BASE, json=scheduled(weekdays=[0, 2]), headers=manager)
    ).json()["id"]
    path = f"{BASE}/{journey_id}"
    key = (tenant_id, journey_id)

    await api.client.post(f"{path}/publish", headers=manager)
    published = await _schedule_exists(local_env.client, key)
    description = await local_env.client.get_schedule_handle(schedule_id(*key)).describe()
    await api.client.post(f"{path}/pause", headers=manager)
    paused = await _schedule_exists(local_env.client, key)
    await api.client.post(f"{path}/resume", headers=manager)
    resumed = await _schedule_exists(local_env.client, key)
    await api.client.put(path, json=document(), headers=manager)  # now event-triggered
    await api.client.post(f"{path}/publish", headers=manager)
    event_triggered = await _schedule_exists(local_env.client, key)

    assert (published, paused, resumed, event_triggered) == (True, False, True, False)
    calendar = description.schedule.spec.calendars[0]
    # Sunday and Tuesday, 00:00 UTC: the days before Mondays and Wednesdays.
    assert [r.start for r in calendar.day_of_week] == [0, 2]
    assert [r.start for r in calendar.hour] == [0]


async def test_one_off_schedule_in_the_past_is_refused(
    api: PlatformApi, manager: dict[str, str]
) -> None:
    yesterday = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    journey_id = (
        await api.client.post(BASE, json=scheduled(date=yesterday), headers=manager)
    ).json()["id"]

    refused = await api.client.post(f"{BASE}/{journey_id}/publish", headers=manager)

    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "schedule_in_past"
    shown = await api.client.get(f"{BASE}/{journey_id}", headers=manager)
    assert shown.json()["status"] == "draft"
