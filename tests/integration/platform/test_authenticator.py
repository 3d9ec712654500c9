"""The Authenticator against a real database, on a clock the test moves by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.auth import (
    AuthenticationError,
    Authenticator,
    TokenCodec,
    create_api_key,
    mint_api_key,
)
from adapters.db import ApiKeyRepository, Database, TenantAccountRepository, UserRepository
from adapters.settings import AuthSettings
from domain.identity import Actor
from domain.platform import Principal, Role

SECRET = "a-test-secret-that-is-long-enough-for-hs256"
CACHE_TTL_S = 5.0
INTERVAL = timedelta(minutes=1)
ACTOR = Actor(kind="system", id="tests")


class HandClock:
    def __init__(self) -> None:
        self.wall = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
        self.mono = 1000.0

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds


@pytest.fixture
def clock() -> HandClock:
    return HandClock()


@pytest.fixture
def tokens(tmp_path: Path) -> TokenCodec:
    return TokenCodec.from_settings(AuthSettings(jwt_secret=SECRET), tmp_path)


def authenticator(database: Database, tokens: TokenCodec, clock: HandClock) -> Authenticator:
    return Authenticator(
        api_keys=ApiKeyRepository(database.async_session),
        users=UserRepository(database.async_session),
        tokens=tokens,
        clock=clock,
        cache_ttl_s=CACHE_TTL_S,
        last_used_interval=INTERVAL,
    )


async def new_key(database: Database, clock: HandClock, role: Role = Role.ANALYST) -> str:
    tenant = await TenantAccountRepository(database.async_session).ensure("tenant-a")
    _, token = await create_api_key(
        ApiKeyRepository(database.async_session),
        tenant_id=tenant.id,
        label="reporting",
        role=role,
        created_by=ACTOR,
        now=clock.now(),
    )
    return token


def key_id(token: str) -> str:
    return token.split("_")[1]


async def test_api_key_authenticates_as_its_tenant_and_role(
    database: Database, tokens: TokenCodec, clock: HandClock
) -> None:
    token = await new_key(database, clock)
    tenant = await TenantAccountRepository(database.async_session).find("tenant-a")
    assert tenant is not None

    principal = await authenticator(database, tokens, clock).authenticate(token)

    assert principal == Principal(
        tenant_id=tenant.id,
        subject_id=key_id(token),
        role=Role.ANALYST,
        kind="api_key",
        name="reporting",
        person_id=key_id(token),  # made by no user (ACTOR): it acts for itself
    )


async def test_api_key_made_by_a_user_acts_for_that_user(
    database: Database, tokens: TokenCodec, clock: HandClock
) -> None:
    tenant = await TenantAccountRepository(database.async_session).ensure("tenant-a")
    user = Principal(tenant.id, "user-ann", Role.MANAGER, "user", "ann@brand.example")
    _, token = await create_api_key(
        ApiKeyRepository(database.async_session),
        tenant_id=tenant.id,
        label="ann's script",
        role=Role.MANAGER,
        created_by=Actor.of(user),
        now=clock.now(),
        owner=user,
    )

    principal = await authenticator(database, tokens, clock).authenticate(token)

    assert (principal.subject_id, principal.person) == (key_id(token), "user-ann")


async def test_api_key_with_wrong_secret_is_refused(
    database: Database, tokens: TokenCodec, clock: HandClock
) -> None:
    token = await new_key(database, clock)
    wrong = f"ce_{key_id(token)}_{mint_api_key().secret}"
    auth = authenticator(database, tokens, clock)

    with pytest.raises(AuthenticationError, match="unknown"):
        await auth.authenticate(wrong)
    # Refused again once the key's row is cached.
    await auth.authenticate(token)
    with pytest.raises(AuthenticationError, match="unknown"):
        await auth.authenticate(wrong)


async def test_unknown_api_key_is_refused(
    database: Database, tokens: TokenCodec, clock: HandClock
) -> None:
    with pytest.raises(AuthenticationError, match="unknown"):
        await authenticator(database, tokens, clock).authenticate(mint_api_key().token)


async def test_revoked_key_stops_working_within_cache_bound(
    database: Database, tokens: TokenCodec, clock: HandClock
) -> None:
    token = await new_key(database, clock)
    tenant = await TenantAccountRepository(database.async_session).find("tenant-a")
    assert tenant is not None
    other_process = authenticator(database, tokens, clock)
    await other_process.authenticate(token)

    await ApiKeyRepository(database.async_session).revoke(tenant.id, key_id(token), now=clock.now())
    clock.advance(CACHE_TTL_S / 2)
    await other_process.authenticate(token)  # still inside the documented bound
    clock.advance(CACHE_TTL_S / 2)

    with pytest.raises(AuthenticationError, match="revoked"):
        await other_process.authenticate(token)


async def test_forgotten_key_is_checked_again_at_once(
    database: Database, tokens: TokenCodec, clock: HandClock
) -> None:
    token = await new_key(database, clock)
    tenant = await TenantAccountRepository(database.async_session).find("tenant-a")
    assert tenant is not None
    auth = authenticator(database, tokens, clock)
    await auth.authenticate(token)

    await ApiKeyRepository(database.async_session).revoke(tenant.id, key_id(token), now=clock.now())
    auth.forget_api_key(key_id(token))

    with pytest.raises(AuthenticationError, match="revoked"):
        await auth.authenticate(token)


async def test_last_used_written_at_most_once_a_minute(
    database: Database, tokens: TokenCodec, clock: HandClock
) -> None:
    token = await new_key(database, clock)
    tenant = await TenantAccountRepository(database.async_session).find("tenant-a")
    assert tenant is not None
    keys = ApiKeyRepository(database.async_session)
    first_process = authenticator(database, tokens, clock)
    second_process = authenticator(database, tokens, clock)
    start = clock.now()

    async def last_used() -> datetime | None:
        stored = await keys.get(tenant.id, key_id(token))
        assert stored is not None
        return stored.last_used_at

    await first_process.authenticate(token)
    assert await last_used() == start
    for _ in range(5):
        clock.advance(10)
        await first_process.authenticate(token)
        await second_process.authenticate(token)
    assert await last_used() == start
    clock.advance(10)
    await second_process.authenticate(token)
    assert await last_used() == start + INTERVAL


async def make_user_token(
    database: Database, tokens: TokenCodec, clock: HandClock, role: Role = Role.MANAGER
) -> tuple[str, str, str]:
    tenant = await TenantAccountRepository(database.async_session).ensure("tenant-a")
    user = await UserRepository(database.async_session).create(
        tenant_id=tenant.id,
        email="ann@brand.example",
        display_name="Ann",
        role=role,
        password_hash="scrypt$unused",
        now=clock.now(),
    )
    return tenant.id, user.id, tokens.issue(user, datetime.now(UTC)).token


async def test_user_token_authenticates_with_stored_role(
    database: Database, tokens: TokenCodec, clock: HandClock
) -> None:
    tenant_id, user_id, token = await make_user_token(database, tokens, clock)
    auth = authenticator(database, tokens, clock)
    assert (await auth.authenticate(token)).role is Role.MANAGER

    await UserRepository(database.async_session).update(
        tenant_id, user_id, now=clock.now(), role=Role.VIEWER
    )
    clock.advance(CACHE_TTL_S)

    principal = await auth.authenticate(token)
    assert principal == Principal(tenant_id, user_id, Role.VIEWER, "user", "ann@brand.example")


async def test_disabled_user_token_stops_working_within_cache_bound(
    database: Database, tokens: TokenCodec, clock: HandClock
) -> None:
    tenant_id, user_id, token = await make_user_token(database, tokens, clock)
    auth = authenticator(database, tokens, clock)
    await auth.authenticate(token)

    await UserRepository(database.async_session).update(
        tenant_id, user_id, now=clock.now(), disabled=True
    )
    clock.advance(CACHE_TTL_S)

    with pytest.raises(AuthenticationError, match="disabled"):
        await auth.authenticate(token)


async def test_deleted_user_token_stops_working(
    database: Database, tokens: TokenCodec, clock: HandClock
) -> None:
    tenant_id, user_id, token = await make_user_token(database, tokens, clock)
    auth = authenticator(database, tokens, clock)
    await auth.authenticate(token)

    await UserRepository(database.async_session).delete(tenant_id, user_id)
    auth.forget_user(user_id)

    with pytest.raises(AuthenticationError, match="no longer exists"):
        await auth.authenticate(token)


@pytest.mark.parametrize("credential", ["", "x" * 5000, "ce_short", "not-a-jwt"])
async def test_malformed_credential_is_refused(
    database: Database, tokens: TokenCodec, clock: HandClock, credential: str
) -> None:
    with pytest.raises(AuthenticationError):
        await authenticator(database, tokens, clock).authenticate(credential)
