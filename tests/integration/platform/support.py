"""Helpers for tests that call /api/v1 with real credentials; reusable by other areas' tests.

    async with platform_api(tmp_path) as api:
        admin = await api.key("tenant-a", Role.ADMIN)
        response = await api.client.get("/api/v1/platform/me", headers=bearer(admin))

``assert_tenant_isolated`` checks that one tenant's credentials see nothing of another's
objects: every read and write of them answers 404, listings never mention them, and the
owner's view is unchanged afterwards.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from adapters.auth import create_api_key
from adapters.db import upgrade
from adapters.settings import Settings
from api.deps import AuthServices
from api.main import create_app
from domain.identity import Actor
from domain.platform import Role
from workers.runtime import Role as ProcessRole
from workers.runtime import Runtime

TEST_ACTOR = Actor(kind="system", id="tests", name="tests")


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


@dataclass
class PlatformApi:
    client: httpx.AsyncClient
    app: FastAPI
    runtime: Runtime
    auth: AuthServices
    settings: Settings

    async def key(self, tenant: str, role: Role, label: str | None = None) -> str:
        """A new API key (in clear) for ``tenant`` (created if missing) with ``role``."""
        owner = await self.auth.tenants.ensure(tenant)
        _, token = await create_api_key(
            self.auth.api_keys,
            tenant_id=owner.id,
            label=label or f"{role.value} key",
            role=role,
            created_by=TEST_ACTOR,
            now=self.auth.clock.now(),
        )
        return token


@asynccontextmanager
async def platform_api(
    home: Path, database_url: str | None = None, **settings: Any
) -> AsyncIterator[PlatformApi]:
    """An embedded platform on ``database_url``, by default a fresh SQLite file under ``home``."""
    database_url = database_url or f"sqlite:///{home / 'platform-db' / 'campaign.db'}"
    upgrade(database_url)
    configured = Settings(
        home=home / "ce-home",
        database_url=database_url,
        analytics={"flush_interval_s": 0.1},
        **settings,
    )
    async with Runtime(configured, ProcessRole.EMBEDDED) as runtime:
        dispatch = create_app(await runtime.api_services())
        transport = httpx.ASGITransport(app=dispatch)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            yield PlatformApi(
                client, dispatch.app, runtime, await runtime.auth_services(), configured
            )


@dataclass(frozen=True)
class Probe:
    """One request at another tenant's object."""

    method: str
    path: str
    json: Any = None


def _assert_not_found(response: httpx.Response, probe: str) -> None:
    assert response.status_code == 404, f"{probe}: {response.status_code} {response.text}"
    # The whole body is the error: nothing of the object leaks alongside it.
    assert set(response.json()) == {"error"}, probe
    assert response.json()["error"]["code"] == "not_found", probe


async def assert_tenant_isolated(
    client: httpx.AsyncClient,
    *,
    owner: Mapping[str, str],
    intruder: Mapping[str, str],
    reads: Sequence[str],
    writes: Sequence[Probe] = (),
    listings: Sequence[str] = (),
    object_ids: Sequence[str] = (),
) -> None:
    """``owner``/``intruder``: headers of two tenants' callers, each allowed to do all the
    probes in its own tenant. ``reads``: GET paths of the owner's objects; ``writes``: probes
    that would change them; ``listings``: GET paths the intruder may list in its own tenant;
    ``object_ids``: ids that must appear in none of the intruder's listings."""
    seen_by_owner = {}
    for path in reads:
        response = await client.get(path, headers=owner)
        assert response.status_code == 200, f"owner GET {path}: {response.status_code}"
        seen_by_owner[path] = response.json()
    for path in reads:
        _assert_not_found(await client.get(path, headers=intruder), f"GET {path}")
    for probe in writes:
        response = await client.request(probe.method, probe.path, json=probe.json, headers=intruder)
        _assert_not_found(response, f"{probe.method} {probe.path}")
    for path in listings:
        response = await client.get(path, headers=intruder)
        assert response.status_code == 200, f"intruder GET {path}: {response.status_code}"
        text = json.dumps(response.json())
        leaked = [object_id for object_id in object_ids if object_id in text]
        assert not leaked, f"GET {path} shows another tenant's {leaked}"
    for path, before in seen_by_owner.items():
        after = (await client.get(path, headers=owner)).json()
        assert after == before, f"{path} changed through another tenant's requests"
