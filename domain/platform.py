"""Who may do what: the seed's five roles and its permission matrix.

    permission           Admin  Manager  Operator  Analyst  Viewer
    campaign write         ✓       ✓
    campaign read          ✓       ✓        ✓         ✓        ✓
    campaign operate       ✓       ✓        ✓                        (pause and resume)
    approvals              ✓       ✓
    reports                ✓       ✓        ✓         ✓        ✓
    system config          ✓                                         (users, keys, audit log)
    billing                ✓       ✓

The seed's matrix has no row for pausing, but gives the Operator "campaign monitoring and
pausing": that is ``campaign operate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    OPERATOR = "operator"
    ANALYST = "analyst"
    VIEWER = "viewer"


class Permission(StrEnum):
    CAMPAIGN_WRITE = "campaign:write"
    CAMPAIGN_READ = "campaign:read"
    CAMPAIGN_OPERATE = "campaign:operate"
    APPROVALS = "approvals"
    REPORTS = "reports"
    SYSTEM_CONFIG = "system:config"
    BILLING = "billing"


_EVERYONE = frozenset(Role)

GRANTS: dict[Permission, frozenset[Role]] = {
    Permission.CAMPAIGN_WRITE: frozenset({Role.ADMIN, Role.MANAGER}),
    Permission.CAMPAIGN_READ: _EVERYONE,
    Permission.CAMPAIGN_OPERATE: frozenset({Role.ADMIN, Role.MANAGER, Role.OPERATOR}),
    Permission.APPROVALS: frozenset({Role.ADMIN, Role.MANAGER}),
    Permission.REPORTS: _EVERYONE,
    Permission.SYSTEM_CONFIG: frozenset({Role.ADMIN}),
    Permission.BILLING: frozenset({Role.ADMIN, Role.MANAGER}),
}


def allows(role: Role, permission: Permission) -> bool:
    return role in GRANTS[permission]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user (JWT) or an API key, always inside one tenant."""

    tenant_id: str
    subject_id: str  # the user's id, or the API key's id (never the key itself)
    role: Role
    kind: Literal["user", "api_key"]
    name: str = ""  # the user's email or the key's label, for audit lines
    person_id: str = ""  # for an API key, its owner (ApiKey.owner_id)

    @property
    def person(self) -> str:
        """Who is behind the call: the user, or the person an API key acts for. Rules that
        want two people (nobody approves their own campaign, one vote each) compare these:
        a user holding an API key is still one person."""
        return self.person_id or self.subject_id

    def can(self, permission: Permission) -> bool:
        return allows(self.role, permission)
