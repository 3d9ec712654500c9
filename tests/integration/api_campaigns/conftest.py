"""The management, approval, brand and calendar routes on an embedded platform whose campaign
lifecycles run on a real Temporal dev server (the session's ``local_env``), with a worker of
the platform's workflows and the runtime's own activities on a task queue of the test's own.
Each test runs on SQLite and on PostgreSQL (``sqlite_only`` for request validation alone).

The runtime gets the session's server twice over: its settings point CE_TEMPORAL_ADDRESS at it
(so nothing in the runtime ever starts a dev server of its own), and the routes' services use
the session's client and the test's queue, so one test's leftover timers never fire into the
next test's database.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from adapters.db import upgrade
from api.lifecycle import CampaignServices
from domain.platform import Role
from tests.integration.platform.support import PlatformApi, bearer, platform_api
from tests.support.temporal import local_env, new_task_queue, running_worker  # noqa: F401
from workflows.registry import WORKFLOWS

MANAGEMENT = "/api/v1/management"
WORKFLOWS_API = "/api/v1/workflows"
BRAND = "/api/v1/brand"
AUDIT_LOG = "/api/v1/platform/audit-log"

# Ample for a dev server on a loaded two-core machine; a wait ends as soon as the state shows.
WAIT_S = 30.0
POLL_S = 0.1

Headers = dict[str, str]

# For tests of request validation alone, which never reach the database's dialect.
sqlite_only = pytest.mark.parametrize("database_url", [None], ids=["sqlite"])


def banner(**overrides: Any) -> dict[str, Any]:
    creative: dict[str, Any] = {
        "format": "banner",
        "w": 300,
        "h": 250,
        "adm": '<a href="${CLICK_URL}"><img src="https://cdn.brand.example/spring.png"></a>',
        "adomain": ["brand.example"],
        "click_url": "https://brand.example/spring",
    }
    creative.update(overrides)
    return creative


def campaign_body(**overrides: Any) -> dict[str, Any]:
    """A valid campaign above the default auto-approval threshold, starting in a day."""
    start = datetime.now(UTC) + timedelta(days=1)
    body: dict[str, Any] = {
        "name": "Spring sale",
        "campaign_type": "standard",
        "currency": "USD",
        "budget": "5000",
        "daily_budget": "500",
        "start_at": start.isoformat(),
        "end_at": (start + timedelta(days=30)).isoformat(),
        "bid_floor": "0.5",
        "max_bid": "4",
        "bid_strategy": "fixed_cpm",
        "targeting": {"countries": ["FRA"]},
        "creatives": [banner()],
    }
    body.update(overrides)
    return body


@dataclass
class CampaignsApi:
    """The platform's REST API with lifecycles on Temporal, and helpers for the campaign flow."""

    platform: PlatformApi
    temporal: Client
    task_queue: str

    @property
    def client(self) -> httpx.AsyncClient:
        return self.platform.client

    async def headers(self, tenant: str, role: Role, label: str | None = None) -> Headers:
        return bearer(await self.platform.key(tenant, role, label))

    async def subject_id(self, headers: Headers) -> str:
        me = await self.client.get("/api/v1/platform/me", headers=headers)
        assert me.status_code == 200, me.text
        subject: str = me.json()["subject_id"]
        return subject

    async def create(self, headers: Headers, **overrides: Any) -> dict[str, Any]:
        response = await self.client.post(
            f"{MANAGEMENT}/campaigns", headers=headers, json=campaign_body(**overrides)
        )
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def get(self, headers: Headers, campaign_id: str) -> dict[str, Any]:
        response = await self.client.get(f"{MANAGEMENT}/campaigns/{campaign_id}", headers=headers)
        assert response.status_code == 200, response.text
        campaign: dict[str, Any] = response.json()
        return campaign

    async def submit(self, headers: Headers, campaign_id: str) -> httpx.Response:
        return await self.client.post(
            f"{MANAGEMENT}/campaigns/{campaign_id}/submit", headers=headers
        )

    async def vote(
        self, headers: Headers, campaign_id: str, decision: str = "approve", comment: str = "ok"
    ) -> httpx.Response:
        return await self.client.post(
            f"{WORKFLOWS_API}/approvals/{campaign_id}/{decision}",
            headers=headers,
            json={"comment": comment},
        )

    async def pending(self, headers: Headers) -> list[str]:
        response = await self.client.get(f"{WORKFLOWS_API}/approvals", headers=headers)
        assert response.status_code == 200, response.text
        return [item["campaign_id"] for item in response.json()]

    async def history(self, headers: Headers, campaign_id: str) -> list[dict[str, Any]]:
        response = await self.client.get(
            f"{WORKFLOWS_API}/campaigns/{campaign_id}/history", headers=headers
        )
        assert response.status_code == 200, response.text
        events: list[dict[str, Any]] = response.json()
        return events

    async def wait_for_status(
        self, headers: Headers, campaign_id: str, status: str, wait_s: float = WAIT_S
    ) -> dict[str, Any]:
        """The campaign once GET shows ``status`` (the workflow's activities write it)."""
        deadline = time.monotonic() + wait_s
        while True:
            campaign = await self.get(headers, campaign_id)
            if campaign["status"] == status:
                return campaign
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"campaign {campaign_id} is {campaign['status']}, never became {status}"
                )
            await asyncio.sleep(POLL_S)

    async def in_review(self, submitter: Headers, **overrides: Any) -> str:
        """A campaign submitted above the threshold, waiting for its votes."""
        campaign = await self.create(submitter, **overrides)
        response = await self.submit(submitter, campaign["id"])
        assert response.status_code == 200, response.text
        await self.wait_for_status(submitter, campaign["id"], "in_review")
        campaign_id: str = campaign["id"]
        return campaign_id


@pytest.fixture(scope="session")
def campaigns_postgres_url(postgres_server: str) -> str:
    upgrade(postgres_server)
    return postgres_server


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """None: platform_api's fresh SQLite file; else the session's PostgreSQL, emptied (the
    catalog of live campaigns spans every tenant, so no test may see another's)."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("campaigns_postgres_url")
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as connection:
        connection.execute("TRUNCATE tenants CASCADE")
    return url


@pytest.fixture
async def api(
    tmp_path: Path,
    database_url: str | None,
    local_env: WorkflowEnvironment,  # noqa: F811
) -> AsyncIterator[CampaignsApi]:
    address = local_env.client.service_client.config.target_host
    async with platform_api(tmp_path, database_url, temporal_address=address) as platform:
        queue = new_task_queue()

        async def session_client() -> Client:
            return local_env.client

        services: CampaignServices = platform.app.state.campaigns
        platform.app.state.campaigns = dataclasses.replace(
            services, temporal=session_client, task_queue=queue
        )
        async with running_worker(
            local_env.client,
            workflows=WORKFLOWS,
            activities=await platform.runtime.temporal_activities(),
            task_queue=queue,
        ):
            yield CampaignsApi(platform, local_env.client, queue)
