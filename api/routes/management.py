"""``/api/v1/management``: campaigns and their creatives, and the moves marketers and operators
ask for (submit, pause, resume, archive).

A campaign is the marketer's to edit while it is a draft (or was rejected). Submitting hands it
to its lifecycle workflow, which from then on is the only writer of its status: pause, resume
and archive are updates that the workflow validates and answers.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from adapters.db.repositories import CampaignChangedError, CampaignRecord
from api.deps import (
    AuditDep,
    CurrentPrincipal,
    PagePublic,
    PaginationDep,
    TenantScopeDep,
    not_found,
    requires,
)
from api.lifecycle import (
    CampaignServices,
    budget_in_usd,
    conflict,
    send_update,
    start_submission,
)
from api.schemas.campaigns import (
    CampaignCreate,
    CampaignPublic,
    CampaignUpdate,
    CreativeCreate,
    CreativePublic,
)
from domain.approvals import rule_for
from domain.brand import words_used
from domain.campaigns import Campaign, CampaignStatus, Creative
from domain.lifecycle import (
    CAMPAIGN_CHANGED,
    EDITABLE,
    LifecycleInput,
    LifecycleState,
    OperatorRequest,
)
from domain.platform import Permission, Principal
from workflows.campaign_lifecycle import CampaignLifecycleWorkflow

router = APIRouter(prefix="/api/v1/management", tags=["campaigns"])


def get_campaign_services(request: Request) -> CampaignServices:
    services: CampaignServices = request.app.state.campaigns
    return services


ServicesDep = Annotated[CampaignServices, Depends(get_campaign_services)]


def _creative(body: CreativeCreate) -> Creative:
    return Creative(
        id=str(uuid.uuid4()),
        **body.model_dump(exclude={"click_url"}),
        click_url=str(body.click_url) if body.click_url is not None else None,
    )


def public(record: CampaignRecord) -> CampaignPublic:
    campaign = record.campaign
    return CampaignPublic(
        **campaign.model_dump(exclude={"creatives", "tenant_id"}),
        creatives=[CreativePublic.model_validate(c.model_dump()) for c in campaign.creatives],
        created_at=record.created_at,
        updated_at=record.updated_at,
        version=record.version,
    )


async def _record(
    services: CampaignServices, scope: TenantScopeDep, campaign_id: str
) -> CampaignRecord:
    record = await services.campaigns.find(scope.tenant_id, campaign_id)
    if record is None:
        raise not_found("campaign", campaign_id)
    return record


@router.post(
    "/campaigns",
    status_code=201,
    dependencies=[requires(Permission.CAMPAIGN_WRITE)],
    summary="Create a campaign (a draft)",
)
async def create_campaign(
    body: CampaignCreate, services: ServicesDep, scope: TenantScopeDep, audit: AuditDep
) -> CampaignPublic:
    campaign = Campaign(
        id=str(uuid.uuid4()),
        tenant_id=scope.tenant_id,
        status=CampaignStatus.DRAFT,
        max_bid=body.resolved_max_bid(),
        **body.model_dump(exclude={"creatives", "max_bid"}),
        creatives=[_creative(creative) for creative in body.creatives],
    )
    await services.campaigns.save(campaign)
    created = public(await _record(services, scope, campaign.id))
    await audit.record("campaign.create", "campaign", campaign.id, after=created)
    return created


@router.get(
    "/campaigns",
    dependencies=[requires(Permission.CAMPAIGN_READ)],
    summary="List campaigns, newest first",
)
async def list_campaigns(
    services: ServicesDep,
    scope: TenantScopeDep,
    page: PaginationDep,
    status: CampaignStatus | None = None,
    campaign_type: Annotated[str | None, Query(max_length=32)] = None,
    q: Annotated[str | None, Query(max_length=200, description="name contains")] = None,
) -> PagePublic[CampaignPublic]:
    records, total = await services.campaigns.search(
        scope.tenant_id,
        status=status,
        campaign_type=campaign_type,
        name_contains=q,
        limit=page.limit,
        offset=page.offset,
    )
    return PagePublic(
        items=[public(record) for record in records],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get(
    "/campaigns/{campaign_id}",
    dependencies=[requires(Permission.CAMPAIGN_READ)],
    summary="One campaign",
)
async def get_campaign(
    campaign_id: str, services: ServicesDep, scope: TenantScopeDep
) -> CampaignPublic:
    return public(await _record(services, scope, campaign_id))


@router.patch(
    "/campaigns/{campaign_id}",
    dependencies=[requires(Permission.CAMPAIGN_WRITE)],
    summary="Edit a draft (or a rejected campaign, which becomes a draft again)",
)
async def update_campaign(
    campaign_id: str,
    body: CampaignUpdate,
    services: ServicesDep,
    scope: TenantScopeDep,
    audit: AuditDep,
) -> CampaignPublic:
    record = await _record(services, scope, campaign_id)
    before = public(record)
    current = record.campaign
    if current.status not in EDITABLE:
        raise conflict(
            "not_editable",
            f"a campaign that is {current.status} cannot be edited; only drafts and rejected ones",
        )
    changes = body.model_dump(exclude_unset=True, exclude={"creatives"})
    try:
        merged = CampaignCreate.model_validate(
            {
                **before.model_dump(
                    include=set(CampaignCreate.model_fields) - {"creatives", "max_bid"}
                ),
                "max_bid": current.max_bid,
                **changes,
            }
        )
    except ValidationError as error:
        # The change is valid alone but not with the stored fields (a daily budget above the
        # stored budget): the same 422 as a bad body, located in the body.
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]
        ) from None
    creatives = (
        [_creative(creative) for creative in body.creatives]
        if body.creatives is not None
        else current.creatives
    )
    # Validated, not model_copy'd: the merged fields come back as plain dicts.
    campaign = Campaign.model_validate(
        {
            **current.model_dump(),
            **merged.model_dump(exclude={"creatives", "max_bid"}),
            "max_bid": merged.resolved_max_bid(),
            "creatives": creatives,
            "status": CampaignStatus.DRAFT,
        }
    )
    await _save_edit(services, campaign, record)
    after = public(await _record(services, scope, campaign_id))
    await audit.record("campaign.update", "campaign", campaign_id, before=before, after=after)
    return after


async def _save_edit(services: CampaignServices, edited: Campaign, read: CampaignRecord) -> None:
    """Write an edit of ``read``, unless the campaign changed since (submitted meanwhile, or
    edited by someone else): the edit would undo that, or go live unreviewed."""
    with _conflict_if_changed():
        await services.campaigns.save(edited, expected_version=read.version)


@contextlib.contextmanager
def _conflict_if_changed() -> Iterator[None]:
    """A conditional write that found the campaign moved on answers 409."""
    try:
        yield
    except CampaignChangedError:
        raise conflict(
            CAMPAIGN_CHANGED,
            "the campaign changed while this request was handled (submitted, or edited by "
            "someone else); read it again and repeat the change if it still applies",
        ) from None


@router.delete(
    "/campaigns/{campaign_id}",
    status_code=204,
    dependencies=[requires(Permission.CAMPAIGN_WRITE)],
    summary="Delete a draft (submitted campaigns are archived instead)",
)
async def delete_campaign(
    campaign_id: str, services: ServicesDep, scope: TenantScopeDep, audit: AuditDep
) -> Response:
    record = await _record(services, scope, campaign_id)
    if record.campaign.status not in EDITABLE:
        raise conflict(
            "not_deletable", f"a campaign that is {record.campaign.status} is archived, not deleted"
        )
    with _conflict_if_changed():
        await services.campaigns.delete(
            scope.tenant_id, campaign_id, expected_version=record.version
        )
    await audit.record("campaign.delete", "campaign", campaign_id, before=public(record))
    return Response(status_code=204)


@router.post(
    "/campaigns/{campaign_id}/creatives",
    status_code=201,
    dependencies=[requires(Permission.CAMPAIGN_WRITE)],
    summary="Add a creative to a draft",
)
async def add_creative(
    campaign_id: str,
    body: CreativeCreate,
    services: ServicesDep,
    scope: TenantScopeDep,
    audit: AuditDep,
) -> CreativePublic:
    record = await _record(services, scope, campaign_id)
    campaign = record.campaign
    if campaign.status not in EDITABLE:
        raise conflict("not_editable", f"a campaign that is {campaign.status} cannot be edited")
    creative = _creative(body)
    await _save_edit(
        services,
        campaign.model_copy(
            update={"creatives": [*campaign.creatives, creative], "status": CampaignStatus.DRAFT}
        ),
        record,
    )
    added = CreativePublic.model_validate(creative.model_dump())
    await audit.record("creative.create", "creative", creative.id, after=added)
    return added


@router.delete(
    "/campaigns/{campaign_id}/creatives/{creative_id}",
    status_code=204,
    dependencies=[requires(Permission.CAMPAIGN_WRITE)],
    summary="Remove a creative from a draft",
)
async def remove_creative(
    campaign_id: str,
    creative_id: str,
    services: ServicesDep,
    scope: TenantScopeDep,
    audit: AuditDep,
) -> Response:
    record = await _record(services, scope, campaign_id)
    campaign = record.campaign
    kept = [c for c in campaign.creatives if c.id != creative_id]
    if len(kept) == len(campaign.creatives):
        raise not_found("creative", creative_id)
    if campaign.status not in EDITABLE:
        raise conflict("not_editable", f"a campaign that is {campaign.status} cannot be edited")
    await _save_edit(
        services,
        campaign.model_copy(update={"creatives": kept, "status": CampaignStatus.DRAFT}),
        record,
    )
    await audit.record("creative.delete", "creative", creative_id)
    return Response(status_code=204)


@router.post(
    "/campaigns/{campaign_id}/submit",
    dependencies=[requires(Permission.CAMPAIGN_WRITE)],
    summary="Send a draft through approval",
    description="Starts the campaign's lifecycle workflow. Under the campaign type's "
    "auto-approval threshold it is approved at once and scheduled for its start date; "
    "otherwise it waits in review for its approvers.",
)
async def submit_campaign(
    campaign_id: str,
    services: ServicesDep,
    scope: TenantScopeDep,
    principal: CurrentPrincipal,
    audit: AuditDep,
) -> CampaignPublic:
    record = await _record(services, scope, campaign_id)
    campaign = record.campaign
    if campaign.status not in EDITABLE:
        raise conflict("already_submitted", f"the campaign is {campaign.status}")
    if not campaign.creatives:
        raise conflict("no_creatives", "add at least one creative before submitting")
    guidelines = await services.brand.guidelines(scope.tenant_id) or {}
    violations = words_used(campaign.creatives, guidelines.get("words_to_avoid", []))
    if violations:
        raise conflict(
            "brand_violation",
            f"the creatives use words the brand guidelines avoid: {', '.join(violations)}",
        )
    rules = await services.lifecycle.rules(scope.tenant_id)
    request = LifecycleInput(
        tenant_id=scope.tenant_id,
        campaign_id=campaign.id,
        campaign_name=campaign.name,
        campaign_type=campaign.campaign_type,
        budget_usd=Decimal(budget_in_usd(services, campaign)),
        start_at=campaign.start_at,
        end_at=campaign.end_at,
        submitted_by=principal.person,
        submitted_by_name=principal.name,
        rule=rule_for(rules, campaign.campaign_type),
        # What the checks above and this input were made on: an edit landing before the
        # workflow writes in_review makes the submission void (changed_concurrently).
        campaign_version=record.version,
    )
    await start_submission(services, principal, campaign, request)
    await audit.record("campaign.submit", "campaign", campaign_id, before=public(record))
    # The submission is on record now: the database shows in_review, or further along.
    return public(await _record(services, scope, campaign_id))


async def _operate(
    update: object,
    campaign_id: str,
    services: CampaignServices,
    scope: TenantScopeDep,
    principal: Principal,
    audit: AuditDep,
    action: str,
    reason: str,
) -> CampaignPublic:
    record = await _record(services, scope, campaign_id)
    state: LifecycleState = await send_update(
        services,
        scope.tenant_id,
        campaign_id,
        update,
        OperatorRequest(actor_id=principal.subject_id, actor_name=principal.name, reason=reason),
    )
    after = public(await _record(services, scope, campaign_id)).model_copy(
        update={"status": state.status}
    )
    await audit.record(action, "campaign", campaign_id, before=public(record), after=after)
    return after


@router.post(
    "/campaigns/{campaign_id}/pause",
    dependencies=[requires(Permission.CAMPAIGN_OPERATE)],
    summary="Pause a live campaign: bidders stop offering it within a second",
)
async def pause_campaign(
    campaign_id: str,
    services: ServicesDep,
    scope: TenantScopeDep,
    principal: CurrentPrincipal,
    audit: AuditDep,
    reason: Annotated[str, Query(max_length=500)] = "",
) -> CampaignPublic:
    return await _operate(
        CampaignLifecycleWorkflow.pause,
        campaign_id,
        services,
        scope,
        principal,
        audit,
        "campaign.pause",
        reason,
    )


@router.post(
    "/campaigns/{campaign_id}/resume",
    dependencies=[requires(Permission.CAMPAIGN_OPERATE)],
    summary="Resume a paused campaign",
)
async def resume_campaign(
    campaign_id: str,
    services: ServicesDep,
    scope: TenantScopeDep,
    principal: CurrentPrincipal,
    audit: AuditDep,
    reason: Annotated[str, Query(max_length=500)] = "",
) -> CampaignPublic:
    return await _operate(
        CampaignLifecycleWorkflow.resume,
        campaign_id,
        services,
        scope,
        principal,
        audit,
        "campaign.resume",
        reason,
    )


@router.post(
    "/campaigns/{campaign_id}/archive",
    dependencies=[requires(Permission.CAMPAIGN_WRITE)],
    summary="Archive a completed campaign, call off a scheduled one before its start, or "
    "archive a draft nobody will submit",
)
async def archive_campaign(
    campaign_id: str,
    services: ServicesDep,
    scope: TenantScopeDep,
    principal: CurrentPrincipal,
    audit: AuditDep,
    reason: Annotated[str, Query(max_length=500)] = "",
) -> CampaignPublic:
    record = await _record(services, scope, campaign_id)
    if record.campaign.status in EDITABLE:
        # Never submitted (or rejected): no workflow owns it, the database alone does.
        with _conflict_if_changed():  # submitted meanwhile: the workflow owns it now
            await services.campaigns.set_status(
                campaign_id, CampaignStatus.ARCHIVED, expected_version=record.version
            )
        after = public(await _record(services, scope, campaign_id))
        await audit.record(
            "campaign.archive", "campaign", campaign_id, before=public(record), after=after
        )
        return after
    return await _operate(
        CampaignLifecycleWorkflow.archive,
        campaign_id,
        services,
        scope,
        principal,
        audit,
        "campaign.archive",
        reason,
    )
