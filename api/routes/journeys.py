"""``/api/v1/journeys``: journey definitions, their versions, and the moves that put them live.

A journey is a draft the marketer edits (``PUT``), published as numbered immutable versions:
customers enter the latest published version and finish on the one they entered, however the
draft changes meanwhile. Paused journeys admit no one new; customers inside go on. Every write
is audited. Definitions are checked on the way in (shape and graph); ``POST
/journeys/validate`` checks one without saving it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel

from adapters.db.journeys import (
    JourneyNotFoundError,
    JourneyRecord,
    JourneyStateError,
    JourneyVersionRecord,
)
from api.deps import (
    AuditDep,
    CurrentPrincipal,
    PagePublic,
    PaginationDep,
    TenantScopeDep,
    not_found,
    requires,
)
from api.journeys import (
    JourneyServices,
    ScheduleInPastError,
    check_schedule,
    needs_schedule_sync,
    remove_schedule,
    set_schedule,
)
from domain.identity import Actor
from domain.journey_lifecycle import JourneyMove, JourneyStatus
from domain.journeys import JourneyDefinition
from domain.platform import Permission

router = APIRouter(prefix="/api/v1", tags=["journeys"])


def get_journey_services(request: Request) -> JourneyServices:
    services: JourneyServices = request.app.state.journeys
    return services


ServicesDep = Annotated[JourneyServices, Depends(get_journey_services)]


class JourneyPublic(BaseModel):
    id: str
    name: str
    status: JourneyStatus
    draft: dict[str, Any]
    published_version: int | None
    created_at: datetime
    updated_at: datetime


class JourneyVersionSummary(BaseModel):
    version: int
    published_at: datetime
    published_by: str


class JourneyVersionPublic(JourneyVersionSummary):
    definition: dict[str, Any]


class ValidDefinition(BaseModel):
    valid: Literal[True] = True


def public(record: JourneyRecord) -> JourneyPublic:
    return JourneyPublic(
        id=record.id,
        name=record.name,
        status=record.status,
        draft=record.draft,
        published_version=record.published_version,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def _summary(record: JourneyVersionRecord) -> JourneyVersionSummary:
    return JourneyVersionSummary(
        version=record.version, published_at=record.published_at, published_by=record.published_by
    )


def _conflict(error: JourneyStateError) -> HTTPException:
    return HTTPException(status_code=409, detail={"code": "invalid_status", "message": str(error)})


async def _record(services: JourneyServices, tenant_id: str, journey_id: str) -> JourneyRecord:
    record = await services.journeys.find(tenant_id, journey_id)
    if record is None:
        raise not_found("journey", journey_id)
    return record


async def _live_definition(
    services: JourneyServices, tenant_id: str, record: JourneyRecord
) -> JourneyDefinition | None:
    if record.published_version is None:
        return None
    version = await services.journeys.version(tenant_id, record.id, record.published_version)
    return JourneyDefinition.model_validate(version.definition) if version is not None else None


@router.post(
    "/journeys",
    status_code=201,
    dependencies=[requires(Permission.CAMPAIGN_WRITE)],
    summary="Create a journey (a draft)",
    description="422 lists what is wrong with the definition, each with its `loc` and `msg`.",
)
async def create_journey(
    body: JourneyDefinition, services: ServicesDep, scope: TenantScopeDep, audit: AuditDep
) -> JourneyPublic:
    record = await services.journeys.create(
        scope.tenant_id, str(uuid.uuid4()), body, services.clock.now()
    )
    created = public(record)
    await audit.record("journey.create", "journey", record.id, after=created)
    return created


@router.post(
    "/journeys/validate",
    dependencies=[requires(Permission.CAMPAIGN_WRITE)],
    summary="Check a definition without saving it",
    description='200 `{"valid": true}`, or 422 with what is wrong, as `POST /journeys` would.',
)
async def validate_journey(body: JourneyDefinition) -> ValidDefinition:
    return ValidDefinition()


@router.get(
    "/journeys",
    dependencies=[requires(Permission.CAMPAIGN_READ)],
    summary="List journeys, newest first",
)
async def list_journeys(
    services: ServicesDep,
    scope: TenantScopeDep,
    page: PaginationDep,
    status: JourneyStatus | None = None,
) -> PagePublic[JourneyPublic]:
    records, total = await services.journeys.search(
        scope.tenant_id, status=status, limit=page.limit, offset=page.offset
    )
    return PagePublic(
        items=[public(record) for record in records],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get(
    "/journeys/{journey_id}",
    dependencies=[requires(Permission.CAMPAIGN_READ)],
    summary="One journey: its draft, status and published version",
)
async def get_journey(
    journey_id: str, services: ServicesDep, scope: TenantScopeDep
) -> JourneyPublic:
    return public(await _record(services, scope.tenant_id, journey_id))


@router.put(
    "/journeys/{journey_id}",
    dependencies=[requires(Permission.CAMPAIGN_WRITE)],
    summary="Replace the draft",
    description="Customers inside stay on the version they entered; the new draft goes live "
    "on the next publish.",
)
async def replace_journey(
    journey_id: str,
    body: JourneyDefinition,
    services: ServicesDep,
    scope: TenantScopeDep,
    audit: AuditDep,
) -> JourneyPublic:
    before = public(await _record(services, scope.tenant_id, journey_id))
    try:
        record = await services.journeys.replace_draft(
            scope.tenant_id, journey_id, body, services.clock.now()
        )
    except JourneyNotFoundError:
        raise not_found("journey", journey_id) from None
    except JourneyStateError as error:
        raise _conflict(error) from None
    after = public(record)
    await audit.record("journey.update", "journey", journey_id, before=before, after=after)
    return after


@router.post(
    "/journeys/{journey_id}/publish",
    dependencies=[requires(Permission.CAMPAIGN_WRITE)],
    summary="Publish the draft as the next version",
    description="The draft becomes version N+1, immutable, and the journey admits customers "
    "into it. Publishing a draft identical to the latest version makes no new version. A "
    "schedule-triggered journey gets its Temporal Schedule.",
)
async def publish_journey(
    journey_id: str,
    services: ServicesDep,
    scope: TenantScopeDep,
    principal: CurrentPrincipal,
    audit: AuditDep,
) -> JourneyPublic:
    record = await _record(services, scope.tenant_id, journey_id)
    before = public(record)
    previous = await _live_definition(services, scope.tenant_id, record)
    draft = JourneyDefinition.model_validate(record.draft)
    try:
        # Before anything changes: a one-off day that has passed everywhere cannot go live.
        check_schedule(draft, services.clock.now())
    except ScheduleInPastError as error:
        raise HTTPException(
            status_code=409, detail={"code": "schedule_in_past", "message": str(error)}
        ) from None
    try:
        published = await services.journeys.publish(
            scope.tenant_id, journey_id, Actor.of(principal).reference, services.clock.now()
        )
    except JourneyNotFoundError:
        raise not_found("journey", journey_id) from None
    except JourneyStateError as error:
        raise _conflict(error) from None
    after = public(published.journey)
    await audit.record("journey.publish", "journey", journey_id, before=before, after=after)
    if needs_schedule_sync(draft, previous):
        await set_schedule(services, scope.tenant_id, journey_id, draft)
    return after


async def _move(
    move: JourneyMove,
    journey_id: str,
    services: JourneyServices,
    scope: TenantScopeDep,
    audit: AuditDep,
) -> JourneyPublic:
    record = await _record(services, scope.tenant_id, journey_id)
    live = await _live_definition(services, scope.tenant_id, record)
    try:
        before, after = await services.journeys.move(
            scope.tenant_id, journey_id, move, services.clock.now()
        )
    except JourneyNotFoundError:
        raise not_found("journey", journey_id) from None
    except JourneyStateError as error:
        raise _conflict(error) from None
    shown = public(after)
    await audit.record(
        f"journey.{move.value}", "journey", journey_id, before=public(before), after=shown
    )
    if needs_schedule_sync(live):
        if after.status is JourneyStatus.PUBLISHED:
            await set_schedule(services, scope.tenant_id, journey_id, live)
        else:
            await remove_schedule(services, scope.tenant_id, journey_id)
    return shown


@router.post(
    "/journeys/{journey_id}/pause",
    dependencies=[requires(Permission.CAMPAIGN_WRITE)],
    summary="Pause: no new entries; customers inside go on",
)
async def pause_journey(
    journey_id: str, services: ServicesDep, scope: TenantScopeDep, audit: AuditDep
) -> JourneyPublic:
    return await _move(JourneyMove.PAUSE, journey_id, services, scope, audit)


@router.post(
    "/journeys/{journey_id}/resume",
    dependencies=[requires(Permission.CAMPAIGN_WRITE)],
    summary="Resume a paused journey",
)
async def resume_journey(
    journey_id: str, services: ServicesDep, scope: TenantScopeDep, audit: AuditDep
) -> JourneyPublic:
    return await _move(JourneyMove.RESUME, journey_id, services, scope, audit)


@router.post(
    "/journeys/{journey_id}/archive",
    dependencies=[requires(Permission.CAMPAIGN_WRITE)],
    summary="Archive: no new entries, no more edits; customers inside go on",
)
async def archive_journey(
    journey_id: str, services: ServicesDep, scope: TenantScopeDep, audit: AuditDep
) -> JourneyPublic:
    return await _move(JourneyMove.ARCHIVE, journey_id, services, scope, audit)


@router.get(
    "/journeys/{journey_id}/versions",
    dependencies=[requires(Permission.CAMPAIGN_READ)],
    summary="Published versions, newest first",
)
async def list_versions(
    journey_id: str, services: ServicesDep, scope: TenantScopeDep, page: PaginationDep
) -> PagePublic[JourneyVersionSummary]:
    found = await services.journeys.versions(
        scope.tenant_id, journey_id, limit=page.limit, offset=page.offset
    )
    if found is None:
        raise not_found("journey", journey_id)
    records, total = found
    return PagePublic(
        items=[_summary(record) for record in records],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get(
    "/journeys/{journey_id}/versions/{version}",
    dependencies=[requires(Permission.CAMPAIGN_READ)],
    summary="One published version, with its definition",
)
async def get_version(
    journey_id: str, version: int, services: ServicesDep, scope: TenantScopeDep
) -> JourneyVersionPublic:
    record = await services.journeys.version(scope.tenant_id, journey_id, version)
    if record is None:
        raise not_found("journey version", f"{journey_id}/{version}")
    return JourneyVersionPublic(**_summary(record).model_dump(), definition=record.definition)
