"""Submitting, voting over REST, the lifecycle moves that follow, and approval rules."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client

from domain.platform import Role
from tests.factories import banner_request
from tests.integration.api_campaigns.conftest import (
    MANAGEMENT,
    POLL_S,
    WAIT_S,
    WORKFLOWS_API,
    CampaignsApi,
    Headers,
    banner,
    sqlite_only,
)
from tests.support.services import free_port

CAMPAIGNS = f"{MANAGEMENT}/campaigns"
RULES = f"{WORKFLOWS_API}/approval-rules"
JSON = {"content-type": "application/json"}
# A size no other creative in these tests has: a bid for it can only be this campaign's.
SKYSCRAPER = {"w": 160, "h": 600}


def skyscraper_request() -> dict[str, Any]:
    return banner_request(
        imp=[{"id": "1", "banner": SKYSCRAPER, "bidfloor": 0.5}],
        tmax=1000,
    )


async def bid_markup(api: CampaignsApi) -> str | None:
    """The markup of the bid for a 160x600 slot in France, None for no bid."""
    response = await api.client.post("/v1/bid", json=skyscraper_request(), headers=JSON)
    assert response.status_code in (200, 204), response.text
    if response.status_code == 204:
        return None
    markup: str = response.json()["seatbid"][0]["bid"][0]["adm"]
    return markup


async def wait_for_bid(api: CampaignsApi, *, present: bool) -> str | None:
    """Bid until the catalog has caught up with the campaign's status."""
    deadline = time.monotonic() + WAIT_S
    while True:
        markup = await bid_markup(api)
        if (markup is not None) == present:
            return markup
        assert time.monotonic() < deadline, f"bid {'never' if present else 'still'} made"
        await asyncio.sleep(POLL_S)


def transitions(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for event in history if event["kind"] == "transition"]


def moves(history: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["detail"]["from_status"], e["detail"]["to_status"]) for e in transitions(history)]


def voters(history: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [
        (event["actor_id"], event["detail"]["decision"])
        for event in history
        if event["kind"] == "vote"
    ]


async def put_rule(api: CampaignsApi, admin: Headers, campaign_type: str, **rule: Any) -> None:
    response = await api.client.put(f"{RULES}/{campaign_type}", headers=admin, json=rule)
    assert response.status_code == 200, response.text


async def test_submit_under_the_threshold_is_approved_and_scheduled_at_once(
    api: CampaignsApi,
) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    admin = await api.headers("acme", Role.ADMIN)
    campaign = await api.create(manager, budget="999", daily_budget="100")

    response = await api.submit(manager, campaign["id"])

    assert response.status_code == 200, response.text
    assert response.json()["status"] in ("in_review", "approved", "scheduled")
    await api.wait_for_status(manager, campaign["id"], "scheduled")
    assert campaign["id"] not in await api.pending(admin)
    history = await api.history(manager, campaign["id"])
    assert moves(history) == [
        ("draft", "in_review"),
        ("in_review", "approved"),
        ("approved", "scheduled"),
    ]
    assert voters(history) == []


async def test_submit_above_the_threshold_waits_in_review_for_other_approvers(
    api: CampaignsApi,
) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    other_manager = await api.headers("acme", Role.MANAGER, "second manager")
    admin = await api.headers("acme", Role.ADMIN)
    analyst = await api.headers("acme", Role.ANALYST)
    campaign = await api.create(manager, budget="1000")

    response = await api.submit(manager, campaign["id"])

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "in_review"
    assert (await api.get(manager, campaign["id"]))["status"] == "in_review"
    assert await api.pending(admin) == [campaign["id"]]
    assert await api.pending(other_manager) == [campaign["id"]]
    assert await api.pending(manager) == []
    forbidden = await api.client.get(f"{WORKFLOWS_API}/approvals", headers=analyst)
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "forbidden"

    (pending,) = (await api.client.get(f"{WORKFLOWS_API}/approvals", headers=admin)).json()
    assert pending["name"] == "Spring sale"
    assert pending["submitted_by"] == await api.subject_id(manager)
    assert pending["approvals_needed"] == 2
    again = await api.submit(manager, campaign["id"])
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_submitted"


async def test_every_read_after_submit_sees_the_campaign_in_review(api: CampaignsApi) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    admin = await api.headers("acme", Role.ADMIN)
    for _ in range(5):
        campaign = await api.create(manager)

        submitted = await api.submit(manager, campaign["id"])

        assert submitted.status_code == 200, submitted.text
        assert (await api.get(manager, campaign["id"]))["status"] == "in_review"
        assert campaign["id"] in await api.pending(admin)
        deleted = await api.client.delete(f"{CAMPAIGNS}/{campaign['id']}", headers=manager)
        edited = await api.client.patch(
            f"{CAMPAIGNS}/{campaign['id']}", headers=manager, json={"name": "late edit"}
        )
        assert (deleted.status_code, edited.status_code) == (409, 409)


async def test_a_submit_the_workflows_never_took_hands_the_campaign_back(
    api: CampaignsApi,
) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    campaign = await api.create(manager)
    services = api.platform.app.state.campaigns
    unreachable = f"127.0.0.1:{free_port()}"  # nothing listens: Temporal is down

    async def temporal_down() -> Client:
        return await Client.connect(unreachable)

    api.platform.app.state.campaigns = dataclasses.replace(services, temporal=temporal_down)
    try:
        refused = await api.submit(manager, campaign["id"])
    finally:
        api.platform.app.state.campaigns = services

    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "workflows_unavailable"
    assert (await api.get(manager, campaign["id"]))["status"] == "draft"  # not stuck in review
    assert (await api.submit(manager, campaign["id"])).status_code == 200


async def test_two_submits_at_once_start_one_lifecycle(api: CampaignsApi) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    campaign = await api.create(manager)

    first, second = await asyncio.gather(
        api.submit(manager, campaign["id"]), api.submit(manager, campaign["id"])
    )

    assert sorted([first.status_code, second.status_code]) == [200, 409]
    refused = first if first.status_code == 409 else second
    assert refused.json()["error"]["code"] == "already_submitted"
    assert moves(await api.history(manager, campaign["id"])) == [("draft", "in_review")]


async def test_two_managers_approve_and_the_campaign_goes_live_and_bids_at_its_start(
    api: CampaignsApi,
) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    other_manager = await api.headers("acme", Role.MANAGER, "second manager")
    third_manager = await api.headers("acme", Role.MANAGER, "third manager")
    admin = await api.headers("acme", Role.ADMIN)
    start = datetime.now(UTC) + timedelta(seconds=5)
    markup = '<a href="${CLICK_URL}"><img src="https://cdn.brand.example/tall.png"></a>'
    campaign_id = await api.in_review(
        manager,
        start_at=start.isoformat(),
        end_at=(start + timedelta(days=7)).isoformat(),
        creatives=[banner(**SKYSCRAPER, adm=markup)],
    )
    assert await bid_markup(api) is None

    first = await api.vote(other_manager, campaign_id, "approve", "looks right")
    assert first.status_code == 200, first.text
    assert first.json() == {
        "outcome": "pending",
        "status": "in_review",
        "approvals": 1,
        "approvals_needed": 2,
    }
    assert await api.pending(other_manager) == []
    assert await api.pending(third_manager) == [campaign_id]
    second = await api.vote(third_manager, campaign_id, "approve", "go")
    assert second.status_code == 200, second.text
    assert second.json()["outcome"] == "approved"

    assert await api.pending(admin) == []
    await api.wait_for_status(manager, campaign_id, "live")
    bid = await wait_for_bid(api, present=True)
    assert bid is not None
    assert "tall.png" in bid

    history = await api.history(manager, campaign_id)
    assert moves(history) == [
        ("draft", "in_review"),
        ("in_review", "approved"),
        ("approved", "scheduled"),
        ("scheduled", "live"),
    ]
    assert datetime.fromisoformat(transitions(history)[-1]["at"]) >= start
    assert voters(history) == [
        (await api.subject_id(other_manager), "approve"),
        (await api.subject_id(third_manager), "approve"),
    ]
    votes = [event["detail"] for event in history if event["kind"] == "vote"]
    assert [vote["comment"] for vote in votes] == ["looks right", "go"]


async def test_self_approval_is_409(api: CampaignsApi) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    campaign_id = await api.in_review(manager)

    response = await api.vote(manager, campaign_id)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "self_approval"
    assert voters(await api.history(manager, campaign_id)) == []


async def test_an_api_key_of_the_submitter_cannot_approve_either(api: CampaignsApi) -> None:
    # Four eyes means two people: a key made by the submitter acts for the submitter.
    admin = await api.headers("acme", Role.ADMIN)
    made = await api.client.post(
        "/api/v1/platform/api-keys", headers=admin, json={"label": "my script", "role": "admin"}
    )
    assert made.status_code == 201, made.text
    own_key = {"Authorization": f"Bearer {made.json()['key']}"}
    campaign_id = await api.in_review(admin)

    response = await api.vote(own_key, campaign_id)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "self_approval"
    assert voters(await api.history(admin, campaign_id)) == []


async def test_a_second_vote_by_the_same_approver_is_409(api: CampaignsApi) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    admin = await api.headers("acme", Role.ADMIN)
    campaign_id = await api.in_review(manager)
    assert (await api.vote(admin, campaign_id)).status_code == 200

    again = await api.vote(admin, campaign_id)
    flip = await api.vote(admin, campaign_id, "reject")

    assert (again.status_code, flip.status_code) == (409, 409)
    assert again.json()["error"]["code"] == flip.json()["error"]["code"] == "duplicate_vote"
    assert len(voters(await api.history(manager, campaign_id))) == 1
    assert (await api.get(manager, campaign_id))["status"] == "in_review"


async def test_a_rejection_after_one_approval_rejects(api: CampaignsApi) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    admin = await api.headers("acme", Role.ADMIN)
    other_manager = await api.headers("acme", Role.MANAGER, "second manager")
    campaign_id = await api.in_review(manager)
    assert (await api.vote(admin, campaign_id)).status_code == 200

    response = await api.vote(other_manager, campaign_id, "reject", "wrong audience")

    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "rejected"
    await api.wait_for_status(manager, campaign_id, "rejected")
    history = await api.history(manager, campaign_id)
    assert moves(history)[-1] == ("in_review", "rejected")
    rejection = transitions(history)[-1]
    assert "wrong audience" in rejection["detail"]["reason"]
    late = await api.vote(admin, campaign_id, "approve")
    assert late.status_code == 409


async def test_a_rejected_campaign_edited_and_resubmitted_asks_everyone_again(
    api: CampaignsApi,
) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    admin = await api.headers("acme", Role.ADMIN)
    other_manager = await api.headers("acme", Role.MANAGER, "second manager")
    campaign_id = await api.in_review(manager)
    assert (await api.vote(admin, campaign_id)).status_code == 200
    assert (await api.vote(other_manager, campaign_id, "reject")).status_code == 200
    await api.wait_for_status(manager, campaign_id, "rejected")
    edited = await api.client.patch(
        f"{CAMPAIGNS}/{campaign_id}", headers=manager, json={"budget": "3000"}
    )
    assert edited.status_code == 200, edited.text

    assert (await api.submit(manager, campaign_id)).status_code == 200
    await api.wait_for_status(manager, campaign_id, "in_review")

    assert await api.pending(admin) == [campaign_id]
    assert await api.pending(other_manager) == [campaign_id]
    assert (await api.vote(admin, campaign_id)).status_code == 200
    assert (await api.vote(other_manager, campaign_id)).json()["outcome"] == "approved"
    await api.wait_for_status(manager, campaign_id, "scheduled")


@sqlite_only
async def test_votes_need_the_approvals_permission(api: CampaignsApi) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    campaign_id = await api.in_review(manager)
    for role in (Role.OPERATOR, Role.ANALYST, Role.VIEWER):
        headers = await api.headers("acme", role)
        response = await api.vote(headers, campaign_id)
        assert response.status_code == 403, role
    assert voters(await api.history(manager, campaign_id)) == []


async def test_a_vote_on_a_campaign_never_submitted_is_409(api: CampaignsApi) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    admin = await api.headers("acme", Role.ADMIN)
    campaign = await api.create(manager)

    response = await api.vote(admin, campaign["id"])
    unknown = await api.vote(admin, "no-such-campaign")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_submitted"
    assert unknown.status_code == 404


async def test_operator_pauses_and_resumes_and_bidding_follows(api: CampaignsApi) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    operator = await api.headers("acme", Role.OPERATOR)
    viewer = await api.headers("acme", Role.VIEWER)
    campaign = await api.create(
        manager,
        budget="500",
        daily_budget=None,
        start_at=None,
        end_at=None,
        creatives=[banner(**SKYSCRAPER)],
    )
    assert (await api.submit(manager, campaign["id"])).status_code == 200
    await api.wait_for_status(manager, campaign["id"], "live")
    await wait_for_bid(api, present=True)

    refused = await api.client.post(f"{CAMPAIGNS}/{campaign['id']}/pause", headers=viewer)
    assert refused.status_code == 403
    paused = await api.client.post(
        f"{CAMPAIGNS}/{campaign['id']}/pause", headers=operator, params={"reason": "brand check"}
    )
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"
    assert (await api.get(viewer, campaign["id"]))["status"] == "paused"
    await wait_for_bid(api, present=False)

    twice = await api.client.post(f"{CAMPAIGNS}/{campaign['id']}/pause", headers=operator)
    assert twice.status_code == 409
    assert twice.json()["error"]["code"] == "invalid_transition"
    refused = await api.client.post(f"{CAMPAIGNS}/{campaign['id']}/resume", headers=viewer)
    assert refused.status_code == 403
    resumed = await api.client.post(f"{CAMPAIGNS}/{campaign['id']}/resume", headers=operator)
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["status"] == "live"
    await wait_for_bid(api, present=True)

    history = await api.history(viewer, campaign["id"])
    assert moves(history)[-2:] == [("live", "paused"), ("paused", "live")]
    pause = transitions(history)[-2]
    assert pause["actor_id"] == await api.subject_id(operator)
    assert pause["detail"]["reason"] == "brand check"


async def test_pause_of_a_campaign_in_review_is_409(api: CampaignsApi) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    campaign_id = await api.in_review(manager)

    response = await api.client.post(f"{CAMPAIGNS}/{campaign_id}/pause", headers=manager)
    draft = await api.create(manager)
    never_submitted = await api.client.post(f"{CAMPAIGNS}/{draft['id']}/pause", headers=manager)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_transition"
    assert never_submitted.status_code == 409
    assert never_submitted.json()["error"]["code"] == "not_submitted"


async def test_archive_of_a_draft_needs_no_workflow(api: CampaignsApi) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    campaign = await api.create(manager)

    response = await api.client.post(f"{CAMPAIGNS}/{campaign['id']}/archive", headers=manager)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "archived"
    assert (await api.get(manager, campaign["id"]))["status"] == "archived"
    submitted = await api.submit(manager, campaign["id"])
    assert submitted.status_code == 409


async def test_archive_calls_off_a_scheduled_campaign(api: CampaignsApi) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    campaign = await api.create(manager, budget="500", daily_budget=None)
    assert (await api.submit(manager, campaign["id"])).status_code == 200
    await api.wait_for_status(manager, campaign["id"], "scheduled")

    response = await api.client.post(f"{CAMPAIGNS}/{campaign['id']}/archive", headers=manager)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "archived"
    assert (await api.get(manager, campaign["id"]))["status"] == "archived"


async def test_archive_of_a_campaign_in_review_is_409(api: CampaignsApi) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    campaign_id = await api.in_review(manager)

    response = await api.client.post(f"{CAMPAIGNS}/{campaign_id}/archive", headers=manager)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_transition"
    assert (await api.get(manager, campaign_id))["status"] == "in_review"


async def test_approval_rules_are_read_by_all_and_written_by_admins(api: CampaignsApi) -> None:
    admin = await api.headers("acme", Role.ADMIN)
    manager = await api.headers("acme", Role.MANAGER)
    viewer = await api.headers("acme", Role.VIEWER)
    rule = {
        "min_approvals": 1,
        "auto_approve_below_usd": "250",
        "required_roles": [{"role": "admin", "above_budget_usd": "10000"}],
        "remind_after_s": 3600,
        "escalate_after_s": 7200,
    }

    refused = await api.client.put(f"{RULES}/video-push", headers=manager, json=rule)
    stored = await api.client.put(f"{RULES}/video-push", headers=admin, json=rule)
    default = await api.client.put(f"{RULES}/*", headers=admin, json={"min_approvals": 3})

    assert refused.status_code == 403
    assert stored.status_code == default.status_code == 200, stored.text
    listed = (await api.client.get(RULES, headers=viewer)).json()
    by_type = {item["campaign_type"]: item for item in listed}
    assert set(by_type) == {"video-push", "*"}
    assert by_type["video-push"]["min_approvals"] == 1
    assert by_type["video-push"]["required_roles"] == [
        {"role": "admin", "above_budget_usd": "10000"}
    ]
    assert by_type["*"]["min_approvals"] == 3

    misspelt = await api.client.put(f"{RULES}/video-push", headers=admin, json={"min_aprovals": 1})
    assert misspelt.status_code == 422
    assert ["body", "min_aprovals"] in [d["loc"] for d in misspelt.json()["error"]["details"]]
    invalid = await api.client.put(f"{RULES}/video-push", headers=admin, json={"min_approvals": 0})
    bad_type = await api.client.put(f"{RULES}/Video Push", headers=admin, json=rule)
    assert (invalid.status_code, bad_type.status_code) == (422, 422)
    assert (await api.client.delete(f"{RULES}/video-push", headers=manager)).status_code == 403
    assert (await api.client.delete(f"{RULES}/video-push", headers=admin)).status_code == 204
    assert (await api.client.delete(f"{RULES}/video-push", headers=admin)).status_code == 404
    remaining = (await api.client.get(RULES, headers=viewer)).json()
    assert [item["campaign_type"] for item in remaining] == ["*"]


async def test_a_rule_change_applies_to_the_next_submission(api: CampaignsApi) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    admin = await api.headers("acme", Role.ADMIN)
    other_manager = await api.headers("acme", Role.MANAGER, "second manager")
    before_change = await api.in_review(manager)

    await put_rule(api, admin, "standard", min_approvals=1)
    after_change = await api.in_review(manager)

    single = await api.vote(admin, after_change)
    assert single.json()["outcome"] == "approved"
    await api.wait_for_status(manager, after_change, "scheduled")
    earlier = await api.vote(admin, before_change)
    assert earlier.json() == {
        "outcome": "pending",
        "status": "in_review",
        "approvals": 1,
        "approvals_needed": 2,
    }
    assert (await api.vote(other_manager, before_change)).json()["outcome"] == "approved"


async def test_approvers_are_reminded_then_escalated_while_nobody_decides(
    api: CampaignsApi,
) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    admin = await api.headers("acme", Role.ADMIN)
    await put_rule(api, admin, "standard", remind_after_s=1, escalate_after_s=2)
    campaign_id = await api.in_review(manager)

    async def nudges() -> list[str]:
        kinds = [event["kind"] for event in await api.history(manager, campaign_id)]
        return [kind for kind in kinds if kind in ("reminder", "escalation")]

    deadline = time.monotonic() + WAIT_S
    while "escalation" not in await nudges():
        assert time.monotonic() < deadline, await nudges()
        await asyncio.sleep(POLL_S)

    seen = await nudges()
    assert seen[0] == "reminder"
    assert seen.count("escalation") == 1
    escalation = next(
        e for e in await api.history(manager, campaign_id) if e["kind"] == "escalation"
    )
    assert escalation["detail"] == {"approvals_needed": 2, "roles_needed": []}
    assert (await api.vote(admin, campaign_id)).json()["outcome"] == "pending"


async def test_a_required_role_must_approve_above_its_budget(api: CampaignsApi) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    other_manager = await api.headers("acme", Role.MANAGER, "second manager")
    admin = await api.headers("acme", Role.ADMIN)
    await put_rule(
        api,
        admin,
        "*",
        min_approvals=1,
        required_roles=[{"role": "admin", "above_budget_usd": "2000"}],
    )
    campaign_id = await api.in_review(manager, budget="5000")

    first = await api.vote(other_manager, campaign_id)

    assert first.json()["outcome"] == "pending"
    (pending,) = (await api.client.get(f"{WORKFLOWS_API}/approvals", headers=admin)).json()
    assert pending["roles_needed"] == ["admin"]
    assert (await api.vote(admin, campaign_id)).json()["outcome"] == "approved"
    await api.wait_for_status(manager, campaign_id, "scheduled")


async def test_a_rule_can_raise_the_auto_approval_threshold(api: CampaignsApi) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    admin = await api.headers("acme", Role.ADMIN)
    await put_rule(api, admin, "standard", auto_approve_below_usd="10000")
    campaign = await api.create(manager, budget="5000")

    assert (await api.submit(manager, campaign["id"])).status_code == 200

    await api.wait_for_status(manager, campaign["id"], "scheduled")
    assert campaign["id"] not in await api.pending(admin)


async def test_a_campaign_in_another_currency_compares_in_usd(api: CampaignsApi) -> None:
    manager = await api.headers("acme", Role.MANAGER)
    admin = await api.headers("acme", Role.ADMIN)
    unknown = await api.create(manager, currency="XTS")

    refused = await api.submit(manager, unknown["id"])

    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "unsupported_currency"
    assert (await api.get(manager, unknown["id"]))["status"] == "draft"
    assert await api.pending(admin) == []
