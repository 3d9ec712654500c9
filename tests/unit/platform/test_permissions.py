"""The seed's permission matrix, written out independently of domain.platform.GRANTS."""

from __future__ import annotations

import pytest

from api.deps import AccessRule
from domain.platform import GRANTS, Permission, Principal, Role, allows

ADM, MGR, OPS, ANL, VWR = Role.ADMIN, Role.MANAGER, Role.OPERATOR, Role.ANALYST, Role.VIEWER

SEED_MATRIX: dict[Permission, set[Role]] = {
    Permission.CAMPAIGN_WRITE: {ADM, MGR},
    Permission.CAMPAIGN_READ: {ADM, MGR, OPS, ANL, VWR},
    Permission.CAMPAIGN_OPERATE: {ADM, MGR, OPS},
    Permission.APPROVALS: {ADM, MGR},
    Permission.REPORTS: {ADM, MGR, OPS, ANL, VWR},
    Permission.SYSTEM_CONFIG: {ADM},
    Permission.BILLING: {ADM, MGR},
}

CELLS = [(role, permission) for role in Role for permission in Permission]


def test_matrix_covers_every_permission() -> None:
    assert set(GRANTS) == set(Permission) == set(SEED_MATRIX)


@pytest.mark.parametrize(("role", "permission"), CELLS)
def test_allows_matches_seed_matrix_for_each_cell(role: Role, permission: Permission) -> None:
    assert allows(role, permission) is (role in SEED_MATRIX[permission])


@pytest.mark.parametrize(("role", "permission"), CELLS)
def test_principal_and_gate_agree_with_allows(role: Role, permission: Permission) -> None:
    principal = Principal(tenant_id="t", subject_id="s", role=role, kind="api_key")

    assert principal.can(permission) is allows(role, permission)
    assert AccessRule("permission", permission).admits(role) is allows(role, permission)


@pytest.mark.parametrize("role", list(Role))
def test_any_role_and_public_rules_admit_every_role(role: Role) -> None:
    assert AccessRule("any_role").admits(role)
    assert AccessRule("public").admits(role)
