"""``/api/v1/workflows``: approvals waiting for the caller, votes, decision history, rules.

A vote is an update to the campaign's lifecycle workflow: the workflow validates it (the
caller may approve, is not the submitter, has not voted) and answers with the outcome, so the
response says whether this vote decided the campaign.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import AuditDep, CurrentPrincipal, TenantScopeDep, not_found, requires
from api.lifecycle import CampaignServices, query_state, send_update
from api.routes.management import ServicesDep
from domain.approvals import ApprovalRule, Decision, Outcome
from domain.campaigns import CampaignStatus
from domain.lifecycle import VoteRequest, VoteResult
from domain.platform import Permission, Role
from workflows.campaign_lifecycle import CampaignLifecycleWorkflow

router = APIRouter(prefix="/api/v1/workflows", tags=["approvals"])

CampaignType = Annotated[str, Path(pattern=r"^(\*|[a-z0-9][a-z0-9_-]{0,31})$")]


class PendingApproval(BaseModel):
    campaign_id: str
    name: str
    campaign_type: str
    budget: Decimal
    currency: str
    start_at: datetime | None
    submitted_by: str
    submitted_by_name: str
    submitted_at: datetime | None
    approvals_needed: int
    roles_needed: list[Role]


class VoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str = Field(default="", max_length=2000)


class ApprovalRuleBody(ApprovalRule):
    """A rule as PUT: a misspelt field is refused, not silently left at its default."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class DecisionEvent(BaseModel):
    kind: str  # transition, vote, reminder, escalation
    at: datetime
    actor_id: str
    detail: dict[str, Any]


@router.get(
    "/approvals",
    dependencies=[requires(Permission.APPROVALS)],
    summary="Campaigns in review that the caller may still vote on",
)
async def pending_approvals(
    services: ServicesDep, scope: TenantScopeDep, principal: CurrentPrincipal
) -> list[PendingApproval]:
    pending: list[PendingApproval] = []
    for campaign_id in await services.lifecycle.awaiting_vote_from(
        scope.tenant_id, principal.person
    ):
        record = await services.campaigns.find(scope.tenant_id, campaign_id)
        state = await query_state(services, scope.tenant_id, campaign_id)
        # Decided by a vote a moment ago, its move out of review not yet written: not pending.
        if (
            record is None
            or state is None
            or state.status is not CampaignStatus.IN_REVIEW
            or state.outcome is not Outcome.PENDING
        ):
            continue
        submitted = next(
            (t for t in reversed(state.history) if t.to_status is CampaignStatus.IN_REVIEW), None
        )
        campaign = record.campaign
        pending.append(
            PendingApproval(
                campaign_id=campaign.id,
                name=campaign.name,
                campaign_type=campaign.campaign_type,
                budget=campaign.budget,
                currency=campaign.currency,
                start_at=campaign.start_at,
                submitted_by=submitted.actor_id if submitted else "",
                submitted_by_name=submitted.actor_name if submitted else "",
                submitted_at=submitted.at if submitted else None,
                approvals_needed=state.approvals_needed,
                roles_needed=state.roles_needed,
            )
        )
    return pending


async def _vote(
    decision: Decision,
    campaign_id: str,
    body: VoteBody,
    services: CampaignServices,
    scope: TenantScopeDep,
    principal: CurrentPrincipal,
    audit: AuditDep,
) -> VoteResult:
    if await services.campaigns.find(scope.tenant_id, campaign_id) is None:
        raise not_found("campaign", campaign_id)
    result: VoteResult = await send_update(
        services,
        scope.tenant_id,
        campaign_id,
        CampaignLifecycleWorkflow.vote,
        VoteRequest(
            voter_id=principal.person,
            voter_name=principal.name,
            role=principal.role,
            decision=decision,
            comment=body.comment,
        ),
    )
    await audit.record(
        f"approval.{decision.value}",
        "campaign",
        campaign_id,
        after={"comment": body.comment, "outcome": result.outcome.value},
    )
    return result


@router.post(
    "/approvals/{campaign_id}/approve",
    dependencies=[requires(Permission.APPROVALS)],
    summary="Approve a campaign in review",
    responses={409: {"description": "the workflow refused the vote (code says why)"}},
)
async def approve(
    campaign_id: str,
    body: VoteBody,
    services: ServicesDep,
    scope: TenantScopeDep,
    principal: CurrentPrincipal,
    audit: AuditDep,
) -> VoteResult:
    return await _vote(Decision.APPROVE, campaign_id, body, services, scope, principal, audit)


@router.post(
    "/approvals/{campaign_id}/reject",
    dependencies=[requires(Permission.APPROVALS)],
    summary="Reject a campaign in review (one rejection decides)",
    responses={409: {"description": "the workflow refused the vote (code says why)"}},
)
async def reject(
    campaign_id: str,
    body: VoteBody,
    services: ServicesDep,
    scope: TenantScopeDep,
    principal: CurrentPrincipal,
    audit: AuditDep,
) -> VoteResult:
    return await _vote(Decision.REJECT, campaign_id, body, services, scope, principal, audit)


@router.get(
    "/campaigns/{campaign_id}/history",
    dependencies=[requires(Permission.CAMPAIGN_READ)],
    summary="Everything decided about a campaign: moves, votes, reminders, escalations",
)
async def decision_history(
    campaign_id: str, services: ServicesDep, scope: TenantScopeDep
) -> list[DecisionEvent]:
    if await services.campaigns.find(scope.tenant_id, campaign_id) is None:
        raise not_found("campaign", campaign_id)
    return [
        DecisionEvent(kind=e.kind, at=e.at, actor_id=e.actor_id, detail=e.payload)
        for e in await services.lifecycle.history(scope.tenant_id, campaign_id)
    ]


@router.get(
    "/approval-rules",
    dependencies=[requires(Permission.CAMPAIGN_READ)],
    summary="The tenant's approval rules by campaign type ('*' is the default)",
)
async def list_rules(services: ServicesDep, scope: TenantScopeDep) -> list[ApprovalRule]:
    return await services.lifecycle.rules(scope.tenant_id)


@router.put(
    "/approval-rules/{campaign_type}",
    dependencies=[requires(Permission.SYSTEM_CONFIG)],
    summary="Set the approval rule of a campaign type ('*' for the default)",
)
async def put_rule(
    campaign_type: CampaignType,
    body: ApprovalRuleBody,
    services: ServicesDep,
    scope: TenantScopeDep,
    audit: AuditDep,
) -> ApprovalRule:
    rule = ApprovalRule.model_validate({**body.model_dump(), "campaign_type": campaign_type})
    await services.lifecycle.save_rule(scope.tenant_id, rule)
    await audit.record("approval_rule.put", "approval_rule", campaign_type, after=rule)
    return rule


@router.delete(
    "/approval-rules/{campaign_type}",
    status_code=204,
    dependencies=[requires(Permission.SYSTEM_CONFIG)],
    summary="Remove a campaign type's rule (the default applies again)",
)
async def delete_rule(
    campaign_type: CampaignType, services: ServicesDep, scope: TenantScopeDep, audit: AuditDep
) -> Response:
    if not await services.lifecycle.delete_rule(scope.tenant_id, campaign_type):
        raise not_found("approval rule", campaign_type)
    await audit.record("approval_rule.delete", "approval_rule", campaign_type)
    return Response(status_code=204)
