"""What every ``/api/v1`` route depends on: who calls, whether they may, and in which tenant.

A route declares its access rule with exactly one gate, in the decorator so it runs before
anything that reads the path's ids::

    @router.get("/campaigns/{campaign_id}", dependencies=[requires(Permission.CAMPAIGN_READ)])
    async def get_campaign(campaign_id: str, scope: TenantScopeDep) -> CampaignPublic:
        campaign = scope.found(await campaigns.get(scope.tenant_id, campaign_id), "campaign",
                               campaign_id)

    @router.post(..., dependencies=[requires(Permission.CAMPAIGN_WRITE)])
    async def create(..., audit: AuditDep) -> ...:
        ...  # the write
        await audit.record("campaign.create", "campaign", campaign.id, after=campaign)

Gates: ``requires(permission)`` (403 ``forbidden`` when the role lacks it), ``requires_any_role()``
(any authenticated caller) and ``public()`` (no credential at all, e.g. signing in). Every gate
is readable from the app (``access_rules`` over ``served_routes(app)``), which is how the
route x role test finds routes that forgot theirs. Missing, malformed, unknown, revoked or
expired credentials answer 401 with ``WWW-Authenticate: Bearer``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from adapters.auth import AuthenticationError, Authenticator, PasswordSignIn
from adapters.db import (
    ApiKeyRepository,
    AuditRepository,
    TenantAccountRepository,
    UserRepository,
)
from adapters.throttle import Throttle, retry_after_header
from domain.bidding.ports import Clock
from domain.identity import Actor, AuditEntry, Page, new_audit_entry
from domain.platform import Permission, Principal, Role, allows

log = logging.getLogger(__name__)

T = TypeVar("T")
P = TypeVar("P")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
_REALM = 'Bearer realm="campaign-express"'


@dataclass
class AuthServices:
    """What the auth dependencies need, built by the composition root (``workers.runtime``)."""

    authenticator: Authenticator
    sign_in: PasswordSignIn
    tenants: TenantAccountRepository
    users: UserRepository
    api_keys: ApiKeyRepository
    audit: AuditRepository
    clock: Clock
    new_id: Callable[[], str]
    requests: Throttle | None = None  # per credential, on every authenticated request


def get_auth_services(request: Request) -> AuthServices:
    services: AuthServices = request.app.state.auth
    return services


AuthServicesDep = Annotated[AuthServices, Depends(get_auth_services)]

_bearer = HTTPBearer(
    auto_error=False,
    description="an API key (`ce_...`, from `campaign-express apikey create` or "
    "`POST /api/v1/platform/api-keys`) or a token from `POST /api/v1/platform/auth/token`",
)


def unauthorized(message: str, *, invalid: bool) -> HTTPException:
    challenge = f'{_REALM}, error="invalid_token"' if invalid else _REALM
    return HTTPException(
        status_code=401,
        detail={"code": "unauthorized", "message": message},
        headers={"WWW-Authenticate": challenge},
    )


def too_many_requests(code: str, message: str, wait_s: float) -> HTTPException:
    return HTTPException(
        status_code=429,
        detail={"code": code, "message": message},
        headers={"Retry-After": retry_after_header(wait_s)},
    )


def not_found(kind: str, object_id: str) -> HTTPException:
    """The one answer for "no such object" and "another tenant's object"."""
    return HTTPException(
        status_code=404, detail={"code": "not_found", "message": f"no {kind} {object_id}"}
    )


async def authenticate(
    request: Request,
    services: AuthServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        if request.headers.get("authorization") is None:
            raise unauthorized("send Authorization: Bearer <API key or token>", invalid=False)
        raise unauthorized(
            "the Authorization header must read 'Bearer <API key or token>'", invalid=True
        )
    try:
        principal = await services.authenticator.authenticate(credentials.credentials)
    except AuthenticationError as error:
        raise unauthorized(str(error), invalid=True) from None
    except (SQLAlchemyError, OSError) as error:
        log.warning("credential lookup failed: %s", type(error).__name__)
        raise HTTPException(
            status_code=503,
            detail={"code": "auth_unavailable", "message": "credentials cannot be checked now"},
            headers={"Retry-After": "1"},
        ) from None
    if services.requests is not None:
        wait_s = await services.requests.take(f"{principal.kind}:{principal.subject_id}")
        if wait_s > 0:
            raise too_many_requests(
                "rate_limited", "too many requests with this credential; see Retry-After", wait_s
            )
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


# --- gates ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccessRule:
    """What a route demands: a permission, any authenticated role, or nothing (public)."""

    kind: Literal["permission", "any_role", "public"]
    permission: Permission | None = None

    def admits(self, role: Role) -> bool:
        """Whether a caller of ``role`` with a valid credential gets past this gate."""
        return self.permission is None or allows(role, self.permission)


_RULES: dict[Callable[..., Any], AccessRule] = {}


@functools.cache
def _permission_gate(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    async def gate(principal: CurrentPrincipal) -> Principal:
        if not principal.can(permission):
            raise HTTPException(
                status_code=403,
                detail={
                    "code": "forbidden",
                    "message": f"role {principal.role.value} lacks permission {permission.value}",
                    "details": [{"permission": permission.value, "role": principal.role.value}],
                },
            )
        return principal

    _RULES[gate] = AccessRule("permission", permission)
    return gate


async def _any_role_gate(principal: CurrentPrincipal) -> Principal:
    return principal


async def _public_gate() -> None:
    return None


_RULES[_any_role_gate] = AccessRule("any_role")
_RULES[_public_gate] = AccessRule("public")


def requires(permission: Permission) -> Any:
    """Authenticate, then 403 unless the caller's role has ``permission``.

    Use it in the decorator (``dependencies=[requires(...)]``) or as a parameter's annotation
    (``principal: Annotated[Principal, requires(...)]``).
    """
    return Depends(_permission_gate(permission))


def requires_any_role() -> Any:
    """Authenticate; every role may call (e.g. "who am I")."""
    return Depends(_any_role_gate)


def public() -> Any:
    """No credential needed: says so explicitly, so the route x role test knows it is meant."""
    return Depends(_public_gate)


def _walk(dependant: Dependant) -> list[AccessRule]:
    rules: list[AccessRule] = []
    for sub in dependant.dependencies:
        rule = _RULES.get(sub.call) if sub.call is not None else None
        if rule is not None:
            rules.append(rule)
        rules.extend(_walk(sub))
    return rules


def served_routes(app: FastAPI) -> list[RouteContext]:
    """Every route as the app serves it: prefixes and router-level dependencies applied."""
    return list(iter_route_contexts(app.routes))


def access_rules(route: RouteContext | APIRoute) -> list[AccessRule]:
    """Every gate the route passes through (its own, its router's, its dependencies')."""
    dependant = getattr(route, "dependant", None)
    return _walk(dependant) if isinstance(dependant, Dependant) else []


# --- tenant scope --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TenantScope:
    """The caller's tenant: pass ``tenant_id`` to every repository call, and run what comes
    back through ``found`` so a missing object and another tenant's answer the same 404."""

    principal: Principal

    @property
    def tenant_id(self) -> str:
        return self.principal.tenant_id

    def found(self, obj: T | None, kind: str, object_id: str) -> T:
        # The repositories already filter by tenant; the attribute check guards a query that
        # forgot to.
        if obj is None or getattr(obj, "tenant_id", self.tenant_id) != self.tenant_id:
            raise not_found(kind, object_id)
        return obj


async def tenant_scope(principal: CurrentPrincipal) -> TenantScope:
    return TenantScope(principal)


TenantScopeDep = Annotated[TenantScope, Depends(tenant_scope)]


# --- audit ---------------------------------------------------------------------------------------

Auditable = BaseModel | Mapping[str, Any] | None


class AuditTrail:
    """Appends the current caller's writes to the audit log."""

    def __init__(
        self,
        repository: AuditRepository,
        principal: Principal,
        clock: Clock,
        new_id: Callable[[], str],
    ) -> None:
        self._repository = repository
        self._principal = principal
        self._clock = clock
        self._new_id = new_id

    async def record(
        self,
        action: str,
        target_type: str,
        target_id: str,
        *,
        before: Auditable = None,
        after: Auditable = None,
    ) -> AuditEntry:
        """Call after the write succeeded. ``before``/``after``: the object's public model (or
        a JSON-able mapping); fields named like secrets are redacted whatever you pass."""
        entry = new_audit_entry(
            entry_id=self._new_id(),
            tenant_id=self._principal.tenant_id,
            at=self._clock.now(),
            actor=Actor.of(self._principal),
            action=action,
            target_type=target_type,
            target_id=target_id,
            before=before,
            after=after,
        )
        await self._repository.append(entry)
        return entry


async def audit_trail(principal: CurrentPrincipal, services: AuthServicesDep) -> AuditTrail:
    return AuditTrail(services.audit, principal, services.clock, services.new_id)


AuditDep = Annotated[AuditTrail, Depends(audit_trail)]


# --- pagination ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pagination:
    limit: int
    offset: int


def pagination(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Pagination:
    return Pagination(limit, offset)


PaginationDep = Annotated[Pagination, Depends(pagination)]


class PagePublic(BaseModel, Generic[P]):
    items: list[P]
    total: int
    limit: int
    offset: int

    @classmethod
    def of(cls, page: Page[T], convert: Callable[[T], P]) -> PagePublic[P]:
        return cls(
            items=[convert(item) for item in page.items],
            total=page.total,
            limit=page.limit,
            offset=page.offset,
        )
