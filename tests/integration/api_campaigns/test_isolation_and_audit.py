"""Tenant A's keys see nothing of tenant B's campaigns, votes, brand or calendar; and every
campaign write lands in the tenant's audit log."""

from __future__ import annotations

from typing import Any

from domain.platform import Role
from tests.integration.api_campaigns.conftest import (
    AUDIT_LOG,
    BRAND,
    MANAGEMENT,
    WORKFLOWS_API,
    CampaignsApi,
    banner,
)
from tests.integration.platform.support import Probe, assert_tenant_isolated

CAMPAIGNS = f"{MANAGEMENT}/campaigns"
CALENDAR = f"{MANAGEMENT}/calendar"
WINDOW = "from=2031-01-01T00:00:00Z&to=2031-12-01T00:00:00Z"


async def test_another_tenants_campaign_objects_answer_404(api: CampaignsApi) -> None:
    owner = await api.headers("tenant-b", Role.ADMIN)
    submitter = await api.headers("tenant-b", Role.MANAGER)
    intruder = await api.headers("tenant-a", Role.ADMIN)
    draft = await api.create(
        owner,
        name="B's draft",
        start_at="2031-03-01T00:00:00Z",
        end_at="2031-04-01T00:00:00Z",
    )
    creative_id = draft["creatives"][0]["id"]
    in_review = await api.in_review(submitter, name="B's campaign in review")
    asset = (
        await api.client.post(
            f"{BRAND}/assets",
            headers=owner,
            json={"name": "B logo", "kind": "logo", "url": "https://b.example/logo.svg"},
        )
    ).json()
    entry = (
        await api.client.post(
            f"{CALENDAR}/entries",
            headers=owner,
            json={
                "kind": "milestone",
                "title": "B's launch",
                "starts_at": "2031-03-01T00:00:00Z",
                "campaign_id": draft["id"],
            },
        )
    ).json()
    await api.create(intruder, name="A's own")

    await assert_tenant_isolated(
        api.client,
        owner=owner,
        intruder=intruder,
        reads=[
            f"{CAMPAIGNS}/{draft['id']}",
            f"{CAMPAIGNS}/{in_review}",
            f"{WORKFLOWS_API}/campaigns/{in_review}/history",
            f"{BRAND}/assets/{asset['id']}",
        ],
        writes=[
            Probe("PATCH", f"{CAMPAIGNS}/{draft['id']}", {"name": "taken over"}),
            Probe("POST", f"{CAMPAIGNS}/{draft['id']}/creatives", banner()),
            Probe("DELETE", f"{CAMPAIGNS}/{draft['id']}/creatives/{creative_id}"),
            Probe("POST", f"{CAMPAIGNS}/{draft['id']}/submit"),
            Probe("POST", f"{CAMPAIGNS}/{draft['id']}/archive"),
            Probe("DELETE", f"{CAMPAIGNS}/{draft['id']}"),
            Probe("POST", f"{CAMPAIGNS}/{in_review}/pause"),
            Probe("POST", f"{CAMPAIGNS}/{in_review}/resume"),
            Probe("POST", f"{CAMPAIGNS}/{in_review}/archive"),
            Probe("POST", f"{WORKFLOWS_API}/approvals/{in_review}/approve", {"comment": "x"}),
            Probe("POST", f"{WORKFLOWS_API}/approvals/{in_review}/reject", {"comment": "x"}),
            Probe("DELETE", f"{BRAND}/assets/{asset['id']}"),
            Probe("DELETE", f"{CALENDAR}/entries/{entry['id']}"),
            Probe(
                "POST",
                f"{CALENDAR}/entries",
                {
                    "kind": "event",
                    "title": "pinned on B's campaign",
                    "starts_at": "2031-03-02T00:00:00Z",
                    "campaign_id": draft["id"],
                },
            ),
        ],
        listings=[
            CAMPAIGNS,
            f"{CAMPAIGNS}?q=B",
            f"{WORKFLOWS_API}/approvals",
            f"{WORKFLOWS_API}/approval-rules",
            f"{BRAND}/assets",
            f"{BRAND}/guidelines",
            f"{CALENDAR}?{WINDOW}",
            AUDIT_LOG,
        ],
        object_ids=[draft["id"], in_review, creative_id, asset["id"], entry["id"], "B's"],
    )
    assert await api.pending(owner) == [in_review]


async def test_approval_rules_guidelines_and_logos_are_per_tenant(api: CampaignsApi) -> None:
    owner = await api.headers("tenant-b", Role.ADMIN)
    intruder = await api.headers("tenant-a", Role.ADMIN)
    rule = {"min_approvals": 1}
    assert (
        await api.client.put(f"{WORKFLOWS_API}/approval-rules/*", headers=owner, json=rule)
    ).status_code == 200
    guidelines = {"words_to_avoid": ["free"]}
    assert (
        await api.client.put(f"{BRAND}/guidelines", headers=owner, json=guidelines)
    ).status_code == 200

    logo = (
        await api.client.post(
            f"{BRAND}/assets",
            headers=owner,
            json={"name": "B logo", "kind": "logo", "url": "https://b.example/logo.svg"},
        )
    ).json()
    borrowed = await api.client.put(
        f"{BRAND}/guidelines", headers=intruder, json={"logo_asset_id": logo["id"]}
    )
    assert borrowed.status_code == 404
    removed = await api.client.delete(f"{WORKFLOWS_API}/approval-rules/*", headers=intruder)
    campaign = await api.create(intruder, creatives=[banner(adm="<b>free shipping</b>")])
    submitted = await api.submit(intruder, campaign["id"])

    assert removed.status_code == 404
    assert submitted.status_code == 200, submitted.text
    assert (await api.client.get(f"{WORKFLOWS_API}/approval-rules", headers=owner)).json()[0][
        "min_approvals"
    ] == 1


def actions(entries: list[dict[str, Any]], target_id: str) -> list[str]:
    return sorted(entry["action"] for entry in entries if entry["target_id"] == target_id)


async def test_campaign_writes_and_votes_are_audited(api: CampaignsApi) -> None:
    admin = await api.headers("acme", Role.ADMIN)
    manager = await api.headers("acme", Role.MANAGER)
    other_manager = await api.headers("acme", Role.MANAGER, "second manager")
    operator = await api.headers("acme", Role.OPERATOR)
    campaign = await api.create(manager, start_at=None, end_at=None)
    renamed = await api.client.patch(
        f"{CAMPAIGNS}/{campaign['id']}", headers=manager, json={"name": "Renamed"}
    )
    assert renamed.status_code == 200
    assert (await api.submit(manager, campaign["id"])).status_code == 200
    await api.wait_for_status(manager, campaign["id"], "in_review")
    assert (await api.vote(admin, campaign["id"], comment="first")).status_code == 200
    assert (await api.vote(other_manager, campaign["id"])).status_code == 200
    await api.wait_for_status(manager, campaign["id"], "live")
    paused = await api.client.post(f"{CAMPAIGNS}/{campaign['id']}/pause", headers=operator)
    assert paused.status_code == 200, paused.text

    response = await api.client.get(AUDIT_LOG, headers=admin, params={"target_type": "campaign"})

    assert response.status_code == 200, response.text
    entries = response.json()["items"]
    assert actions(entries, campaign["id"]) == [
        "approval.approve",
        "approval.approve",
        "campaign.create",
        "campaign.pause",
        "campaign.submit",
        "campaign.update",
    ]
    by_action = {entry["action"]: entry for entry in entries}
    assert by_action["campaign.update"]["before"]["name"] == "Spring sale"
    assert by_action["campaign.update"]["after"]["name"] == "Renamed"
    assert by_action["campaign.pause"]["actor"]["id"] == await api.subject_id(operator)
    assert by_action["campaign.pause"]["after"]["status"] == "paused"
    votes = [e for e in entries if e["action"] == "approval.approve"]
    assert {vote["actor"]["id"] for vote in votes} == {
        await api.subject_id(admin),
        await api.subject_id(other_manager),
    }
    assert {vote["after"]["outcome"] for vote in votes} == {"pending", "approved"}
    assert by_action["campaign.create"]["actor"]["id"] == await api.subject_id(manager)
