"""Tenant A's admin sees nothing of tenant B's users and API keys: every id answers 404."""

from __future__ import annotations

from domain.platform import Role
from tests.integration.platform.support import PlatformApi, Probe, assert_tenant_isolated, bearer

BASE = "/api/v1/platform"


async def test_other_tenants_users_and_keys_answer_404(api: PlatformApi) -> None:
    owner = bearer(await api.key("tenant-b", Role.ADMIN))
    intruder = bearer(await api.key("tenant-a", Role.ADMIN))
    user = (
        await api.client.post(
            f"{BASE}/users",
            headers=owner,
            json={
                "email": "bea@b.example",
                "display_name": "Bea",
                "role": "manager",
                "password": "tenant-b-password",
            },
        )
    ).json()
    key = (
        await api.client.post(
            f"{BASE}/api-keys", headers=owner, json={"label": "b's key", "role": "viewer"}
        )
    ).json()

    await assert_tenant_isolated(
        api.client,
        owner=owner,
        intruder=intruder,
        reads=[f"{BASE}/users/{user['id']}", f"{BASE}/api-keys/{key['id']}"],
        writes=[
            Probe("PATCH", f"{BASE}/users/{user['id']}", {"role": "admin", "disabled": True}),
            Probe("DELETE", f"{BASE}/users/{user['id']}"),
            Probe("DELETE", f"{BASE}/api-keys/{key['id']}"),
        ],
        listings=[f"{BASE}/users", f"{BASE}/api-keys", f"{BASE}/audit-log", f"{BASE}/tenant"],
        object_ids=[user["id"], key["id"], "bea@b.example", "tenant-b"],
    )
    assert (await api.client.get(f"{BASE}/me", headers=bearer(key["key"]))).status_code == 200


async def test_user_of_one_tenant_cannot_sign_in_to_another(api: PlatformApi) -> None:
    owner = bearer(await api.key("tenant-b", Role.ADMIN))
    await api.key("tenant-a", Role.ADMIN)
    await api.client.post(
        f"{BASE}/users",
        headers=owner,
        json={
            "email": "bea@b.example",
            "display_name": "Bea",
            "role": "admin",
            "password": "tenant-b-password",
        },
    )

    response = await api.client.post(
        f"{BASE}/auth/token",
        json={"tenant": "tenant-a", "email": "bea@b.example", "password": "tenant-b-password"},
    )

    assert response.status_code == 401
