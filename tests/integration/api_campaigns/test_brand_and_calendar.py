"""/api/v1/brand (guidelines, assets) and /api/v1/management/calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.platform import Role
from tests.integration.api_campaigns.conftest import (
    BRAND,
    MANAGEMENT,
    CampaignsApi,
    banner,
    sqlite_only,
)

CALENDAR = f"{MANAGEMENT}/calendar"
GUIDELINES = {
    "colours": ["#00A86B", "#1a1a1a"],
    "fonts": ["Inter"],
    "tone": "warm, plain words",
    "words_to_avoid": ["cheap", "guaranteed results"],
    "notes": "logo never below 40 px",
}


def asset_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Primary logo",
        "kind": "logo",
        "url": "https://cdn.brand.example/logo.svg",
        "tags": ["logo", "primary"],
    }
    body.update(overrides)
    return body


async def test_guidelines_are_replaced_by_writers_and_read_by_all(api: CampaignsApi) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    viewer = await api.headers("acme", Role.VIEWER)
    empty = await api.client.get(f"{BRAND}/guidelines", headers=viewer)
    assert empty.status_code == 200
    assert empty.json()["words_to_avoid"] == []

    refused = await api.client.put(f"{BRAND}/guidelines", headers=viewer, json=GUIDELINES)
    stored = await api.client.put(f"{BRAND}/guidelines", headers=manager, json=GUIDELINES)
    invalid = await api.client.put(
        f"{BRAND}/guidelines", headers=manager, json={"colours": ["green"]}
    )

    assert refused.status_code == 403
    assert stored.status_code == 200, stored.text
    assert invalid.status_code == 422
    assert ["body", "colours", 0] in [d["loc"] for d in invalid.json()["error"]["details"]]
    read = (await api.client.get(f"{BRAND}/guidelines", headers=viewer)).json()
    assert {key: read[key] for key in GUIDELINES} == GUIDELINES

    logo = (await api.client.post(f"{BRAND}/assets", headers=manager, json=asset_body())).json()
    with_logo = await api.client.put(
        f"{BRAND}/guidelines", headers=manager, json={**GUIDELINES, "logo_asset_id": logo["id"]}
    )
    unknown_logo = await api.client.put(
        f"{BRAND}/guidelines", headers=manager, json={"logo_asset_id": "no-such-asset"}
    )
    assert with_logo.status_code == 200, with_logo.text
    assert unknown_logo.status_code == 404
    read = (await api.client.get(f"{BRAND}/guidelines", headers=viewer)).json()
    assert read["logo_asset_id"] == logo["id"]


async def test_submit_of_creatives_using_words_to_avoid_is_409_brand_violation(
    api: CampaignsApi,
) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    admin = await api.headers("acme", Role.ADMIN)
    assert (
        await api.client.put(f"{BRAND}/guidelines", headers=manager, json=GUIDELINES)
    ).status_code == 200
    in_markup = await api.create(manager, creatives=[banner(adm="<b>CHEAP shoes</b>")])
    in_variant = await api.create(
        manager, creatives=[banner(variants=["Guaranteed results, or money back"])]
    )
    clean = await api.create(manager, creatives=[banner(adm="<b>cheapest-ever? no: fair</b>")])

    markup = await api.submit(manager, in_markup["id"])
    variant = await api.submit(manager, in_variant["id"])
    fine = await api.submit(manager, clean["id"])

    assert (markup.status_code, variant.status_code) == (409, 409)
    assert markup.json()["error"]["code"] == "brand_violation"
    assert "cheap" in markup.json()["error"]["message"]
    assert "guaranteed results" in variant.json()["error"]["message"]
    assert (await api.get(manager, in_markup["id"]))["status"] == "draft"
    assert fine.status_code == 200, fine.text
    assert await api.pending(admin) == [clean["id"]]


async def test_a_campaign_without_creatives_cannot_be_submitted(api: CampaignsApi) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    campaign = await api.create(manager, creatives=[])

    response = await api.submit(manager, campaign["id"])

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "no_creatives"


async def test_assets_are_added_listed_read_and_removed(api: CampaignsApi) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    viewer = await api.headers("acme", Role.VIEWER)
    expired = datetime.now(UTC) - timedelta(days=1)
    logo = await api.client.post(f"{BRAND}/assets", headers=manager, json=asset_body())
    photo = await api.client.post(
        f"{BRAND}/assets",
        headers=manager,
        json=asset_body(
            name="Summer shoot",
            kind="image",
            url="https://cdn.brand.example/summer.jpg",
            tags=["summer"],
            usage_rights_until=expired.isoformat(),
        ),
    )
    assert logo.status_code == photo.status_code == 201, logo.text
    assert logo.json()["rights_expired"] is False
    assert photo.json()["rights_expired"] is True

    listed = (await api.client.get(f"{BRAND}/assets", headers=viewer)).json()
    assert [a["name"] for a in listed] == ["Summer shoot", "Primary logo"]
    tagged = (
        await api.client.get(f"{BRAND}/assets", headers=viewer, params={"tag": "logo"})
    ).json()
    assert [a["id"] for a in tagged] == [logo.json()["id"]]
    paged = await api.client.get(
        f"{BRAND}/assets", headers=viewer, params={"limit": 1, "offset": 1}
    )
    assert [a["id"] for a in paged.json()] == [logo.json()["id"]]
    one = await api.client.get(f"{BRAND}/assets/{logo.json()['id']}", headers=viewer)
    assert one.json() == logo.json()

    assert (
        await api.client.delete(f"{BRAND}/assets/{logo.json()['id']}", headers=viewer)
    ).status_code == 403
    removed = await api.client.delete(f"{BRAND}/assets/{logo.json()['id']}", headers=manager)
    assert removed.status_code == 204
    gone = await api.client.get(f"{BRAND}/assets/{logo.json()['id']}", headers=viewer)
    assert gone.status_code == 404
    again = await api.client.delete(f"{BRAND}/assets/{logo.json()['id']}", headers=manager)
    assert again.status_code == 404


@sqlite_only
@pytest.mark.parametrize(
    ("overrides", "location"),
    [
        ({"kind": "sticker"}, ["body", "kind"]),
        ({"url": "ftp:/nowhere"}, ["body", "url"]),
        ({"usage_rights_until": "2030-01-01T00:00:00"}, ["body", "usage_rights_until"]),
        ({"owner": "me"}, ["body", "owner"]),
    ],
    ids=["kind", "url", "naive-datetime", "unknown-field"],
)
async def test_an_invalid_asset_is_422(
    api: CampaignsApi, overrides: dict[str, Any], location: list[Any]
) -> None:
    manager = await api.headers("acme", Role.MANAGER)

    response = await api.client.post(
        f"{BRAND}/assets", headers=manager, json=asset_body(**overrides)
    )

    assert response.status_code == 422
    assert location in [d["loc"] for d in response.json()["error"]["details"]]


async def test_calendar_shows_entries_and_campaign_flights_in_a_window(
    api: CampaignsApi,
) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    viewer = await api.headers("acme", Role.VIEWER)
    monday = datetime(2031, 3, 3, tzinfo=UTC)
    campaign = await api.create(
        manager,
        name="Spring flight",
        start_at=(monday + timedelta(days=2)).isoformat(),
        end_at=(monday + timedelta(days=20)).isoformat(),
    )
    await api.create(
        manager,
        name="Autumn flight",
        start_at=(monday + timedelta(days=200)).isoformat(),
        end_at=(monday + timedelta(days=230)).isoformat(),
    )
    launch = await api.client.post(
        f"{CALENDAR}/entries",
        headers=manager,
        json={
            "kind": "event",
            "title": "Trade fair",
            "starts_at": (monday + timedelta(days=1)).isoformat(),
            "ends_at": (monday + timedelta(days=3)).isoformat(),
            "notes": "stand 4B",
        },
    )
    review = await api.client.post(
        f"{CALENDAR}/entries",
        headers=manager,
        json={
            "kind": "milestone",
            "title": "Creative review",
            "starts_at": (monday + timedelta(days=5)).isoformat(),
            "campaign_id": campaign["id"],
        },
    )
    later = await api.client.post(
        f"{CALENDAR}/entries",
        headers=manager,
        json={
            "kind": "milestone",
            "title": "Next year",
            "starts_at": (monday + timedelta(days=365)).isoformat(),
        },
    )
    assert launch.status_code == review.status_code == later.status_code == 201, launch.text
    assert review.json()["campaign_id"] == campaign["id"]

    week = await api.client.get(
        CALENDAR,
        headers=viewer,
        params={"from": monday.isoformat(), "to": (monday + timedelta(days=7)).isoformat()},
    )

    assert week.status_code == 200, week.text
    shown = [(entry["kind"], entry["title"]) for entry in week.json()]
    assert shown == [
        ("event", "Trade fair"),
        ("flight", "Spring flight"),
        ("milestone", "Creative review"),
    ]
    flight = week.json()[1]
    assert flight["campaign_id"] == campaign["id"]
    assert datetime.fromisoformat(flight["ends_at"]) == monday + timedelta(days=20)

    removed = await api.client.delete(f"{CALENDAR}/entries/{launch.json()['id']}", headers=manager)
    assert removed.status_code == 204
    week = await api.client.get(
        CALENDAR,
        headers=viewer,
        params={"from": monday.isoformat(), "to": (monday + timedelta(days=7)).isoformat()},
    )
    assert [entry["title"] for entry in week.json()] == ["Spring flight", "Creative review"]
    missing = await api.client.delete(f"{CALENDAR}/entries/{launch.json()['id']}", headers=manager)
    assert missing.status_code == 404


@sqlite_only
@pytest.mark.parametrize(
    "window",
    [
        {"from": "2031-03-10T00:00:00Z", "to": "2031-03-03T00:00:00Z"},
        {"from": "2031-03-03T00:00:00Z", "to": "2031-03-03T00:00:00Z"},
        {"from": "2031-01-01T00:00:00Z", "to": "2032-06-01T00:00:00Z"},
        {"from": "2031-03-03T00:00:00", "to": "2031-03-10T00:00:00Z"},
        {"from": "2031-03-03T00:00:00Z"},
        {"from": "next monday", "to": "2031-03-10T00:00:00Z"},
    ],
    ids=["reversed", "empty", "over-400-days", "naive", "no-end", "not-a-date"],
)
async def test_a_bad_calendar_window_is_422(api: CampaignsApi, window: dict[str, str]) -> None:
    viewer = await api.headers("acme", Role.VIEWER)

    response = await api.client.get(CALENDAR, headers=viewer, params=window)

    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] in ("bad_window", "invalid_request")


@sqlite_only
@pytest.mark.parametrize(
    ("entry", "status"),
    [
        ({"kind": "milestone", "ends_at": "2031-03-05T00:00:00Z"}, 422),
        ({"kind": "event", "ends_at": "2031-03-01T00:00:00Z"}, 422),
        ({"kind": "holiday"}, 422),
        ({"kind": "event", "campaign_id": "no-such-campaign"}, 404),
    ],
    ids=["milestone-with-end", "ends-before-start", "unknown-kind", "unknown-campaign"],
)
async def test_an_invalid_calendar_entry_is_refused(
    api: CampaignsApi, entry: dict[str, str], status: int
) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    body = {"title": "Launch", "starts_at": "2031-03-03T00:00:00Z", **entry}

    response = await api.client.post(f"{CALENDAR}/entries", headers=manager, json=body)

    assert response.status_code == status, response.text
    viewer = await api.headers("acme", Role.VIEWER)
    shown = await api.client.get(
        CALENDAR,
        headers=viewer,
        params={"from": "2031-01-01T00:00:00Z", "to": "2031-12-01T00:00:00Z"},
    )
    assert shown.json() == []
