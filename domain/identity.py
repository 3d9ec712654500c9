"""Who works inside a tenant: users, API keys, and the audit trail of what they changed.

Secrets never live on these models: a user's password hash and a key's secret hash stay in the
store, and ``redact_secrets`` strips secret-looking fields from anything written to the audit
log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic_core import to_jsonable_python

from domain.platform import Principal, Role

T = TypeVar("T")

EMAIL_MAX_LENGTH = 320
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# Field names whose values never reach the audit log, at any depth.
SECRET_FIELDS = frozenset(
    {
        "password",
        "password_hash",
        "secret",
        "secret_hash",
        "key",
        "api_key",
        "token",
        "access_token",
        "authorization",
    }
)
REDACTED = "[redacted]"


def normalize_email(email: str) -> str:
    """One spelling per address, so ``Ann@X.example`` and ``ann@x.example`` are one user."""
    normalized = email.strip().lower()
    if len(normalized) > EMAIL_MAX_LENGTH or not _EMAIL.match(normalized):
        raise ValueError(f"not an email address: {email!r}")
    return normalized


class User(BaseModel):
    """A person who signs in to the platform (not a customer: those are ``UserProfile``)."""

    model_config = ConfigDict(frozen=True)

    id: str
    tenant_id: str
    email: str
    display_name: str
    role: Role
    disabled: bool = False
    created_at: datetime
    updated_at: datetime


class ApiKey(BaseModel):
    """A tenant- and role-scoped key, as stored: everything but its secret."""

    model_config = ConfigDict(frozen=True)

    id: str
    tenant_id: str
    label: str
    role: Role
    created_at: datetime
    created_by: str  # "<kind>:<subject id>" of whoever created it
    # The person the key acts for: the user who made it (or whose key made it), else the key
    # itself (made by the CLI). Four-eyes rules compare people, not credentials.
    owner_id: str
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


ActorKind = Literal["user", "api_key", "system"]


class Actor(BaseModel):
    """Who made a change: a principal, or the platform itself (CLI, workflows)."""

    model_config = ConfigDict(frozen=True)

    kind: ActorKind
    id: str
    name: str = ""

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        return cls(kind=principal.kind, id=principal.subject_id, name=principal.name)

    @property
    def reference(self) -> str:
        return f"{self.kind}:{self.id}"


class AuditEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    tenant_id: str
    at: datetime
    actor: Actor
    action: str  # "<target type>.<verb>", e.g. "user.update"
    target_type: str
    target_id: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


def _document(value: BaseModel | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    plain = (
        value.model_dump(mode="json")
        if isinstance(value, BaseModel)
        else to_jsonable_python(dict(value))
    )
    redacted: dict[str, Any] = redact_secrets(plain)
    return redacted


def new_audit_entry(
    *,
    entry_id: str,
    tenant_id: str,
    at: datetime,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: str,
    before: BaseModel | Mapping[str, Any] | None = None,
    after: BaseModel | Mapping[str, Any] | None = None,
) -> AuditEntry:
    """An entry with secrets redacted from ``before`` and ``after``; models are stored as their
    JSON form, so pass the public model of an object (never one that carries a secret)."""
    return AuditEntry(
        id=entry_id,
        tenant_id=tenant_id,
        at=at,
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        before=_document(before),
        after=_document(after),
    )


@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor_id: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    action: str | None = None
    since: datetime | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One slice of a longer list, and how long the whole list is."""

    items: list[T]
    total: int
    limit: int
    offset: int


def redact_secrets(document: Any) -> Any:
    """``document`` with the value of every secret-named field replaced, however deep."""
    if isinstance(document, Mapping):
        return {
            key: REDACTED if str(key).lower() in SECRET_FIELDS else redact_secrets(value)
            for key, value in document.items()
        }
    if isinstance(document, list | tuple):
        return [redact_secrets(item) for item in document]
    return document
