"""Side effects of a campaign's lifecycle: the database's read model and the bid fleet.

Each activity is idempotent by a key the workflow derives deterministically (workflow id, run
id and a sequence number), so a retried or replayed activity writes once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.exceptions import ApplicationError

from adapters.bus.campaign_changes import CampaignChanges
from adapters.db.lifecycle import LifecycleRepository
from adapters.db.repositories import CampaignChangedError
from domain.approvals import Vote
from domain.lifecycle import CAMPAIGN_CHANGED, Transition
from domain.platform import Role


class RecordTransition(BaseModel):
    model_config = ConfigDict(frozen=True)

    tenant_id: str
    campaign_id: str
    submission_id: str  # the workflow's first run: one submission, through continue-as-new
    transition: Transition
    idempotency_key: str
    # Written only while the campaign is still at this version (the submission's first move).
    expected_version: int | None = None


class RecordVote(BaseModel):
    model_config = ConfigDict(frozen=True)

    tenant_id: str
    campaign_id: str
    submission_id: str  # the workflow run: votes belong to one submission
    vote: Vote
    idempotency_key: str


class RecordApprovalNudge(BaseModel):
    """A reminder to the approvers, or an escalation to the tenant's admins."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str
    campaign_id: str
    kind: Literal["reminder", "escalation"]
    at: datetime
    approvals_needed: int
    roles_needed: list[Role]
    idempotency_key: str


class CampaignActivities:
    def __init__(self, lifecycle: LifecycleRepository, changes: CampaignChanges) -> None:
        self._lifecycle = lifecycle
        self._changes = changes

    @activity.defn(name="campaign.record_transition")
    async def record_transition(self, request: RecordTransition) -> bool:
        """Write the new status and tell the bid fleet; False if this key was applied before."""
        try:
            applied = await self._lifecycle.apply_transition(
                request.tenant_id,
                request.campaign_id,
                request.transition,
                request.idempotency_key,
                request.submission_id,
                expected_version=request.expected_version,
            )
        except CampaignChangedError as error:
            raise ApplicationError(str(error), type=CAMPAIGN_CHANGED, non_retryable=True) from None
        # Published even on a repeat: the first attempt may have failed after its commit.
        await self._changes.publish(request.campaign_id)
        return applied

    @activity.defn(name="campaign.record_vote")
    async def record_vote(self, request: RecordVote) -> bool:
        return await self._lifecycle.record_vote(
            request.tenant_id,
            request.campaign_id,
            request.submission_id,
            request.vote,
            request.idempotency_key,
        )

    @activity.defn(name="campaign.record_approval_nudge")
    async def record_approval_nudge(self, request: RecordApprovalNudge) -> bool:
        activity.logger.info(
            "%s for campaign %s: %d approvals and roles %s still needed",
            request.kind,
            request.campaign_id,
            request.approvals_needed,
            [str(role) for role in request.roles_needed],
        )
        return await self._lifecycle.record_nudge(
            request.tenant_id,
            request.campaign_id,
            request.kind,
            request.at,
            {
                "approvals_needed": request.approvals_needed,
                "roles_needed": [str(role) for role in request.roles_needed],
            },
            request.idempotency_key,
        )

    def all(self) -> list[Callable[..., Any]]:
        """The bound activity methods, for the worker."""
        return [self.record_transition, self.record_vote, self.record_approval_nudge]
