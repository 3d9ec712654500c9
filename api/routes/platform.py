"""``/api/v1/platform``: the caller's tenant, its users and API keys, the audit log, sign-in.

Reading and changing users, keys and the audit log takes ``system:config`` (Admin); the tenant
and "who am I" are readable by every role. Every write appends an audit entry whose before and
after are the domain objects (which hold no secrets; a password change shows only as
``password_changed``).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from adapters.auth import AuthenticationError, TooManyAttempts, create_api_key, hash_password
from adapters.db import KEEP, ConcurrentUpdateError, EmailTakenError, TenantNameTakenError
from api.deps import (
    AuditDep,
    AuthServicesDep,
    CurrentPrincipal,
    PagePublic,
    PaginationDep,
    TenantScopeDep,
    public,
    requires,
    requires_any_role,
    too_many_requests,
    unauthorized,
)
from domain.identity import Actor, ApiKey, AuditEntry, AuditFilter, User, normalize_email
from domain.platform import GRANTS, Permission, Role
from domain.tenants import Tenant

router = APIRouter(prefix="/api/v1/platform", tags=["platform"])

ADMIN = requires(Permission.SYSTEM_CONFIG)
# Responses carrying a secret (a new key, a token) must not sit in any cache.
_NO_STORE = {"Cache-Control": "no-store"}

Name = Annotated[str, Field(min_length=1, max_length=200)]
Password = Annotated[SecretStr, Field(min_length=8, max_length=1024)]


def _conflict(code: str, message: str) -> HTTPException:
    return HTTPException(status_code=409, detail={"code": code, "message": message})


# --- models --------------------------------------------------------------------------------------


class TenantPublic(BaseModel):
    id: str
    name: str
    seat: str | None

    @classmethod
    def of(cls, tenant: Tenant) -> TenantPublic:
        return cls(id=tenant.id, name=tenant.name, seat=tenant.seat)


class TenantUpdate(BaseModel):
    name: Name | None = None
    seat: Annotated[str, Field(max_length=200)] | None = Field(
        default=None, description="the buyer seat at the exchanges; null clears it"
    )

    @model_validator(mode="after")
    def _name_is_not_cleared(self) -> TenantUpdate:
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("a tenant keeps a name: omit `name` to leave it unchanged")
        return self


class UserBase(BaseModel):
    email: str = Field(max_length=320)
    display_name: Name
    role: Role

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return normalize_email(value)


class UserCreate(UserBase):
    password: Password


class UserUpdate(BaseModel):
    display_name: Name | None = None
    role: Role | None = None
    disabled: bool | None = None
    password: Password | None = None


class UserPublic(UserBase):
    id: str
    disabled: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, user: User) -> UserPublic:
        return cls(
            id=user.id,
            email=user.email,
            display_name=user.display_name,
            role=user.role,
            disabled=user.disabled,
            created_at=user.created_at,
            updated_at=user.updated_at,
        )


class ApiKeyBase(BaseModel):
    label: Name
    role: Role


class ApiKeyCreate(ApiKeyBase):
    pass


class ApiKeyPublic(ApiKeyBase):
    id: str
    prefix: str = Field(description="the start of the key, `ce_<id>`, to recognise it by")
    created_at: datetime
    created_by: str
    owner_id: str = Field(
        description="the person the key acts for: the user who made it (or whose key did), "
        "else the key itself. Approval rules count people: an owner's key cannot approve "
        "the owner's campaign, nor vote twice with them"
    )
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyPublic:
        return cls(
            id=key.id,
            prefix=f"ce_{key.id}",
            label=key.label,
            role=key.role,
            created_at=key.created_at,
            created_by=key.created_by,
            owner_id=key.owner_id,
            revoked_at=key.revoked_at,
            last_used_at=key.last_used_at,
        )


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="the key itself: shown this once, never again")


class MePublic(BaseModel):
    tenant: TenantPublic
    kind: Literal["user", "api_key"]
    subject_id: str
    name: str
    role: Role
    permissions: list[Permission]


class TokenRequest(BaseModel):
    email: str = Field(max_length=320)
    password: SecretStr = Field(max_length=1024)
    tenant: str = Field(min_length=1, max_length=200, description="the tenant's id or name")


class TokenPublic(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105  # the OAuth 2 scheme name
    expires_in: int
    expires_at: datetime


class ActorPublic(BaseModel):
    kind: str
    id: str
    name: str


class AuditEntryPublic(BaseModel):
    id: str
    at: datetime
    actor: ActorPublic
    action: str
    target_type: str
    target_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryPublic:
        return cls(
            id=entry.id,
            at=entry.at,
            actor=ActorPublic(kind=entry.actor.kind, id=entry.actor.id, name=entry.actor.name),
            action=entry.action,
            target_type=entry.target_type,
            target_id=entry.target_id,
            before=entry.before,
            after=entry.after,
        )


# --- the tenant and the caller -------------------------------------------------------------------


async def _own_tenant(services: AuthServicesDep, scope: TenantScopeDep) -> Tenant:
    tenant = await services.tenants.get(scope.tenant_id)
    return scope.found(tenant, "tenant", scope.tenant_id)


@router.get("/tenant", dependencies=[requires_any_role()], summary="The caller's tenant")
async def get_tenant(services: AuthServicesDep, scope: TenantScopeDep) -> TenantPublic:
    return TenantPublic.of(await _own_tenant(services, scope))


@router.patch("/tenant", dependencies=[ADMIN], summary="Rename the tenant or set its seat")
async def update_tenant(
    body: TenantUpdate, services: AuthServicesDep, scope: TenantScopeDep, audit: AuditDep
) -> TenantPublic:
    fields = body.model_fields_set
    try:
        changed = await services.tenants.update(
            scope.tenant_id,
            name=body.name if "name" in fields and body.name is not None else KEEP,
            seat=body.seat if "seat" in fields else KEEP,
        )
    except TenantNameTakenError as error:
        raise _conflict("tenant_name_taken", str(error)) from error
    except ConcurrentUpdateError as error:
        raise _conflict("concurrent_update", str(error)) from error
    before, after = scope.found(changed, "tenant", scope.tenant_id)
    if before != after:
        await audit.record("tenant.update", "tenant", after.id, before=before, after=after)
    return TenantPublic.of(after)


@router.get("/me", dependencies=[requires_any_role()], summary="Who is calling")
async def me(
    principal: CurrentPrincipal, services: AuthServicesDep, scope: TenantScopeDep
) -> MePublic:
    return MePublic(
        tenant=TenantPublic.of(await _own_tenant(services, scope)),
        kind=principal.kind,
        subject_id=principal.subject_id,
        name=principal.name,
        role=principal.role,
        permissions=[permission for permission in GRANTS if principal.can(permission)],
    )


@router.post(
    "/auth/token",
    dependencies=[public()],
    summary="Sign in: a JWT for a user's email and password",
    responses={
        401: {"description": "wrong email, password or tenant, or a disabled user"},
        429: {"description": "too many failed attempts for this email lately; see Retry-After"},
    },
)
async def issue_token(
    body: TokenRequest, services: AuthServicesDep, response: Response
) -> TokenPublic:
    try:
        issued = await services.sign_in(
            tenant=body.tenant, email=body.email, password=body.password.get_secret_value()
        )
    except TooManyAttempts as error:
        raise too_many_requests("too_many_attempts", str(error), error.retry_after_s) from None
    except AuthenticationError as error:
        raise unauthorized(str(error), invalid=False) from None
    response.headers.update(_NO_STORE)
    return TokenPublic(
        access_token=issued.token, expires_in=issued.ttl_s, expires_at=issued.expires_at
    )


# --- users ---------------------------------------------------------------------------------------


def _refuse_own_access_change(person: str, user_id: str, what: str) -> None:
    # An admin who disables, demotes or deletes themselves (with an API key of theirs too) may
    # leave the tenant without one.
    if person == user_id:
        raise _conflict("own_access", f"you cannot {what} yourself; ask another admin")


@router.post("/users", status_code=201, dependencies=[ADMIN], summary="Add a user")
async def create_user(
    body: UserCreate, services: AuthServicesDep, scope: TenantScopeDep, audit: AuditDep
) -> UserPublic:
    password_hash = await asyncio.to_thread(hash_password, body.password.get_secret_value())
    try:
        user = await services.users.create(
            tenant_id=scope.tenant_id,
            email=body.email,
            display_name=body.display_name,
            role=body.role,
            password_hash=password_hash,
            now=services.clock.now(),
        )
    except EmailTakenError as error:
        raise _conflict("email_taken", str(error)) from error
    await audit.record("user.create", "user", user.id, after=user)
    return UserPublic.of(user)


@router.get("/users", dependencies=[ADMIN], summary="The tenant's users")
async def list_users(
    services: AuthServicesDep,
    scope: TenantScopeDep,
    page: PaginationDep,
    role: Role | None = None,
) -> PagePublic[UserPublic]:
    users = await services.users.list(
        scope.tenant_id, limit=page.limit, offset=page.offset, role=role
    )
    return PagePublic[UserPublic].of(users, UserPublic.of)


@router.get("/users/{user_id}", dependencies=[ADMIN], summary="One user")
async def get_user(user_id: str, services: AuthServicesDep, scope: TenantScopeDep) -> UserPublic:
    user = await services.users.get(scope.tenant_id, user_id)
    return UserPublic.of(scope.found(user, "user", user_id))


@router.patch("/users/{user_id}", dependencies=[ADMIN], summary="Change a user")
async def update_user(
    user_id: str,
    body: UserUpdate,
    services: AuthServicesDep,
    scope: TenantScopeDep,
    audit: AuditDep,
) -> UserPublic:
    if body.role is not None or body.disabled:
        _refuse_own_access_change(scope.principal.person, user_id, "demote or disable")
    password_hash = (
        await asyncio.to_thread(hash_password, body.password.get_secret_value())
        if body.password is not None
        else KEEP
    )
    try:
        changed = await services.users.update(
            scope.tenant_id,
            user_id,
            now=services.clock.now(),
            display_name=body.display_name if body.display_name is not None else KEEP,
            role=body.role if body.role is not None else KEEP,
            disabled=body.disabled if body.disabled is not None else KEEP,
            password_hash=password_hash,
        )
    except ConcurrentUpdateError as error:
        raise _conflict("concurrent_update", str(error)) from error
    before, after = scope.found(changed, "user", user_id)
    services.authenticator.forget_user(user_id)
    if before != after:
        after_document = after.model_dump(mode="json")
        if body.password is not None:
            after_document["password_changed"] = True
        await audit.record("user.update", "user", user_id, before=before, after=after_document)
    return UserPublic.of(after)


@router.delete("/users/{user_id}", status_code=204, dependencies=[ADMIN], summary="Remove a user")
async def delete_user(
    user_id: str, services: AuthServicesDep, scope: TenantScopeDep, audit: AuditDep
) -> Response:
    _refuse_own_access_change(scope.principal.person, user_id, "delete")
    try:
        deleted = await services.users.delete(scope.tenant_id, user_id)
    except ConcurrentUpdateError as error:
        raise _conflict("concurrent_update", str(error)) from error
    user = scope.found(deleted, "user", user_id)
    services.authenticator.forget_user(user_id)
    await audit.record("user.delete", "user", user_id, before=user)
    return Response(status_code=204)


# --- API keys ------------------------------------------------------------------------------------


@router.post(
    "/api-keys",
    status_code=201,
    dependencies=[ADMIN],
    summary="Create an API key; the response shows it once",
)
async def create_key(
    body: ApiKeyCreate,
    principal: CurrentPrincipal,
    services: AuthServicesDep,
    scope: TenantScopeDep,
    audit: AuditDep,
    response: Response,
) -> ApiKeyCreated:
    key, token = await create_api_key(
        services.api_keys,
        tenant_id=scope.tenant_id,
        label=body.label,
        role=body.role,
        created_by=Actor.of(principal),
        now=services.clock.now(),
        owner=principal,
    )
    await audit.record("api_key.create", "api_key", key.id, after=key)
    response.headers.update(_NO_STORE)
    return ApiKeyCreated(**ApiKeyPublic.of(key).model_dump(), key=token)


@router.get("/api-keys", dependencies=[ADMIN], summary="The tenant's API keys (never secrets)")
async def list_keys(
    services: AuthServicesDep,
    scope: TenantScopeDep,
    page: PaginationDep,
    include_revoked: bool = True,
) -> PagePublic[ApiKeyPublic]:
    keys = await services.api_keys.list(
        scope.tenant_id, limit=page.limit, offset=page.offset, include_revoked=include_revoked
    )
    return PagePublic[ApiKeyPublic].of(keys, ApiKeyPublic.of)


@router.get("/api-keys/{key_id}", dependencies=[ADMIN], summary="One API key (never its secret)")
async def get_key(key_id: str, services: AuthServicesDep, scope: TenantScopeDep) -> ApiKeyPublic:
    key = await services.api_keys.get(scope.tenant_id, key_id)
    return ApiKeyPublic.of(scope.found(key, "API key", key_id))


@router.delete(
    "/api-keys/{key_id}",
    status_code=204,
    dependencies=[ADMIN],
    summary="Revoke an API key (at once in this process, within the cache bound elsewhere)",
)
async def revoke_key(
    key_id: str, services: AuthServicesDep, scope: TenantScopeDep, audit: AuditDep
) -> Response:
    revoked = await services.api_keys.revoke(scope.tenant_id, key_id, now=services.clock.now())
    before, after = scope.found(revoked, "API key", key_id)
    services.authenticator.forget_api_key(key_id)
    if before != after:
        await audit.record("api_key.revoke", "api_key", key_id, before=before, after=after)
    return Response(status_code=204)


# --- audit log -----------------------------------------------------------------------------------


@router.get("/audit-log", dependencies=[ADMIN], summary="Who changed what, newest first")
async def audit_log(
    services: AuthServicesDep,
    scope: TenantScopeDep,
    page: PaginationDep,
    actor: Annotated[str | None, Query(description="the actor's user or key id")] = None,
    target_type: str | None = None,
    target_id: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
) -> PagePublic[AuditEntryPublic]:
    entries = await services.audit.list(
        scope.tenant_id,
        limit=page.limit,
        offset=page.offset,
        where=AuditFilter(
            actor_id=actor,
            target_type=target_type,
            target_id=target_id,
            action=action,
            since=since,
        ),
    )
    return PagePublic[AuditEntryPublic].of(entries, AuditEntryPublic.of)
