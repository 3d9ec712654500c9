"""401 and 403 on /api/v1, and what a credential says about its caller."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from adapters.auth import TokenCodec, mint_api_key
from domain.platform import Role
from tests.integration.platform.support import PlatformApi, bearer, platform_api

ME = "/api/v1/platform/me"
USERS = "/api/v1/platform/users"
TOKEN = "/api/v1/platform/auth/token"


def assert_unauthorized(response: httpx.Response, message_part: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    error = response.json()["error"]
    assert error["code"] == "unauthorized"
    assert message_part in error["message"]


async def test_request_without_credentials_is_401(api: PlatformApi) -> None:
    response = await api.client.get(ME)

    assert_unauthorized(response, "Authorization: Bearer")
    assert response.headers["www-authenticate"] == 'Bearer realm="campaign-express"'


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Basic dXNlcjpwYXNz", "must read 'Bearer"),
        ("Bearer", "must read 'Bearer"),
        ("Bearer ce_nothing", "malformed"),
        ("Bearer not.a.token", "not valid"),
    ],
)
async def test_malformed_credentials_are_401(api: PlatformApi, header: str, message: str) -> None:
    response = await api.client.get(ME, headers={"Authorization": header})

    assert_unauthorized(response, message)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_unknown_key_is_401(api: PlatformApi) -> None:
    response = await api.client.get(ME, headers=bearer(mint_api_key().token))

    assert_unauthorized(response, "unknown API key")


async def test_key_with_wrong_secret_is_401(api: PlatformApi) -> None:
    key = await api.key("tenant-a", Role.ADMIN)
    forged = f"ce_{key.split('_')[1]}_{mint_api_key().secret}"

    response = await api.client.get(ME, headers=bearer(forged))

    assert_unauthorized(response, "unknown API key")


async def test_me_names_key_tenant_and_permissions(api: PlatformApi) -> None:
    key = await api.key("tenant-a", Role.OPERATOR, label="night shift")

    response = await api.client.get(ME, headers=bearer(key))

    assert response.status_code == 200
    body = response.json()
    assert body["tenant"]["name"] == "tenant-a"
    assert (body["kind"], body["role"], body["name"]) == ("api_key", "operator", "night shift")
    assert body["subject_id"] == key.split("_")[1]
    assert body["permissions"] == ["campaign:read", "campaign:operate", "reports"]


async def test_role_without_permission_gets_403_naming_it(api: PlatformApi) -> None:
    key = await api.key("tenant-a", Role.MANAGER)

    response = await api.client.get(USERS, headers=bearer(key))

    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "forbidden"
    assert "system:config" in error["message"]
    assert error["details"] == [{"permission": "system:config", "role": "manager"}]


async def test_revoked_key_is_refused_at_once(api: PlatformApi) -> None:
    admin = await api.key("tenant-a", Role.ADMIN)
    victim = await api.key("tenant-a", Role.VIEWER)
    assert (await api.client.get(ME, headers=bearer(victim))).status_code == 200

    revoked = await api.client.delete(
        f"/api/v1/platform/api-keys/{victim.split('_')[1]}", headers=bearer(admin)
    )

    assert revoked.status_code == 204
    assert_unauthorized(await api.client.get(ME, headers=bearer(victim)), "revoked")


# --- users signing in ----------------------------------------------------------------------------


async def add_user(
    api: PlatformApi, admin: str, email: str, role: str = "analyst", password: str = "pa55word!x"
) -> dict[str, object]:
    response = await api.client.post(
        USERS,
        headers=bearer(admin),
        json={"email": email, "display_name": "Someone", "role": role, "password": password},
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_user_signs_in_and_calls_api_with_token(api: PlatformApi) -> None:
    admin = await api.key("tenant-a", Role.ADMIN)
    user = await add_user(api, admin, "Ann@Brand.example", role="manager")

    response = await api.client.post(
        TOKEN, json={"tenant": "tenant-a", "email": "ann@brand.example", "password": "pa55word!x"}
    )

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    issued = response.json()
    assert issued["token_type"] == "bearer"
    assert issued["expires_in"] == api.settings.auth.token_ttl_s
    me = (await api.client.get(ME, headers=bearer(issued["access_token"]))).json()
    assert (me["kind"], me["subject_id"], me["role"]) == ("user", user["id"], "manager")
    assert me["name"] == "ann@brand.example"


async def test_sign_in_accepts_tenant_id(api: PlatformApi) -> None:
    admin = await api.key("tenant-a", Role.ADMIN)
    await add_user(api, admin, "ann@brand.example")
    tenant = await api.auth.tenants.find("tenant-a")
    assert tenant is not None

    response = await api.client.post(
        TOKEN, json={"tenant": tenant.id, "email": "ann@brand.example", "password": "pa55word!x"}
    )

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("tenant", "email", "password"),
    [
        ("tenant-a", "ann@brand.example", "wrong-password"),
        ("tenant-a", "bob@brand.example", "pa55word!x"),
        ("tenant-b", "ann@brand.example", "pa55word!x"),
        ("no-such-tenant", "ann@brand.example", "pa55word!x"),
        ("tenant-a", "not an email", "pa55word!x"),
    ],
)
async def test_wrong_sign_in_is_401_saying_the_same(
    api: PlatformApi, tenant: str, email: str, password: str
) -> None:
    admin = await api.key("tenant-a", Role.ADMIN)
    await api.key("tenant-b", Role.ADMIN)
    await add_user(api, admin, "ann@brand.example")

    response = await api.client.post(
        TOKEN, json={"tenant": tenant, "email": email, "password": password}
    )

    assert_unauthorized(response, "wrong email, password or tenant")


async def test_disabled_user_cannot_sign_in_and_token_stops(api: PlatformApi) -> None:
    admin = await api.key("tenant-a", Role.ADMIN)
    user = await add_user(api, admin, "ann@brand.example")
    token = (
        await api.client.post(
            TOKEN,
            json={"tenant": "tenant-a", "email": "ann@brand.example", "password": "pa55word!x"},
        )
    ).json()["access_token"]

    disabled = await api.client.patch(
        f"{USERS}/{user['id']}", headers=bearer(admin), json={"disabled": True}
    )

    assert disabled.status_code == 200
    assert_unauthorized(await api.client.get(ME, headers=bearer(token)), "disabled")
    assert_unauthorized(
        await api.client.post(
            TOKEN,
            json={"tenant": "tenant-a", "email": "ann@brand.example", "password": "pa55word!x"},
        ),
        "wrong email",
    )


async def test_deleted_user_token_stops(api: PlatformApi) -> None:
    admin = await api.key("tenant-a", Role.ADMIN)
    user = await add_user(api, admin, "ann@brand.example")
    token = (
        await api.client.post(
            TOKEN,
            json={"tenant": "tenant-a", "email": "ann@brand.example", "password": "pa55word!x"},
        )
    ).json()["access_token"]
    assert (await api.client.get(ME, headers=bearer(token))).status_code == 200

    deleted = await api.client.delete(f"{USERS}/{user['id']}", headers=bearer(admin))

    assert deleted.status_code == 204
    assert_unauthorized(await api.client.get(ME, headers=bearer(token)), "no longer exists")


async def test_expired_token_is_401(api: PlatformApi) -> None:
    admin = await api.key("tenant-a", Role.ADMIN)
    await add_user(api, admin, "ann@brand.example")
    tenant = await api.auth.tenants.find("tenant-a")
    assert tenant is not None
    credentials = await api.auth.users.credentials(tenant.id, "ann@brand.example")
    assert credentials is not None
    # The same settings and CE_HOME give the app's own signing key.
    codec = TokenCodec.from_settings(api.settings.auth, api.settings.home)
    stale = codec.issue(credentials[0], datetime.now(UTC) - timedelta(days=1)).token

    assert_unauthorized(await api.client.get(ME, headers=bearer(stale)), "expired")


async def test_guessing_a_password_is_throttled_per_email(api: PlatformApi) -> None:
    admin = await api.key("tenant-a", Role.ADMIN)
    await add_user(api, admin, "ann@brand.example")
    await add_user(api, admin, "bob@brand.example")
    burst = api.settings.auth.sign_in_burst

    def attempt(email: str, password: str) -> dict[str, str]:
        return {"tenant": "tenant-a", "email": email, "password": password}

    for _ in range(burst):
        wrong = await api.client.post(TOKEN, json=attempt("ann@brand.example", "guess"))
        assert wrong.status_code == 401
    # Past the burst even the right password waits: the guesser cannot tell it was right.
    throttled = await api.client.post(TOKEN, json=attempt("Ann@Brand.example", "pa55word!x"))

    assert throttled.status_code == 429, throttled.text
    assert throttled.json()["error"]["code"] == "too_many_attempts"
    assert 1 <= int(throttled.headers["retry-after"]) <= api.settings.auth.sign_in_interval_s
    other = await api.client.post(TOKEN, json=attempt("bob@brand.example", "pa55word!x"))
    assert other.status_code == 200
    # The same account with the tenant given by id: the same attempts.
    tenant = await api.auth.tenants.find("tenant-a")
    assert tenant is not None
    by_id = await api.client.post(
        TOKEN, json={**attempt("ann@brand.example", "pa55word!x"), "tenant": tenant.id}
    )
    assert by_id.status_code == 429


async def test_signing_in_does_not_use_up_attempts(api: PlatformApi) -> None:
    admin = await api.key("tenant-a", Role.ADMIN)
    await add_user(api, admin, "ann@brand.example")
    attempt = {"tenant": "tenant-a", "email": "ann@brand.example", "password": "pa55word!x"}

    statuses = [
        (await api.client.post(TOKEN, json=attempt)).status_code
        for _ in range(api.settings.auth.sign_in_burst * 2)
    ]

    assert set(statuses) == {200}


async def test_requests_past_a_credentials_rate_are_429(tmp_path: Path) -> None:
    auth = {"requests_burst": 3, "requests_per_s": 0.01}
    async with platform_api(tmp_path, auth=auth) as api:
        key = await api.key("tenant-a", Role.ANALYST)
        other = await api.key("tenant-a", Role.ANALYST)

        statuses = [(await api.client.get(ME, headers=bearer(key))).status_code for _ in range(3)]
        limited = await api.client.get(ME, headers=bearer(key))

        assert statuses == [200, 200, 200]
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 100
        assert (await api.client.get(ME, headers=bearer(other))).status_code == 200
