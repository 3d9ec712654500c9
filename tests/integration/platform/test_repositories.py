from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from adapters.auth import hash_secret
from adapters.db import (
    KEEP,
    ApiKeyRepository,
    AuditRepository,
    CampaignRepository,
    Database,
    EmailTakenError,
    TenantAccountRepository,
    TenantNameTakenError,
    UserRepository,
)
from domain.identity import Actor, ApiKey, AuditFilter, User, new_audit_entry
from domain.platform import Role
from domain.tenants import Tenant

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


async def two_tenants(database: Database) -> tuple[Tenant, Tenant]:
    tenants = TenantAccountRepository(database.async_session)
    return await tenants.ensure("tenant-a"), await tenants.ensure("tenant-b")


async def add_user(
    database: Database, tenant: Tenant, email: str = "ann@brand.example", role: Role = Role.ADMIN
) -> User:
    return await UserRepository(database.async_session).create(
        tenant_id=tenant.id,
        email=email,
        display_name="Ann",
        role=role,
        password_hash="scrypt$stored",
        now=T0,
    )


def make_key(tenant: Tenant, key_id: str = "0123456789abcdef", **overrides: object) -> ApiKey:
    values: dict[str, object] = {
        "id": key_id,
        "tenant_id": tenant.id,
        "label": "ci",
        "role": Role.OPERATOR,
        "created_at": T0,
        "created_by": "system:tests",
        "owner_id": key_id,
    }
    values.update(overrides)
    return ApiKey.model_validate(values)


# --- tenants -------------------------------------------------------------------------------------


async def test_tenant_found_by_id_or_name(database: Database) -> None:
    tenant, _ = await two_tenants(database)
    tenants = TenantAccountRepository(database.async_session)

    assert await tenants.find(tenant.id) == tenant
    assert await tenants.find("tenant-a") == tenant
    assert await tenants.find("nobody") is None


async def test_tenant_update_returns_before_and_after(database: Database) -> None:
    tenant, _ = await two_tenants(database)
    tenants = TenantAccountRepository(database.async_session)

    changed = await tenants.update(tenant.id, name="tenant-a2", seat="seat-9")

    assert changed == (tenant, Tenant(id=tenant.id, name="tenant-a2", seat="seat-9"))
    assert await tenants.get(tenant.id) == changed[1]


async def test_tenant_seat_change_moves_catalog_revision(database: Database) -> None:
    tenant, _ = await two_tenants(database)
    campaigns = CampaignRepository(database.async_session)
    revision = await campaigns.catalog_revision()

    await TenantAccountRepository(database.async_session).update(tenant.id, seat="seat-1")

    assert await campaigns.catalog_revision() == revision + 1


async def test_tenant_rename_to_taken_name_is_refused(database: Database) -> None:
    tenant, _ = await two_tenants(database)

    with pytest.raises(TenantNameTakenError):
        await TenantAccountRepository(database.async_session).update(tenant.id, name="tenant-b")


async def test_tenant_update_of_unknown_tenant_is_none(database: Database) -> None:
    tenants = TenantAccountRepository(database.async_session)

    assert await tenants.update("no-such-tenant", name="x") is None


async def test_tenant_seat_can_be_cleared(database: Database) -> None:
    tenants = TenantAccountRepository(database.async_session)
    tenant = await tenants.ensure("tenant-a", seat="seat-1")

    changed = await tenants.update(tenant.id, seat=None)

    assert changed is not None
    assert changed[1].seat is None
    assert await tenants.update(tenant.id, seat=KEEP) == (changed[1], changed[1])


# --- users ---------------------------------------------------------------------------------------


async def test_user_read_back_as_created(database: Database) -> None:
    tenant, _ = await two_tenants(database)
    user = await add_user(database, tenant)
    users = UserRepository(database.async_session)

    assert await users.get(tenant.id, user.id) == user
    assert await users.credentials(tenant.id, user.email) == (user, "scrypt$stored")


async def test_user_of_another_tenant_is_not_found(database: Database) -> None:
    tenant, other = await two_tenants(database)
    user = await add_user(database, tenant)
    users = UserRepository(database.async_session)

    assert await users.get(other.id, user.id) is None
    assert await users.credentials(other.id, user.email) is None
    assert await users.update(other.id, user.id, now=T0, display_name="x") is None
    assert await users.delete(other.id, user.id) is None
    assert await users.get(tenant.id, user.id) == user


async def test_same_email_twice_in_one_tenant_is_refused(database: Database) -> None:
    tenant, other = await two_tenants(database)
    await add_user(database, tenant)

    with pytest.raises(EmailTakenError):
        await add_user(database, tenant)
    assert (await add_user(database, other)).tenant_id == other.id


async def test_users_listed_by_email_with_total(database: Database) -> None:
    tenant, other = await two_tenants(database)
    for name in ("cy", "al", "bo"):
        await add_user(database, tenant, f"{name}@brand.example")
    await add_user(database, tenant, "viewer@brand.example", role=Role.VIEWER)
    await add_user(database, other, "al@brand.example")
    users = UserRepository(database.async_session)

    page = await users.list(tenant.id, limit=2, offset=1)
    viewers = await users.list(tenant.id, limit=10, offset=0, role=Role.VIEWER)

    assert [user.email for user in page.items] == ["bo@brand.example", "cy@brand.example"]
    assert (page.total, page.limit, page.offset) == (4, 2, 1)
    assert [user.email for user in viewers.items] == ["viewer@brand.example"]


async def test_user_update_changes_only_given_fields(database: Database) -> None:
    tenant, _ = await two_tenants(database)
    user = await add_user(database, tenant)
    users = UserRepository(database.async_session)

    changed = await users.update(
        tenant.id, user.id, now=T0 + MINUTE, role=Role.VIEWER, password_hash="scrypt$new"
    )

    assert changed is not None
    before, after = changed
    assert before == user
    assert after == user.model_copy(update={"role": Role.VIEWER, "updated_at": T0 + MINUTE})
    assert await users.credentials(tenant.id, user.email) == (after, "scrypt$new")


async def test_concurrent_user_updates_all_apply(database: Database) -> None:
    tenant, _ = await two_tenants(database)
    user = await add_user(database, tenant)
    users = UserRepository(database.async_session)

    results = await asyncio.gather(
        users.update(tenant.id, user.id, now=T0 + MINUTE, display_name="Ann B"),
        users.update(tenant.id, user.id, now=T0 + 2 * MINUTE, disabled=True),
    )

    assert all(result is not None for result in results)
    stored = await users.get(tenant.id, user.id)
    assert stored is not None
    assert (stored.display_name, stored.disabled) == ("Ann B", True)


async def test_user_delete_returns_deleted_user(database: Database) -> None:
    tenant, _ = await two_tenants(database)
    user = await add_user(database, tenant)
    users = UserRepository(database.async_session)

    assert await users.delete(tenant.id, user.id) == user
    assert await users.get_unscoped(user.id) is None
    assert await users.delete(tenant.id, user.id) is None


# --- API keys ------------------------------------------------------------------------------------


async def test_api_key_stored_with_hash_only(database: Database) -> None:
    tenant, other = await two_tenants(database)
    keys = ApiKeyRepository(database.async_session)
    key = make_key(tenant)

    await keys.create(key, hash_secret("the-secret"))

    assert await keys.get(tenant.id, key.id) == key
    assert await keys.get(other.id, key.id) is None
    assert await keys.credential(key.id) == (key, hash_secret("the-secret"))


async def test_api_key_revoke_once_then_unchanged(database: Database) -> None:
    tenant, other = await two_tenants(database)
    keys = ApiKeyRepository(database.async_session)
    key = make_key(tenant)
    await keys.create(key, hash_secret("s"))

    assert await keys.revoke(other.id, key.id, now=T0) is None
    first = await keys.revoke(tenant.id, key.id, now=T0 + MINUTE)
    again = await keys.revoke(tenant.id, key.id, now=T0 + 2 * MINUTE)

    revoked = key.model_copy(update={"revoked_at": T0 + MINUTE})
    assert first == (key, revoked)
    assert again == (revoked, revoked)


async def test_api_keys_listed_newest_first_without_revoked_on_request(
    database: Database,
) -> None:
    tenant, other = await two_tenants(database)
    keys = ApiKeyRepository(database.async_session)
    for number in range(3):
        await keys.create(
            make_key(tenant, f"{number:016x}", created_at=T0 + number * MINUTE), hash_secret("s")
        )
    await keys.create(make_key(other, "f" * 16), hash_secret("s"))
    await keys.revoke(tenant.id, f"{1:016x}", now=T0)

    everything = await keys.list(tenant.id, limit=10, offset=0)
    active = await keys.list(tenant.id, limit=10, offset=0, include_revoked=False)

    assert [key.id for key in everything.items] == [f"{n:016x}" for n in (2, 1, 0)]
    assert everything.total == 3
    assert [key.id for key in active.items] == [f"{n:016x}" for n in (2, 0)]
    assert active.total == 2


async def test_api_key_touch_writes_at_most_once_per_interval(database: Database) -> None:
    tenant, _ = await two_tenants(database)
    keys = ApiKeyRepository(database.async_session)
    key = make_key(tenant)
    await keys.create(key, hash_secret("s"))

    wrote = [
        await keys.touch(key.id, now=T0, interval=MINUTE),
        await keys.touch(key.id, now=T0 + MINUTE / 2, interval=MINUTE),
        await keys.touch(key.id, now=T0 + MINUTE, interval=MINUTE),
    ]

    assert wrote == [True, False, True]
    stored = await keys.get(tenant.id, key.id)
    assert stored is not None
    assert stored.last_used_at == T0 + MINUTE


# --- audit log -----------------------------------------------------------------------------------


async def test_audit_entries_listed_newest_first_with_filters(database: Database) -> None:
    tenant, other = await two_tenants(database)
    audit = AuditRepository(database.async_session)
    ann = Actor(kind="user", id="user-ann", name="ann@brand.example")
    bot = Actor(kind="api_key", id="key-bot", name="bot")
    for number, (actor, target_type) in enumerate(
        [(ann, "user"), (bot, "api_key"), (ann, "api_key"), (bot, "user")]
    ):
        await audit.append(
            new_audit_entry(
                entry_id=f"entry-{number}",
                tenant_id=tenant.id,
                at=T0 + number * MINUTE,
                actor=actor,
                action=f"{target_type}.update",
                target_type=target_type,
                target_id=f"target-{number}",
                before={"n": number},
                after={"n": number + 1, "password": "never"},
            )
        )
    await audit.append(
        new_audit_entry(
            entry_id="entry-other",
            tenant_id=other.id,
            at=T0,
            actor=ann,
            action="user.update",
            target_type="user",
            target_id="target-0",
        )
    )

    everything = await audit.list(tenant.id, limit=10, offset=0)
    by_ann = await audit.list(tenant.id, limit=10, offset=0, where=AuditFilter(actor_id="user-ann"))
    keys_since = await audit.list(
        tenant.id,
        limit=10,
        offset=0,
        where=AuditFilter(target_type="api_key", since=T0 + 2 * MINUTE),
    )
    one_target = await audit.list(
        tenant.id, limit=10, offset=0, where=AuditFilter(target_id="target-0")
    )

    assert [entry.id for entry in everything.items] == [f"entry-{n}" for n in (3, 2, 1, 0)]
    assert everything.items[0].after == {"n": 4, "password": "[redacted]"}
    assert everything.items[0].actor == bot
    assert [entry.id for entry in by_ann.items] == ["entry-2", "entry-0"]
    assert [entry.id for entry in keys_since.items] == ["entry-2"]
    assert [entry.id for entry in one_target.items] == ["entry-0"]
    assert (await audit.list(tenant.id, limit=1, offset=3, where=None)).total == 4
