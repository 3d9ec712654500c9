"""``/api/v1/brand`` (guidelines and assets) and ``/api/v1/management/calendar``.

Guidelines are one document per tenant: colours, fonts, tone, words to avoid. Submitting a
campaign checks its creatives against the words to avoid (``domain.brand``); assets are
referenced by URL, with their usage rights' end date so expired ones can be spotted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import AnyHttpUrl, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from adapters.db.brand import BrandAsset, BrandRepository, CalendarEntry, CalendarRepository
from api.deps import AuditDep, PaginationDep, TenantScopeDep, not_found, requires
from domain.platform import Permission

router = APIRouter(prefix="/api/v1/brand", tags=["brand"])
calendar_router = APIRouter(prefix="/api/v1/management/calendar", tags=["calendar"])

HexColour = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")]
MAX_CALENDAR_WINDOW = timedelta(days=400)


@dataclass
class BrandServices:
    brand: BrandRepository
    calendar: CalendarRepository


def get_brand_services(request: Request) -> BrandServices:
    services: BrandServices = request.app.state.brand
    return services


ServicesDep = Annotated[BrandServices, Depends(get_brand_services)]


class Guidelines(BaseModel):
    model_config = ConfigDict(extra="forbid")

    colours: list[HexColour] = Field(default_factory=list, max_length=20)
    fonts: list[Annotated[str, Field(max_length=100)]] = Field(default_factory=list, max_length=10)
    tone: str = Field(default="", max_length=2000)
    words_to_avoid: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=500
    )
    logo_asset_id: str | None = None
    notes: str = Field(default="", max_length=10_000)


class AssetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: Literal["logo", "image", "video", "font", "document"]
    url: AnyHttpUrl
    tags: list[Annotated[str, Field(min_length=1, max_length=50)]] = Field(
        default_factory=list, max_length=30
    )
    usage_rights_until: AwareDatetime | None = None


class AssetPublic(BaseModel):
    id: str
    name: str
    kind: str
    url: str
    tags: list[str]
    usage_rights_until: datetime | None
    rights_expired: bool
    created_at: datetime

    @classmethod
    def of(cls, asset: BrandAsset, now: datetime) -> AssetPublic:
        return cls(
            id=asset.id,
            name=asset.name,
            kind=asset.kind,
            url=asset.url,
            tags=asset.tags,
            usage_rights_until=asset.usage_rights_until,
            rights_expired=asset.usage_rights_until is not None and asset.usage_rights_until <= now,
            created_at=asset.created_at,
        )


@router.get(
    "/guidelines", dependencies=[requires(Permission.CAMPAIGN_READ)], summary="The guidelines"
)
async def get_guidelines(services: ServicesDep, scope: TenantScopeDep) -> Guidelines:
    document = await services.brand.guidelines(scope.tenant_id)
    return Guidelines.model_validate(document or {})


@router.put(
    "/guidelines",
    dependencies=[requires(Permission.CAMPAIGN_WRITE)],
    summary="Replace the guidelines",
)
async def put_guidelines(
    body: Guidelines, services: ServicesDep, scope: TenantScopeDep, audit: AuditDep
) -> Guidelines:
    logo = body.logo_asset_id
    # Only one of the tenant's own assets: an id from another tenant is as unknown as any.
    if logo is not None and await services.brand.asset(scope.tenant_id, logo) is None:
        raise not_found("asset", logo)
    before = await services.brand.guidelines(scope.tenant_id)
    await services.brand.save_guidelines(scope.tenant_id, body.model_dump(mode="json"))
    await audit.record(
        "brand.guidelines", "brand_guidelines", scope.tenant_id, before=before, after=body
    )
    return body


@router.post(
    "/assets",
    status_code=201,
    dependencies=[requires(Permission.CAMPAIGN_WRITE)],
    summary="Register an asset",
)
async def add_asset(
    body: AssetCreate, services: ServicesDep, scope: TenantScopeDep, audit: AuditDep
) -> AssetPublic:
    now = datetime.now(UTC)
    asset = BrandAsset(
        id=str(uuid.uuid4()),
        tenant_id=scope.tenant_id,
        name=body.name,
        kind=body.kind,
        url=str(body.url),
        tags=body.tags,
        usage_rights_until=body.usage_rights_until,
        created_at=now,
    )
    await services.brand.add_asset(asset)
    created = AssetPublic.of(asset, now)
    await audit.record("brand.asset.create", "brand_asset", asset.id, after=created)
    return created


@router.get("/assets", dependencies=[requires(Permission.CAMPAIGN_READ)], summary="List assets")
async def list_assets(
    services: ServicesDep,
    scope: TenantScopeDep,
    page: PaginationDep,
    tag: Annotated[str | None, Query(max_length=50)] = None,
) -> list[AssetPublic]:
    now = datetime.now(UTC)
    assets = await services.brand.assets(
        scope.tenant_id, tag=tag, limit=page.limit, offset=page.offset
    )
    return [AssetPublic.of(asset, now) for asset in assets]


@router.get(
    "/assets/{asset_id}", dependencies=[requires(Permission.CAMPAIGN_READ)], summary="One asset"
)
async def get_asset(asset_id: str, services: ServicesDep, scope: TenantScopeDep) -> AssetPublic:
    asset = await services.brand.asset(scope.tenant_id, asset_id)
    if asset is None:
        raise not_found("asset", asset_id)
    return AssetPublic.of(asset, datetime.now(UTC))


@router.delete(
    "/assets/{asset_id}",
    status_code=204,
    dependencies=[requires(Permission.CAMPAIGN_WRITE)],
    summary="Remove an asset",
)
async def delete_asset(
    asset_id: str, services: ServicesDep, scope: TenantScopeDep, audit: AuditDep
) -> Response:
    if not await services.brand.delete_asset(scope.tenant_id, asset_id):
        raise not_found("asset", asset_id)
    await audit.record("brand.asset.delete", "brand_asset", asset_id)
    return Response(status_code=204)


# --- calendar -----------------------------------------------------------------------------------


class EntryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["event", "milestone"]
    title: str = Field(min_length=1, max_length=200)
    starts_at: AwareDatetime
    ends_at: AwareDatetime | None = None
    campaign_id: str | None = None
    notes: str = Field(default="", max_length=5000)

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> EntryCreate:
        if self.ends_at is not None and self.ends_at < self.starts_at:
            raise ValueError("ends_at must not be before starts_at")
        if self.kind == "milestone" and self.ends_at is not None:
            raise ValueError("a milestone is a moment: no ends_at")
        return self


class EntryPublic(BaseModel):
    id: str
    kind: str
    title: str
    starts_at: datetime
    ends_at: datetime | None
    campaign_id: str | None
    notes: str

    @classmethod
    def of(cls, entry: CalendarEntry) -> EntryPublic:
        return cls(
            id=entry.id,
            kind=entry.kind,
            title=entry.title,
            starts_at=entry.starts_at,
            ends_at=entry.ends_at,
            campaign_id=entry.campaign_id,
            notes=entry.notes,
        )


@calendar_router.get(
    "",
    dependencies=[requires(Permission.CAMPAIGN_READ)],
    summary="Events, milestones and campaign flights in a window",
)
async def calendar(
    services: ServicesDep,
    scope: TenantScopeDep,
    start: Annotated[AwareDatetime, Query(alias="from")],
    end: Annotated[AwareDatetime, Query(alias="to")],
) -> list[EntryPublic]:
    if end <= start or end - start > MAX_CALENDAR_WINDOW:
        raise HTTPException(
            status_code=422,
            detail={"code": "bad_window", "message": "'to' must be after 'from', within 400 days"},
        )
    entries = await services.calendar.between(scope.tenant_id, start, end)
    return [EntryPublic.of(entry) for entry in entries]


@calendar_router.post(
    "/entries",
    status_code=201,
    dependencies=[requires(Permission.CAMPAIGN_WRITE)],
    summary="Add an event or milestone",
)
async def add_entry(
    body: EntryCreate,
    request: Request,
    services: ServicesDep,
    scope: TenantScopeDep,
    audit: AuditDep,
) -> EntryPublic:
    if body.campaign_id is not None:
        campaigns = request.app.state.campaigns.campaigns
        if await campaigns.find(scope.tenant_id, body.campaign_id) is None:
            raise not_found("campaign", body.campaign_id)
    entry = CalendarEntry(
        id=str(uuid.uuid4()),
        tenant_id=scope.tenant_id,
        campaign_id=body.campaign_id,
        kind=body.kind,
        title=body.title,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        notes=body.notes,
    )
    await services.calendar.add(entry)
    created = EntryPublic.of(entry)
    await audit.record("calendar.create", "calendar_entry", entry.id, after=created)
    return created


@calendar_router.delete(
    "/entries/{entry_id}",
    status_code=204,
    dependencies=[requires(Permission.CAMPAIGN_WRITE)],
    summary="Remove an event or milestone",
)
async def delete_entry(
    entry_id: str, services: ServicesDep, scope: TenantScopeDep, audit: AuditDep
) -> Response:
    if not await services.calendar.delete(scope.tenant_id, entry_id):
        raise not_found("calendar entry", entry_id)
    await audit.record("calendar.delete", "calendar_entry", entry_id)
    return Response(status_code=204)
