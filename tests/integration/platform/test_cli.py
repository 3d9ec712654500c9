"""``campaign-express apikey create`` run as an operator would, its key used on the API."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.integration.platform.support import bearer, platform_api
from tests.support.processes import CLI

CLI_TIMEOUT_S = 120


def run_cli(args: list[str], home: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CE_")}
    env |= {"CE_HOME": str(home), "CE_DATABASE_URL": database_url}
    return subprocess.run(
        [CLI, *args], env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False
    )


async def test_apikey_create_prints_working_key_last(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'db' / 'campaign.db'}"

    created = run_cli(
        ["apikey", "create", "--tenant", "acme", "--role", "manager", "--label", "ops laptop"],
        tmp_path / "home",
        database_url,
    )

    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("ce_")
    assert key not in created.stderr
    async with platform_api(tmp_path, database_url) as api:
        me = await api.client.get("/api/v1/platform/me", headers=bearer(key))
        assert me.status_code == 200
        body = me.json()
        assert (body["tenant"]["name"], body["role"], body["name"]) == (
            "acme",
            "manager",
            "ops laptop",
        )
        tenant = await api.auth.tenants.find("acme")
        assert tenant is not None
        audit = await api.auth.audit.list(tenant.id, limit=10, offset=0)
        assert [(e.action, e.actor.kind) for e in audit.items] == [("api_key.create", "system")]


async def test_apikey_create_twice_reuses_tenant(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'db' / 'campaign.db'}"

    first = run_cli(
        ["apikey", "create", "--tenant", "acme", "--role", "viewer"], tmp_path, database_url
    )
    second = run_cli(
        ["apikey", "create", "--tenant", "acme", "--role", "admin"], tmp_path, database_url
    )

    assert (first.returncode, second.returncode) == (0, 0)
    tenant_lines = {
        line
        for out in (first, second)
        for line in out.stdout.splitlines()
        if line.startswith("tenant")
    }
    assert len(tenant_lines) == 1


async def test_apikey_revoke_stops_key(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'db' / 'campaign.db'}"
    created = run_cli(
        ["apikey", "create", "--tenant", "acme", "--role", "viewer"], tmp_path, database_url
    )
    key = created.stdout.strip().splitlines()[-1]

    revoked = run_cli(
        ["apikey", "revoke", "--tenant", "acme", key.split("_")[1]], tmp_path, database_url
    )
    unknown = run_cli(["apikey", "revoke", "--tenant", "acme", "0" * 16], tmp_path, database_url)

    assert revoked.returncode == 0, revoked.stderr
    assert unknown.returncode != 0
    assert "has no API key" in unknown.stderr
    async with platform_api(tmp_path, database_url) as api:
        me = await api.client.get("/api/v1/platform/me", headers=bearer(key))
        assert me.status_code == 401


def test_apikey_create_refuses_unknown_role(tmp_path: Path) -> None:
    result = run_cli(
        ["apikey", "create", "--tenant", "acme", "--role", "owner"],
        tmp_path,
        f"sqlite:///{tmp_path / 'campaign.db'}",
    )

    assert result.returncode == 2
    assert "'owner' is not one of" in result.stderr
