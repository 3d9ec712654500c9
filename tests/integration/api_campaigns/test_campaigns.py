"""/api/v1/management/campaigns: create, validate, list, read, edit, delete, creatives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from domain.platform import Role
from tests.integration.api_campaigns.conftest import (
    MANAGEMENT,
    CampaignsApi,
    banner,
    campaign_body,
    sqlite_only,
)

CAMPAIGNS = f"{MANAGEMENT}/campaigns"


async def test_create_answers_201_with_an_id_and_draft_status(api: CampaignsApi) -> None:
    manager = await api.headers("acme", Role.MANAGER)

    response = await api.client.post(CAMPAIGNS, headers=manager, json=campaign_body())

    assert response.status_code == 201, response.text
    created = response.json()
    assert created["id"]
    assert created["status"] == "draft"
    assert Decimal(created["budget"]) == Decimal(5000)
    assert created["creatives"][0]["id"]
    assert created["creatives"][0]["adomain"] == ["brand.example"]
    assert created["targeting"]["countries"] == ["FRA"]
    assert await api.get(manager, created["id"]) == created


@sqlite_only
@pytest.mark.parametrize(
    ("overrides", "location"),
    [
        ({"budget": "-5"}, ["body", "budget"]),
        ({"budget": "0"}, ["body", "budget"]),
        ({"daily_budget": "6000"}, ["body", "daily_budget"]),
        ({"end_at": "2020-01-01T00:00:00Z"}, ["body", "end_at"]),
        ({"start_at": "2030-01-01T00:00:00"}, ["body", "start_at"]),
        ({"currency": "usd"}, ["body", "currency"]),
        ({"creatives": [{"format": "banner", "adm": "<b>hi</b>"}]}, ["body", "creatives", 0, "w"]),
        ({"creatives": [banner(h=None)]}, ["body", "creatives", 0, "h"]),
        ({"creatives": [banner(format="video")]}, ["body", "creatives", 0, "duration_s"]),
        ({"creatives": [banner(click_url="not a url")]}, ["body", "creatives", 0, "click_url"]),
        ({"max_bid": "0.1"}, ["body", "max_bid"]),
        ({"surprise": True}, ["body", "surprise"]),
    ],
    ids=[
        "negative-budget",
        "zero-budget",
        "daily-above-budget",
        "end-before-start",
        "naive-datetime",
        "lowercase-currency",
        "banner-without-size",
        "banner-without-height",
        "video-without-duration",
        "bad-click-url",
        "max-bid-below-floor",
        "unknown-field",
    ],
)
async def test_create_refuses_an_invalid_campaign_naming_the_field(
    api: CampaignsApi, overrides: dict[str, Any], location: list[Any]
) -> None:
    manager = await api.headers("acme", Role.MANAGER)

    response = await api.client.post(CAMPAIGNS, headers=manager, json=campaign_body(**overrides))

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert location in [detail["loc"] for detail in error["details"]], error
    listed = await api.client.get(CAMPAIGNS, headers=manager)
    assert listed.json()["total"] == 0


async def test_list_pages_newest_first_and_filters(api: CampaignsApi) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    viewer = await api.headers("acme", Role.VIEWER)
    names = ["Spring shoes", "Summer hats", "Spring socks", "Autumn coats", "Winter boots"]
    created = [
        await api.create(
            manager,
            name=name,
            campaign_type="video-push" if "Spring" in name else "standard",
        )
        for name in names
    ]
    archived = created[3]["id"]
    response = await api.client.post(f"{CAMPAIGNS}/{archived}/archive", headers=manager)
    assert response.status_code == 200, response.text

    async def page(**params: Any) -> dict[str, Any]:
        response = await api.client.get(CAMPAIGNS, headers=viewer, params=params)
        assert response.status_code == 200, response.text
        listed: dict[str, Any] = response.json()
        return listed

    first = await page(limit=2)
    second = await page(limit=2, offset=2)
    rest = await page(limit=2, offset=4)
    assert first["total"] == second["total"] == rest["total"] == 5
    assert (first["limit"], second["offset"]) == (2, 2)
    shown = [c["name"] for c in first["items"] + second["items"] + rest["items"]]
    assert shown == list(reversed(names))

    spring = await page(q="spring")
    assert {c["name"] for c in spring["items"]} == {"Spring shoes", "Spring socks"}
    typed = await page(campaign_type="standard")
    assert {c["name"] for c in typed["items"]} == {"Summer hats", "Autumn coats", "Winter boots"}
    drafts = await page(status="draft", campaign_type="standard")
    assert {c["name"] for c in drafts["items"]} == {"Summer hats", "Winter boots"}
    assert (await page(status="archived"))["items"][0]["id"] == archived
    assert (await page(q="100%_"))["total"] == 0

    bad = await api.client.get(CAMPAIGNS, headers=viewer, params={"status": "sleeping"})
    assert bad.status_code == 422
    assert ["query", "status"] in [d["loc"] for d in bad.json()["error"]["details"]]
    too_many = await api.client.get(CAMPAIGNS, headers=viewer, params={"limit": 501})
    assert too_many.status_code == 422


@sqlite_only
async def test_get_of_an_unknown_campaign_is_404(api: CampaignsApi) -> None:
    viewer = await api.headers("acme", Role.VIEWER)

    response = await api.client.get(f"{CAMPAIGNS}/no-such-campaign", headers=viewer)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_patch_edits_a_draft(api: CampaignsApi) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    campaign = await api.create(manager)
    end = datetime.now(UTC) + timedelta(days=60)

    response = await api.client.patch(
        f"{CAMPAIGNS}/{campaign['id']}",
        headers=manager,
        json={"name": "Spring sale, extended", "budget": "7500", "end_at": end.isoformat()},
    )

    assert response.status_code == 200, response.text
    edited = response.json()
    assert edited["name"] == "Spring sale, extended"
    assert Decimal(edited["budget"]) == Decimal(7500)
    assert datetime.fromisoformat(edited["end_at"]) == end
    assert edited["status"] == "draft"
    assert edited["version"] > campaign["version"]
    assert edited["creatives"] == campaign["creatives"]
    assert await api.get(manager, campaign["id"]) == edited


@sqlite_only
@pytest.mark.parametrize(
    ("change", "location"),
    [
        ({"daily_budget": "999999"}, ["body", "daily_budget"]),
        ({"end_at": "2020-01-01T00:00:00Z"}, ["body", "end_at"]),
        ({"budget": "-1"}, ["body", "budget"]),
        ({"status": "live"}, ["body", "status"]),
    ],
    ids=["daily-above-stored-budget", "end-before-stored-start", "negative-budget", "status"],
)
async def test_patch_refuses_an_edit_that_makes_the_campaign_invalid(
    api: CampaignsApi, change: dict[str, Any], location: list[Any]
) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    campaign = await api.create(manager)

    response = await api.client.patch(f"{CAMPAIGNS}/{campaign['id']}", headers=manager, json=change)

    assert response.status_code == 422, response.text
    assert location in [d["loc"] for d in response.json()["error"]["details"]]
    assert await api.get(manager, campaign["id"]) == campaign


async def test_patch_of_a_live_campaign_is_409_not_editable(api: CampaignsApi) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    campaign = await api.create(manager, budget="500", daily_budget=None, start_at=None)
    assert (await api.submit(manager, campaign["id"])).status_code == 200
    live = await api.wait_for_status(manager, campaign["id"], "live")

    response = await api.client.patch(
        f"{CAMPAIGNS}/{campaign['id']}", headers=manager, json={"name": "renamed while live"}
    )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_editable"
    assert await api.get(manager, campaign["id"]) == live


async def test_patch_of_a_rejected_campaign_makes_it_a_draft(api: CampaignsApi) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    approver = await api.headers("acme", Role.ADMIN)
    campaign_id = await api.in_review(manager)
    assert (await api.vote(approver, campaign_id, "reject", "too pricey")).status_code == 200
    await api.wait_for_status(manager, campaign_id, "rejected")

    response = await api.client.patch(
        f"{CAMPAIGNS}/{campaign_id}", headers=manager, json={"budget": "4000"}
    )

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "draft"
    assert (await api.get(manager, campaign_id))["status"] == "draft"


async def test_delete_removes_a_draft(api: CampaignsApi) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    campaign = await api.create(manager)

    response = await api.client.delete(f"{CAMPAIGNS}/{campaign['id']}", headers=manager)

    assert response.status_code == 204
    gone = await api.client.get(f"{CAMPAIGNS}/{campaign['id']}", headers=manager)
    assert gone.status_code == 404
    again = await api.client.delete(f"{CAMPAIGNS}/{campaign['id']}", headers=manager)
    assert again.status_code == 404


async def test_delete_of_a_submitted_campaign_is_409(api: CampaignsApi) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    campaign_id = await api.in_review(manager)

    response = await api.client.delete(f"{CAMPAIGNS}/{campaign_id}", headers=manager)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_deletable"
    assert (await api.get(manager, campaign_id))["status"] == "in_review"


async def test_creatives_are_added_to_and_removed_from_a_draft(api: CampaignsApi) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    campaign = await api.create(manager, creatives=[])
    leaderboard = banner(w=728, h=90, adm="<b>wide</b>", variants=["Now 20% off"])

    added = await api.client.post(
        f"{CAMPAIGNS}/{campaign['id']}/creatives", headers=manager, json=leaderboard
    )
    second = await api.client.post(
        f"{CAMPAIGNS}/{campaign['id']}/creatives", headers=manager, json=banner()
    )

    assert added.status_code == second.status_code == 201, added.text
    creative = added.json()
    assert (creative["w"], creative["h"], creative["variants"]) == (728, 90, ["Now 20% off"])
    stored = await api.get(manager, campaign["id"])
    assert [c["id"] for c in stored["creatives"]] == [creative["id"], second.json()["id"]]

    removed = await api.client.delete(
        f"{CAMPAIGNS}/{campaign['id']}/creatives/{creative['id']}", headers=manager
    )
    assert removed.status_code == 204
    stored = await api.get(manager, campaign["id"])
    assert [c["id"] for c in stored["creatives"]] == [second.json()["id"]]
    missing = await api.client.delete(
        f"{CAMPAIGNS}/{campaign['id']}/creatives/{creative['id']}", headers=manager
    )
    assert missing.status_code == 404
    invalid = await api.client.post(
        f"{CAMPAIGNS}/{campaign['id']}/creatives", headers=manager, json=banner(w=None)
    )
    assert invalid.status_code == 422
    assert ["body", "w"] in [d["loc"] for d in invalid.json()["error"]["details"]]


async def test_creatives_of_a_submitted_campaign_are_frozen(api: CampaignsApi) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    campaign_id = await api.in_review(manager)
    (creative,) = (await api.get(manager, campaign_id))["creatives"]

    added = await api.client.post(
        f"{CAMPAIGNS}/{campaign_id}/creatives", headers=manager, json=banner()
    )
    removed = await api.client.delete(
        f"{CAMPAIGNS}/{campaign_id}/creatives/{creative['id']}", headers=manager
    )

    assert (added.status_code, removed.status_code) == (409, 409)
    assert added.json()["error"]["code"] == removed.json()["error"]["code"] == "not_editable"


async def test_removing_a_creative_from_a_rejected_campaign_makes_it_a_draft(
    api: CampaignsApi,
) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    approver = await api.headers("acme", Role.ADMIN)
    campaign_id = await api.in_review(manager, creatives=[banner(), banner(w=728, h=90)])
    assert (await api.vote(approver, campaign_id, "reject")).status_code == 200
    rejected = await api.wait_for_status(manager, campaign_id, "rejected")

    response = await api.client.delete(
        f"{CAMPAIGNS}/{campaign_id}/creatives/{rejected['creatives'][0]['id']}", headers=manager
    )

    assert response.status_code == 204
    assert (await api.get(manager, campaign_id))["status"] == "draft"


@sqlite_only
async def test_writes_need_campaign_write_and_reads_any_role(api: CampaignsApi) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    campaign = await api.create(manager)
    for role in (Role.OPERATOR, Role.ANALYST, Role.VIEWER):
        headers = await api.headers("acme", role)
        created = await api.client.post(CAMPAIGNS, headers=headers, json=campaign_body())
        patched = await api.client.patch(
            f"{CAMPAIGNS}/{campaign['id']}", headers=headers, json={"name": "x"}
        )
        submitted = await api.submit(headers, campaign["id"])
        assert (created.status_code, patched.status_code, submitted.status_code) == (
            403,
            403,
            403,
        ), role
        assert (await api.get(headers, campaign["id"]))["name"] == campaign["name"]
    unauthenticated = await api.client.get(f"{CAMPAIGNS}/{campaign['id']}")
    assert unauthenticated.status_code == 401
