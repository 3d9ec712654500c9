"""The campaign approval issue's acceptance, against ``campaign-express up`` as a user runs it.

1. A Manager key creates a campaign starting in a few seconds above the auto-approval
   threshold and submits it; two other approvers approve over REST; it becomes Scheduled, then
   Live at its start without further calls, and /v1/bid returns its creative. The embedded
   Temporal server finds its workflow by CampaignId, and Temporal Web answers.
2. ``up`` stopped by SIGTERM after the first approval and started again on the same CE_HOME:
   the approval goes on where it stood, no vote lost, none counted twice.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from temporal.dev_server import find_binary
from tests.factories import banner_request
from tests.support.processes import CLI, CliProcess
from tests.support.services import free_port

pytestmark = pytest.mark.slow

T = TypeVar("T")

STARTUP_S = 120
WAIT_S = 60.0
POLL_S = 0.2
CLI_TIMEOUT_S = 120
HTTP_TIMEOUT_S = 30
CAMPAIGNS = "/api/v1/management/campaigns"
APPROVALS = "/api/v1/workflows/approvals"
# A slot size only this test's campaign has a creative for.
SKYSCRAPER = {"w": 160, "h": 600}
MARKUP = '<a href="${CLICK_URL}"><img src="https://cdn.brand.example/e2e-tall.png"></a>'
# Long enough to create, submit and approve over REST before the campaign starts.
STARTS_IN = timedelta(seconds=15)


@dataclass(frozen=True)
class Keys:
    """Bearer headers: the submitting manager and the two other approvers."""

    manager: dict[str, str]
    admin: dict[str, str]
    second_manager: dict[str, str]


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


def create_key(env: dict[str, str], role: str, label: str) -> dict[str, str]:
    """``campaign-express apikey create``, as an operator runs it; the key is its last line."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CE_")} | env
    created = subprocess.run(
        [CLI, "apikey", "create", "--tenant", "acme", "--role", role, "--label", label],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("ce_"), created.stdout
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keys(env: dict[str, str]) -> Keys:
    return Keys(
        manager=create_key(env, "manager", "submitting manager"),
        admin=create_key(env, "admin", "approving admin"),
        second_manager=create_key(env, "manager", "approving manager"),
    )


def start_up(env: dict[str, str], log: Path) -> CliProcess:
    process = CliProcess(["up"], env, log)
    try:
        process.wait_for_output("running", timeout_s=STARTUP_S)
    except BaseException:
        process.terminate()
        raise
    return process


@pytest.fixture
def up(env: dict[str, str], keys: Keys, tmp_path: Path) -> Iterator[CliProcess]:
    process = start_up(env, tmp_path / "up-1.log")
    try:
        yield process
    finally:
        process.terminate()


def api(env: dict[str, str]) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{env['CE_API_PORT']}", timeout=HTTP_TIMEOUT_S)


def eventually(check: Callable[[], T | None], what: str) -> T:
    """Poll ``check`` until it returns something; the platform moves on its own timers."""
    deadline = time.monotonic() + WAIT_S
    while True:
        found = check()
        if found is not None:
            return found
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(POLL_S)


def create_campaign(client: httpx.Client, keys: Keys, start: datetime) -> str:
    response = client.post(
        CAMPAIGNS,
        headers=keys.manager,
        json={
            "name": "E2E spring sale",
            "campaign_type": "standard",
            "currency": "USD",
            "budget": "25000",
            "daily_budget": "1000",
            "start_at": start.isoformat(),
            "end_at": (start + timedelta(days=14)).isoformat(),
            "bid_floor": "0.5",
            "max_bid": "6",
            "bid_strategy": "fixed_cpm",
            "targeting": {"countries": ["FRA"]},
            "creatives": [
                {
                    "format": "banner",
                    **SKYSCRAPER,
                    "adm": MARKUP,
                    "adomain": ["brand.example"],
                    "click_url": "https://brand.example/spring",
                }
            ],
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "draft"
    campaign_id: str = response.json()["id"]
    return campaign_id


def status_of(client: httpx.Client, keys: Keys, campaign_id: str) -> str:
    response = client.get(f"{CAMPAIGNS}/{campaign_id}", headers=keys.manager)
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


def pending_for(client: httpx.Client, headers: dict[str, str]) -> list[str]:
    response = client.get(APPROVALS, headers=headers)
    assert response.status_code == 200, response.text
    return [item["campaign_id"] for item in response.json()]


def history(client: httpx.Client, keys: Keys, campaign_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/workflows/campaigns/{campaign_id}/history", headers=keys.admin)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()
    return events


def approve(client: httpx.Client, headers: dict[str, str], campaign_id: str) -> dict[str, Any]:
    response = client.post(
        f"{APPROVALS}/{campaign_id}/approve", headers=headers, json={"comment": "approved"}
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def bid_markup(client: httpx.Client) -> str | None:
    request = banner_request(imp=[{"id": "1", "banner": SKYSCRAPER, "bidfloor": 0.5}], tmax=500)
    response = client.post("/v1/bid", json=request)
    assert response.status_code in (200, 204), response.text
    if response.status_code == 204:
        return None
    markup: str = response.json()["seatbid"][0]["bid"][0]["adm"]
    return markup


def workflows_with_campaign_id(env: dict[str, str], campaign_id: str) -> str:
    """``temporal workflow list --query 'CampaignId="..."'`` against the embedded server."""
    listed = subprocess.run(
        [
            str(find_binary("temporal")),
            "workflow",
            "list",
            "--query",
            f'CampaignId="{campaign_id}"',
            "--address",
            f"127.0.0.1:{env['CE_TEMPORAL__PORT']}",
        ],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    return listed.stdout


def web_status(web: str, campaign_id: str) -> str | None:
    """The CampaignStatus search attribute of the campaign's workflow, as Temporal Web's own
    API (the one its pages call) shows it."""
    response = httpx.get(
        f"{web}/api/v1/namespaces/default/workflows",
        params={"query": f'CampaignId="{campaign_id}"'},
        timeout=HTTP_TIMEOUT_S,
    )
    assert response.status_code == 200, response.text
    executions = response.json().get("executions", [])
    if not executions:
        return None
    (execution,) = executions
    assert execution["execution"]["workflowId"].endswith(f"-{campaign_id}")
    assert execution["type"]["name"] == "CampaignLifecycle"
    status = execution["searchAttributes"]["indexedFields"]["CampaignStatus"]["data"]
    decoded: str = json.loads(base64.b64decode(status))
    return decoded


def test_manager_submits_two_approvers_approve_and_it_goes_live_and_bids(
    up: CliProcess, env: dict[str, str], keys: Keys
) -> None:
    with api(env) as client:
        start = datetime.now(UTC) + STARTS_IN
        campaign_id = create_campaign(client, keys, start)

        submitted = client.post(f"{CAMPAIGNS}/{campaign_id}/submit", headers=keys.manager)
        assert submitted.status_code == 200, submitted.text
        assert submitted.json()["status"] == "in_review"
        assert pending_for(client, keys.admin) == [campaign_id]
        assert pending_for(client, keys.second_manager) == [campaign_id]
        assert pending_for(client, keys.manager) == []
        assert bid_markup(client) is None

        first = approve(client, keys.second_manager, campaign_id)
        assert (first["outcome"], first["approvals"]) == ("pending", 1)
        second = approve(client, keys.admin, campaign_id)
        assert (second["outcome"], second["approvals"]) == ("approved", 2)

        eventually(
            lambda: status_of(client, keys, campaign_id) in ("scheduled", "live") or None,
            "the campaign scheduled",
        )
        eventually(
            lambda: status_of(client, keys, campaign_id) == "live" or None, "the campaign live"
        )
        markup = eventually(lambda: bid_markup(client), "a bid with the campaign's creative")
        assert "e2e-tall.png" in markup

        events = history(client, keys, campaign_id)
        moves = [
            (e["detail"]["from_status"], e["detail"]["to_status"], e["at"])
            for e in events
            if e["kind"] == "transition"
        ]
        assert [(old, new) for old, new, _ in moves] == [
            ("draft", "in_review"),
            ("in_review", "approved"),
            ("approved", "scheduled"),
            ("scheduled", "live"),
        ]
        # Scheduled before its start (the approvals were in time), live at it: the timer did it.
        scheduled_at, live_at = (datetime.fromisoformat(at) for _, _, at in moves[-2:])
        assert scheduled_at < start <= live_at

    def listed() -> str | None:
        found = workflows_with_campaign_id(env, campaign_id)
        return found if campaign_id in found else None

    workflows = eventually(listed, "the workflow in the CampaignId visibility query")
    assert "CampaignLifecycle" in workflows
    assert "Running" in workflows
    web = f"http://127.0.0.1:{env['CE_TEMPORAL__UI_PORT']}"
    assert httpx.get(web, timeout=HTTP_TIMEOUT_S).status_code == 200
    shown = eventually(
        lambda: web_status(web, campaign_id) == "live" or None,
        "Temporal Web showing the workflow live",
    )
    assert shown


def test_a_restart_mid_approval_loses_no_vote_and_counts_none_twice(
    up: CliProcess, env: dict[str, str], keys: Keys, tmp_path: Path
) -> None:
    with api(env) as client:
        campaign_id = create_campaign(client, keys, datetime.now(UTC) + timedelta(days=1))
        submitted = client.post(f"{CAMPAIGNS}/{campaign_id}/submit", headers=keys.manager)
        assert submitted.status_code == 200, submitted.text
        first = approve(client, keys.second_manager, campaign_id)
        assert (first["outcome"], first["approvals"]) == ("pending", 1)
    assert up.terminate() == 0, up.output()

    again = start_up(env, tmp_path / "up-2.log")
    try:
        with api(env) as client:
            assert status_of(client, keys, campaign_id) == "in_review"
            votes = [e for e in history(client, keys, campaign_id) if e["kind"] == "vote"]
            assert len(votes) == 1
            assert pending_for(client, keys.admin) == [campaign_id]
            assert pending_for(client, keys.second_manager) == []
            duplicate = client.post(
                f"{APPROVALS}/{campaign_id}/approve", headers=keys.second_manager, json={}
            )
            assert duplicate.status_code == 409
            assert duplicate.json()["error"]["code"] == "duplicate_vote"

            second = approve(client, keys.admin, campaign_id)

            assert (second["outcome"], second["approvals"]) == ("approved", 2)
            eventually(
                lambda: status_of(client, keys, campaign_id) == "scheduled" or None,
                "the campaign scheduled after the restart",
            )
            events = history(client, keys, campaign_id)
            voters = [e["actor_id"] for e in events if e["kind"] == "vote"]
            assert len(voters) == len(set(voters)) == 2
            assert [e["detail"]["to_status"] for e in events if e["kind"] == "transition"] == [
                "in_review",
                "approved",
                "scheduled",
            ]
    finally:
        assert again.terminate() == 0, again.output()
