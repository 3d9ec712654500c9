"""Tenant, users and API keys over REST, each write checked in the audit log."""

from __future__ import annotations

from typing import Any

import pytest

from domain.platform import Role
from tests.integration.platform.support import PlatformApi, bearer

BASE = "/api/v1/platform"


@pytest.fixture
async def admin(api: PlatformApi) -> dict[str, str]:
    return bearer(await api.key("tenant-a", Role.ADMIN, label="admin key"))


async def last_audit(api: PlatformApi, admin: dict[str, str], **filters: str) -> dict[str, Any]:
    response = await api.client.get(f"{BASE}/audit-log", headers=admin, params=filters)
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["items"]
    assert entries, f"no audit entry for {filters}"
    return entries[0]


def admin_key_id(admin: dict[str, str]) -> str:
    return admin["Authorization"].split("_")[1]


# --- tenant --------------------------------------------------------------------------------------


async def test_every_role_reads_its_tenant(api: PlatformApi) -> None:
    viewer = bearer(await api.key("tenant-a", Role.VIEWER))

    response = await api.client.get(f"{BASE}/tenant", headers=viewer)

    assert response.status_code == 200
    assert response.json()["name"] == "tenant-a"


async def test_tenant_update_is_audited_with_before_and_after(
    api: PlatformApi, admin: dict[str, str]
) -> None:
    response = await api.client.patch(
        f"{BASE}/tenant", headers=admin, json={"name": "Tenant A", "seat": "seat-7"}
    )

    assert response.status_code == 200
    tenant = response.json()
    assert (tenant["name"], tenant["seat"]) == ("Tenant A", "seat-7")
    entry = await last_audit(api, admin, target_type="tenant")
    assert entry["action"] == "tenant.update"
    assert entry["target_id"] == tenant["id"]
    assert entry["before"] == {"id": tenant["id"], "name": "tenant-a", "seat": None}
    assert entry["after"] == {"id": tenant["id"], "name": "Tenant A", "seat": "seat-7"}
    assert entry["actor"] == {"kind": "api_key", "id": admin_key_id(admin), "name": "admin key"}


async def test_tenant_rename_to_taken_name_is_409(api: PlatformApi, admin: dict[str, str]) -> None:
    await api.key("tenant-b", Role.ADMIN)

    response = await api.client.patch(f"{BASE}/tenant", headers=admin, json={"name": "tenant-b"})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "tenant_name_taken"


async def test_tenant_name_cannot_be_cleared(api: PlatformApi, admin: dict[str, str]) -> None:
    response = await api.client.patch(f"{BASE}/tenant", headers=admin, json={"name": None})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


# --- users ---------------------------------------------------------------------------------------

NEW_USER = {
    "email": "Bob@Brand.example",
    "display_name": "Bob",
    "role": "operator",
    "password": "correct horse",
}


async def test_user_created_read_and_audited(api: PlatformApi, admin: dict[str, str]) -> None:
    created = await api.client.post(f"{BASE}/users", headers=admin, json=NEW_USER)

    assert created.status_code == 201, created.text
    user = created.json()
    assert set(user) == {
        "id",
        "email",
        "display_name",
        "role",
        "disabled",
        "created_at",
        "updated_at",
    }
    assert (user["email"], user["role"], user["disabled"]) == (
        "bob@brand.example",
        "operator",
        False,
    )
    assert (await api.client.get(f"{BASE}/users/{user['id']}", headers=admin)).json() == user
    entry = await last_audit(api, admin, target_id=user["id"])
    assert entry["action"] == "user.create"
    assert entry["before"] is None
    assert entry["after"]["email"] == "bob@brand.example"
    assert "password" not in entry["after"]
    assert "password_hash" not in entry["after"]


async def test_user_with_taken_email_is_409(api: PlatformApi, admin: dict[str, str]) -> None:
    await api.client.post(f"{BASE}/users", headers=admin, json=NEW_USER)

    response = await api.client.post(
        f"{BASE}/users", headers=admin, json={**NEW_USER, "email": "bob@brand.EXAMPLE"}
    )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "email_taken"


@pytest.mark.parametrize(
    "change",
    [{"email": "not-an-email"}, {"password": "Zq9#x"}, {"role": "owner"}, {"display_name": ""}],
)
async def test_invalid_user_is_422(
    api: PlatformApi, admin: dict[str, str], change: dict[str, str]
) -> None:
    response = await api.client.post(f"{BASE}/users", headers=admin, json={**NEW_USER, **change})

    assert response.status_code == 422
    assert "Zq9#x" not in response.text  # a rejected password is not echoed back


async def test_users_paginated_with_total(api: PlatformApi, admin: dict[str, str]) -> None:
    for name in ("a", "b", "c"):
        await api.client.post(
            f"{BASE}/users", headers=admin, json={**NEW_USER, "email": f"{name}@brand.example"}
        )

    page = (await api.client.get(f"{BASE}/users?limit=2&offset=1", headers=admin)).json()

    assert [user["email"] for user in page["items"]] == ["b@brand.example", "c@brand.example"]
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 1)


async def test_page_size_is_bounded(api: PlatformApi, admin: dict[str, str]) -> None:
    response = await api.client.get(f"{BASE}/users?limit=100000", headers=admin)

    assert response.status_code == 422


async def test_user_update_audited_without_password(
    api: PlatformApi, admin: dict[str, str]
) -> None:
    user = (await api.client.post(f"{BASE}/users", headers=admin, json=NEW_USER)).json()

    response = await api.client.patch(
        f"{BASE}/users/{user['id']}",
        headers=admin,
        json={"role": "analyst", "password": "a brand new password"},
    )

    assert response.status_code == 200
    assert response.json()["role"] == "analyst"
    entry = await last_audit(api, admin, target_id=user["id"], action="user.update")
    assert entry["before"]["role"] == "operator"
    assert entry["after"]["role"] == "analyst"
    assert entry["after"]["password_changed"] is True
    assert "a brand new password" not in str(entry)


async def test_user_delete_audited_with_before(api: PlatformApi, admin: dict[str, str]) -> None:
    user = (await api.client.post(f"{BASE}/users", headers=admin, json=NEW_USER)).json()

    response = await api.client.delete(f"{BASE}/users/{user['id']}", headers=admin)

    assert response.status_code == 204
    assert (await api.client.get(f"{BASE}/users/{user['id']}", headers=admin)).status_code == 404
    entry = await last_audit(api, admin, target_id=user["id"], action="user.delete")
    assert entry["before"]["email"] == "bob@brand.example"
    assert entry["after"] is None


async def test_admin_cannot_demote_or_delete_self(api: PlatformApi) -> None:
    key = await api.key("tenant-a", Role.ADMIN)
    await api.client.post(
        f"{BASE}/users",
        headers=bearer(key),
        json={**NEW_USER, "email": "root@brand.example", "role": "admin"},
    )
    token = (
        await api.client.post(
            f"{BASE}/auth/token",
            json={"tenant": "tenant-a", "email": "root@brand.example", "password": "correct horse"},
        )
    ).json()["access_token"]
    me = (await api.client.get(f"{BASE}/me", headers=bearer(token))).json()

    demoted = await api.client.patch(
        f"{BASE}/users/{me['subject_id']}", headers=bearer(token), json={"role": "viewer"}
    )
    deleted = await api.client.delete(f"{BASE}/users/{me['subject_id']}", headers=bearer(token))

    assert (demoted.status_code, deleted.status_code) == (409, 409)
    assert demoted.json()["error"]["code"] == "own_access"
    # Nor with an API key of their own: it acts for them.
    own_key = (
        await api.client.post(
            f"{BASE}/api-keys", headers=bearer(token), json={"label": "mine", "role": "admin"}
        )
    ).json()
    assert own_key["owner_id"] == me["subject_id"]
    by_key = await api.client.patch(
        f"{BASE}/users/{me['subject_id']}", headers=bearer(own_key["key"]), json={"role": "viewer"}
    )
    assert by_key.status_code == 409
    assert by_key.json()["error"]["code"] == "own_access"


# --- API keys ------------------------------------------------------------------------------------


async def test_api_key_created_shown_once_and_works(
    api: PlatformApi, admin: dict[str, str]
) -> None:
    created = await api.client.post(
        f"{BASE}/api-keys", headers=admin, json={"label": "reporting", "role": "analyst"}
    )

    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    body = created.json()
    assert body["key"].startswith(f"{body['prefix']}_")
    assert body["prefix"] == f"ce_{body['id']}"
    assert body["created_by"] == f"api_key:{admin_key_id(admin)}"
    me = (await api.client.get(f"{BASE}/me", headers=bearer(body["key"]))).json()
    assert (me["role"], me["name"]) == ("analyst", "reporting")
    shown_again = (await api.client.get(f"{BASE}/api-keys/{body['id']}", headers=admin)).json()
    assert "key" not in shown_again
    assert shown_again["last_used_at"] is not None
    entry = await last_audit(api, admin, target_id=body["id"])
    assert entry["action"] == "api_key.create"
    assert entry["after"]["role"] == "analyst"
    assert body["key"] not in str(entry)


async def test_api_keys_listed_without_secrets(api: PlatformApi, admin: dict[str, str]) -> None:
    created = (
        await api.client.post(
            f"{BASE}/api-keys", headers=admin, json={"label": "one", "role": "viewer"}
        )
    ).json()

    listing = await api.client.get(f"{BASE}/api-keys", headers=admin)

    assert listing.status_code == 200
    assert listing.json()["total"] == 2
    assert created["key"] not in listing.text
    assert created["key"].split("_", 2)[2] not in listing.text
    assert all("key" not in item for item in listing.json()["items"])


async def test_api_key_revocation_audited_once(api: PlatformApi, admin: dict[str, str]) -> None:
    created = (
        await api.client.post(
            f"{BASE}/api-keys", headers=admin, json={"label": "one", "role": "viewer"}
        )
    ).json()

    first = await api.client.delete(f"{BASE}/api-keys/{created['id']}", headers=admin)
    again = await api.client.delete(f"{BASE}/api-keys/{created['id']}", headers=admin)

    assert (first.status_code, again.status_code) == (204, 204)
    revocations = (
        await api.client.get(
            f"{BASE}/audit-log", headers=admin, params={"action": "api_key.revoke"}
        )
    ).json()
    assert revocations["total"] == 1
    entry = revocations["items"][0]
    assert entry["before"]["revoked_at"] is None
    assert entry["after"]["revoked_at"] is not None
    listed = (await api.client.get(f"{BASE}/api-keys?include_revoked=false", headers=admin)).json()
    assert created["id"] not in [item["id"] for item in listed["items"]]


async def test_unknown_api_key_id_is_404(api: PlatformApi, admin: dict[str, str]) -> None:
    response = await api.client.delete(f"{BASE}/api-keys/0000000000000000", headers=admin)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


# --- audit log -----------------------------------------------------------------------------------


async def test_audit_log_filters_by_actor_and_since(
    api: PlatformApi, admin: dict[str, str]
) -> None:
    other_admin = bearer(await api.key("tenant-a", Role.ADMIN, label="second admin"))
    await api.client.post(f"{BASE}/users", headers=admin, json=NEW_USER)
    await api.client.post(
        f"{BASE}/api-keys", headers=other_admin, json={"label": "x", "role": "viewer"}
    )

    by_second = (
        await api.client.get(
            f"{BASE}/audit-log", headers=admin, params={"actor": admin_key_id(other_admin)}
        )
    ).json()
    since_future = (
        await api.client.get(
            f"{BASE}/audit-log", headers=admin, params={"since": "2999-01-01T00:00:00Z"}
        )
    ).json()

    assert [entry["action"] for entry in by_second["items"]] == ["api_key.create"]
    assert since_future == {"items": [], "total": 0, "limit": 50, "offset": 0}
