"""The campaign lifecycle: the seed's stages and the moves between them.

    Draft -> InReview -> Approved -> Scheduled -> Live <-> Paused -> Completed -> Archived
                      -> Rejected -> Draft (edit and submit again)
                                     Scheduled -> Archived (called off before its start)

Draft and Rejected belong to the marketer (the database alone holds them); from submission to
archive the campaign's lifecycle workflow owns the status and is the only writer.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from domain.approvals import ApprovalRule, Decision, Outcome, Vote
from domain.campaigns import CampaignStatus
from domain.platform import Role

S = CampaignStatus

MOVES: dict[CampaignStatus, frozenset[CampaignStatus]] = {
    S.DRAFT: frozenset({S.IN_REVIEW, S.ARCHIVED}),
    S.IN_REVIEW: frozenset({S.APPROVED, S.REJECTED}),
    S.APPROVED: frozenset({S.SCHEDULED}),
    S.REJECTED: frozenset({S.DRAFT, S.ARCHIVED}),
    S.SCHEDULED: frozenset({S.LIVE, S.COMPLETED, S.ARCHIVED}),
    S.LIVE: frozenset({S.PAUSED, S.COMPLETED}),
    S.PAUSED: frozenset({S.LIVE, S.COMPLETED}),
    S.COMPLETED: frozenset({S.ARCHIVED}),
    S.ARCHIVED: frozenset(),
}

# The error type a submission fails with when the campaign was edited while it was submitted.
CAMPAIGN_CHANGED = "changed_concurrently"

# Statuses in which the marketer may still edit the campaign itself.
EDITABLE = frozenset({S.DRAFT, S.REJECTED})


def can_move(current: CampaignStatus, target: CampaignStatus) -> bool:
    return target in MOVES[current]


class LifecycleInput(BaseModel):
    """What a campaign's lifecycle workflow starts with. Fields are only ever added."""

    model_config = ConfigDict(frozen=True)

    version: int = 1
    tenant_id: str
    campaign_id: str
    campaign_name: str = ""
    campaign_type: str = "standard"
    budget_usd: Decimal
    start_at: datetime | None = None
    end_at: datetime | None = None
    submitted_by: str
    submitted_by_name: str = ""
    rule: ApprovalRule = Field(default_factory=ApprovalRule)
    # Completed campaigns are archived by hand, or after this long.
    archive_after_s: int = Field(default=30 * 24 * 3600, gt=0)
    # The campaign's version the submission was checked and built on; its in_review move is
    # written only on that version. None: unchecked (runs started before the field).
    campaign_version: int | None = None
    # Carried across continue-as-new; None on a fresh submission.
    resume: LifecycleState | None = None


class Transition(BaseModel):
    model_config = ConfigDict(frozen=True)

    from_status: CampaignStatus
    to_status: CampaignStatus
    at: datetime
    actor_id: str = ""
    actor_name: str = ""
    reason: str = ""


class LifecycleState(BaseModel):
    """What the workflow's ``state`` query answers, and what continue-as-new carries."""

    status: CampaignStatus
    outcome: Outcome = Outcome.PENDING
    votes: list[Vote] = Field(default_factory=list)
    history: list[Transition] = Field(default_factory=list)
    roles_needed: list[Role] = Field(default_factory=list)
    approvals_needed: int = 0
    reminders_sent: int = 0
    escalated: bool = False
    budget_exhausted: bool = False
    transitions_recorded: int = 0


class VoteRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    voter_id: str
    voter_name: str = ""
    role: Role
    decision: Decision
    comment: str = Field(default="", max_length=2000)


class VoteResult(BaseModel):
    outcome: Outcome
    status: CampaignStatus
    approvals: int
    approvals_needed: int


class OperatorRequest(BaseModel):
    """Pause, resume or archive, from an operator over REST."""

    model_config = ConfigDict(frozen=True)

    actor_id: str
    actor_name: str = ""
    reason: str = Field(default="", max_length=500)


LifecycleInput.model_rebuild()
