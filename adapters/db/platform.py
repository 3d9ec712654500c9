"""Repositories for the platform: tenants' own settings, users, API keys and the audit log.

Every method that reads or changes one tenant's object takes that tenant's id and filters on
it in SQL: an object of another tenant is simply not found. The two unscoped lookups
(``ApiKeyRepository.credential``, ``UserRepository.get_unscoped``) exist for authentication,
which learns the tenant from the credential itself.

Updates read the object, then write it only if it is still what was read (optimistic
concurrency), so the before/after pair they return is exact even with concurrent editors, and
a SQLite write transaction never starts with a read (which SQLite cannot upgrade to a write
once another connection has written). Errors::

    ValueError
     ├── EmailTakenError          another user of the tenant has this email
     └── TenantNameTakenError     another tenant has this name
    RuntimeError
     └── ConcurrentUpdateError    the object kept changing under us; retry later
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Final, TypeVar

from sqlalchemy import ColumnElement, Select, Table, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from adapters.db import statements
from adapters.db.convert import (
    api_key_from_row,
    api_key_values,
    audit_entry_from_row,
    audit_entry_values,
    tenant_from_row,
    user_from_row,
    user_values,
)
from adapters.db.repositories import Sessions, TenantRepository
from adapters.db.tables import api_keys_table, audit_log_table, tenants_table, users_table
from domain.identity import ApiKey, AuditEntry, AuditFilter, Page, User
from domain.platform import Role
from domain.tenants import Tenant

T = TypeVar("T")

UPDATE_ATTEMPTS = 3


class _Keep(Enum):
    KEEP = "keep"


KEEP: Final = _Keep.KEEP
"""Leave this field as it is (``None`` may be a value to store, so it cannot mean that)."""


class EmailTakenError(ValueError):
    def __init__(self, email: str) -> None:
        super().__init__(f"a user with email {email} already exists in this tenant")
        self.email = email


class TenantNameTakenError(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"a tenant called {name!r} already exists")
        self.name = name


class ConcurrentUpdateError(RuntimeError):
    def __init__(self, what: str) -> None:
        super().__init__(f"{what} changed {UPDATE_ATTEMPTS} times while being updated")


class _StaleReadError(Exception):
    """The row changed between our read and our write: roll back and read again."""


def _changes(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not KEEP}


async def _page(
    sessions: Sessions,
    table: Table,
    criteria: list[ColumnElement[bool]],
    order: list[Any],
    limit: int,
    offset: int,
) -> tuple[list[Any], int]:
    async with sessions() as session:
        total = (
            await session.execute(select(func.count()).select_from(table).where(*criteria))
        ).scalar_one()
        statement: Select[Any] = (
            select(table).where(*criteria).order_by(*order).limit(limit).offset(offset)
        )
        rows = (await session.execute(statement)).mappings().all()
    return list(rows), total


async def _retrying(what: str, attempt: Callable[[], Awaitable[T | _Keep | None]]) -> T | None:
    """Run ``attempt`` until it does not answer KEEP ("changed under me, try again")."""
    for _ in range(UPDATE_ATTEMPTS):
        result = await attempt()
        if result is not KEEP:
            return result
    raise ConcurrentUpdateError(what)


class TenantAccountRepository(TenantRepository):
    """Tenants as their admins see them: look one up, rename it, set its seat."""

    async def get(self, tenant_id: str) -> Tenant | None:
        async with self._sessions() as session:
            row = (
                (
                    await session.execute(
                        select(tenants_table).where(tenants_table.c.id == tenant_id)
                    )
                )
                .mappings()
                .one_or_none()
            )
        return tenant_from_row(row) if row is not None else None

    async def find(self, id_or_name: str) -> Tenant | None:
        """The tenant with this id, or else the one with this name."""
        by_id = await self.get(id_or_name)
        if by_id is not None:
            return by_id
        async with self._sessions() as session:
            row = (
                (await session.execute(statements.select_tenant_by_name(id_or_name)))
                .mappings()
                .one_or_none()
            )
        return tenant_from_row(row) if row is not None else None

    async def update(
        self,
        tenant_id: str,
        *,
        name: str | _Keep = KEEP,
        seat: str | _Keep | None = KEEP,
    ) -> tuple[Tenant, Tenant] | None:
        """(before, after), or None for an unknown tenant. A new seat moves the catalog
        revision: live campaigns without a seat of their own bid under the tenant's."""
        changes = _changes(name=name, seat=seat)

        async def attempt() -> tuple[Tenant, Tenant] | _Keep | None:
            before = await self.get(tenant_id)
            if before is None:
                return None
            if not changes:
                return before, before
            try:
                async with self._sessions.begin() as session:
                    if "seat" in changes and changes["seat"] != before.seat:
                        bumped = await session.execute(statements.bump_catalog_revision())
                        statements.check_bumped(bumped.rowcount)  # type: ignore[attr-defined]
                    result = await session.execute(
                        update(tenants_table)
                        .where(
                            tenants_table.c.id == tenant_id,
                            tenants_table.c.name == before.name,
                            tenants_table.c.seat.is_not_distinct_from(before.seat),
                        )
                        .values(**changes)
                    )
                    if result.rowcount != 1:  # type: ignore[attr-defined]
                        # Changed (or deleted) since we read it; the bump rolls back too.
                        raise _StaleReadError
            except _StaleReadError:
                return KEEP
            except IntegrityError as error:
                if isinstance(name, str):
                    raise TenantNameTakenError(name) from error
                raise
            return before, before.model_copy(update=changes)

        return await _retrying(f"tenant {tenant_id}", attempt)


class UserRepository:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def create(
        self,
        *,
        tenant_id: str,
        email: str,
        display_name: str,
        role: Role,
        password_hash: str,
        now: datetime,
    ) -> User:
        """``email`` already normalized (``domain.identity.normalize_email``)."""
        user = User(
            id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            email=email,
            display_name=display_name,
            role=role,
            disabled=False,
            created_at=now,
            updated_at=now,
        )
        try:
            async with self._sessions.begin() as session:
                await session.execute(insert(users_table).values(user_values(user, password_hash)))
        except IntegrityError as error:
            if await self.credentials(tenant_id, email) is not None:
                raise EmailTakenError(email) from error
            raise
        return user

    async def _one(self, *criteria: ColumnElement[bool]) -> Any:
        async with self._sessions() as session:
            return (
                (await session.execute(select(users_table).where(*criteria)))
                .mappings()
                .one_or_none()
            )

    async def get(self, tenant_id: str, user_id: str) -> User | None:
        row = await self._one(users_table.c.tenant_id == tenant_id, users_table.c.id == user_id)
        return user_from_row(row) if row is not None else None

    async def get_unscoped(self, user_id: str) -> User | None:
        """For authentication only: the caller checks the tenant against the token's."""
        row = await self._one(users_table.c.id == user_id)
        return user_from_row(row) if row is not None else None

    async def credentials(self, tenant_id: str, email: str) -> tuple[User, str] | None:
        """The user with this (normalized) email and their password hash, for signing in."""
        row = await self._one(users_table.c.tenant_id == tenant_id, users_table.c.email == email)
        return (user_from_row(row), row["password_hash"]) if row is not None else None

    async def list(
        self, tenant_id: str, *, limit: int, offset: int, role: Role | None = None
    ) -> Page[User]:
        criteria = [users_table.c.tenant_id == tenant_id]
        if role is not None:
            criteria.append(users_table.c.role == role.value)
        rows, total = await _page(
            self._sessions,
            users_table,
            criteria,
            [users_table.c.email, users_table.c.id],
            limit,
            offset,
        )
        return Page([user_from_row(row) for row in rows], total, limit, offset)

    async def update(
        self,
        tenant_id: str,
        user_id: str,
        *,
        now: datetime,
        display_name: str | _Keep = KEEP,
        role: Role | _Keep = KEEP,
        disabled: bool | _Keep = KEEP,
        password_hash: str | _Keep = KEEP,
    ) -> tuple[User, User] | None:
        """(before, after), or None when the tenant has no such user."""
        changes = _changes(display_name=display_name, role=role, disabled=disabled)
        column_values = {
            **{k: v.value if isinstance(v, Role) else v for k, v in changes.items()},
            **_changes(password_hash=password_hash),
        }

        async def attempt() -> tuple[User, User] | _Keep | None:
            before = await self.get(tenant_id, user_id)
            if before is None:
                return None
            if not column_values:
                return before, before
            async with self._sessions.begin() as session:
                result = await session.execute(
                    update(users_table)
                    .where(
                        users_table.c.tenant_id == tenant_id,
                        users_table.c.id == user_id,
                        users_table.c.updated_at == before.updated_at,
                    )
                    .values(**column_values, updated_at=now)
                )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return KEEP
            return before, before.model_copy(update={**changes, "updated_at": now})

        return await _retrying(f"user {user_id}", attempt)

    async def delete(self, tenant_id: str, user_id: str) -> User | None:
        """The deleted user, or None when the tenant has no such user."""

        async def attempt() -> User | _Keep | None:
            before = await self.get(tenant_id, user_id)
            if before is None:
                return None
            async with self._sessions.begin() as session:
                result = await session.execute(
                    delete(users_table).where(
                        users_table.c.tenant_id == tenant_id,
                        users_table.c.id == user_id,
                        users_table.c.updated_at == before.updated_at,
                    )
                )
            return before if result.rowcount == 1 else KEEP  # type: ignore[attr-defined]

        return await _retrying(f"user {user_id}", attempt)


class ApiKeyRepository:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def create(self, key: ApiKey, secret_hash: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(insert(api_keys_table).values(api_key_values(key, secret_hash)))

    async def _one(self, *criteria: ColumnElement[bool]) -> Any:
        async with self._sessions() as session:
            return (
                (await session.execute(select(api_keys_table).where(*criteria)))
                .mappings()
                .one_or_none()
            )

    async def get(self, tenant_id: str, key_id: str) -> ApiKey | None:
        row = await self._one(
            api_keys_table.c.tenant_id == tenant_id, api_keys_table.c.id == key_id
        )
        return api_key_from_row(row) if row is not None else None

    async def credential(self, key_id: str) -> tuple[ApiKey, str] | None:
        """For authentication only: the key (any tenant) and its secret's hash."""
        row = await self._one(api_keys_table.c.id == key_id)
        return (api_key_from_row(row), row["secret_hash"]) if row is not None else None

    async def list(
        self, tenant_id: str, *, limit: int, offset: int, include_revoked: bool = True
    ) -> Page[ApiKey]:
        criteria = [api_keys_table.c.tenant_id == tenant_id]
        if not include_revoked:
            criteria.append(api_keys_table.c.revoked_at.is_(None))
        rows, total = await _page(
            self._sessions,
            api_keys_table,
            criteria,
            [api_keys_table.c.created_at.desc(), api_keys_table.c.id],
            limit,
            offset,
        )
        return Page([api_key_from_row(row) for row in rows], total, limit, offset)

    async def revoke(
        self, tenant_id: str, key_id: str, *, now: datetime
    ) -> tuple[ApiKey, ApiKey] | None:
        """(before, after); both the same for a key already revoked; None for an unknown one."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(api_keys_table)
                .where(
                    api_keys_table.c.tenant_id == tenant_id,
                    api_keys_table.c.id == key_id,
                    api_keys_table.c.revoked_at.is_(None),
                )
                .values(revoked_at=now)
            )
        after = await self.get(tenant_id, key_id)
        if after is None:
            return None
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return after, after
        return after.model_copy(update={"revoked_at": None}), after

    async def touch(self, key_id: str, *, now: datetime, interval: timedelta) -> bool:
        """Record a use at ``now`` unless one was recorded less than ``interval`` before it
        (by any process). True when this call wrote."""
        last_used = api_keys_table.c.last_used_at
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(api_keys_table)
                .where(
                    api_keys_table.c.id == key_id,
                    or_(last_used.is_(None), last_used <= now - interval),
                )
                .values(last_used_at=now)
            )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


class AuditRepository:
    """Append-only: entries are never changed or removed (except with their tenant)."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def append(self, entry: AuditEntry) -> None:
        async with self._sessions.begin() as session:
            await session.execute(insert(audit_log_table).values(audit_entry_values(entry)))

    async def list(
        self, tenant_id: str, *, limit: int, offset: int, where: AuditFilter | None = None
    ) -> Page[AuditEntry]:
        """Newest first."""
        table = audit_log_table
        where = where or AuditFilter()
        criteria = [table.c.tenant_id == tenant_id]
        if where.actor_id is not None:
            criteria.append(table.c.actor_id == where.actor_id)
        if where.target_type is not None:
            criteria.append(table.c.target_type == where.target_type)
        if where.target_id is not None:
            criteria.append(table.c.target_id == where.target_id)
        if where.action is not None:
            criteria.append(table.c.action == where.action)
        if where.since is not None:
            criteria.append(table.c.at >= where.since)
        rows, total = await _page(
            self._sessions, table, criteria, [table.c.at.desc(), table.c.id.desc()], limit, offset
        )
        return Page([audit_entry_from_row(row) for row in rows], total, limit, offset)
