"""Approval rules for submitted campaigns, and the decision they give over a set of votes.

Pure logic, shared by the lifecycle workflow (which holds the votes) and the REST layer (which
lists what a caller may vote on). A rule belongs to a campaign type; ``"*"`` is the tenant's
default. Budgets compare in USD so one threshold serves every currency.

    below auto_approve_below_usd      approved at submission, no vote needed
    otherwise                         min_approvals approvals, from distinct eligible voters,
                                      and one from each required role whose threshold the
                                      budget exceeds; any rejection rejects
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from domain.platform import Permission, Role, allows

DEFAULT_AUTO_APPROVE_BELOW_USD = Decimal(1000)
ANY_CAMPAIGN_TYPE = "*"


class RoleRequirement(BaseModel):
    """Above ``above_budget_usd``, one approval must come from ``role``."""

    model_config = ConfigDict(frozen=True)

    role: Role
    above_budget_usd: Decimal = Field(default=Decimal(0), ge=0)


class ApprovalRule(BaseModel):
    model_config = ConfigDict(frozen=True)

    campaign_type: str = ANY_CAMPAIGN_TYPE
    min_approvals: int = Field(default=2, ge=1, le=10)
    auto_approve_below_usd: Decimal = Field(default=DEFAULT_AUTO_APPROVE_BELOW_USD, ge=0)
    required_roles: list[RoleRequirement] = Field(default_factory=list)
    remind_after_s: int = Field(default=24 * 3600, gt=0, description="first reminder, then again")
    escalate_after_s: int = Field(default=72 * 3600, gt=0, description="admins are asked to decide")


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class Vote(BaseModel):
    model_config = ConfigDict(frozen=True)

    voter_id: str
    voter_name: str = ""
    role: Role
    decision: Decision
    comment: str = Field(default="", max_length=2000)
    at: datetime


class Outcome(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class VoteRefused(ValueError):
    """A vote the rules do not accept; ``code`` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def auto_approves(rule: ApprovalRule, budget_usd: Decimal) -> bool:
    return budget_usd < rule.auto_approve_below_usd


def roles_still_needed(rule: ApprovalRule, budget_usd: Decimal, votes: list[Vote]) -> set[Role]:
    approving_roles = {vote.role for vote in votes if vote.decision is Decision.APPROVE}
    return {
        requirement.role
        for requirement in rule.required_roles
        if budget_usd > requirement.above_budget_usd and requirement.role not in approving_roles
    }


def outcome(rule: ApprovalRule, budget_usd: Decimal, votes: list[Vote]) -> Outcome:
    if any(vote.decision is Decision.REJECT for vote in votes):
        return Outcome.REJECTED
    approvals = sum(vote.decision is Decision.APPROVE for vote in votes)
    if approvals >= rule.min_approvals and not roles_still_needed(rule, budget_usd, votes):
        return Outcome.APPROVED
    return Outcome.PENDING


def check_vote(
    *,
    voter_id: str,
    role: Role,
    submitted_by: str,
    votes: list[Vote],
) -> None:
    """Raise VoteRefused unless this voter may vote now."""
    if not allows(role, Permission.APPROVALS):
        raise VoteRefused("role_cannot_approve", f"the {role} role cannot vote on approvals")
    if voter_id == submitted_by:
        raise VoteRefused("self_approval", "the submitter cannot vote on their own campaign")
    if any(vote.voter_id == voter_id for vote in votes):
        raise VoteRefused("duplicate_vote", "this approver has already voted")


def rule_for(rules: list[ApprovalRule], campaign_type: str) -> ApprovalRule:
    """The rule for a campaign type, else the tenant's default, else the platform's."""
    by_type = {rule.campaign_type: rule for rule in rules}
    return by_type.get(campaign_type) or by_type.get(ANY_CAMPAIGN_TYPE) or ApprovalRule()
