"""Brand guidelines and assets, and the campaign calendar, per tenant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select

from adapters.db import statements
from adapters.db.repositories import Sessions, _dialect
from adapters.db.tables import (
    brand_assets_table,
    brand_guidelines_table,
    calendar_entries_table,
    campaigns_table,
)


@dataclass(frozen=True, slots=True)
class BrandAsset:
    id: str
    tenant_id: str
    name: str
    kind: str
    url: str
    tags: list[str]
    usage_rights_until: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CalendarEntry:
    id: str
    tenant_id: str
    campaign_id: str | None
    kind: str  # event, milestone, or flight (a campaign's start to end, derived)
    title: str
    starts_at: datetime
    ends_at: datetime | None
    notes: str


class BrandRepository:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def guidelines(self, tenant_id: str) -> dict[str, Any] | None:
        async with self._sessions() as session:
            document: dict[str, Any] | None = (
                await session.execute(
                    select(brand_guidelines_table.c.document).where(
                        brand_guidelines_table.c.tenant_id == tenant_id
                    )
                )
            ).scalar()
            return document

    async def save_guidelines(self, tenant_id: str, document: dict[str, Any]) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                statements.upsert(
                    _dialect(session),
                    brand_guidelines_table,
                    ["tenant_id"],
                    {"tenant_id": tenant_id, "document": document, "updated_at": datetime.now(UTC)},
                )
            )

    async def add_asset(self, asset: BrandAsset) -> None:
        async with self._sessions.begin() as session:
            await session.execute(insert(brand_assets_table).values(**_asdict(asset)))

    async def assets(
        self, tenant_id: str, *, tag: str | None, limit: int, offset: int
    ) -> list[BrandAsset]:
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(brand_assets_table)
                    .where(brand_assets_table.c.tenant_id == tenant_id)
                    .order_by(brand_assets_table.c.created_at.desc(), brand_assets_table.c.id)
                )
            ).mappings()
            found = [BrandAsset(**row) for row in rows]
        if tag is not None:
            found = [asset for asset in found if tag in asset.tags]
        return found[offset : offset + limit]

    async def asset(self, tenant_id: str, asset_id: str) -> BrandAsset | None:
        async with self._sessions() as session:
            row = (
                (
                    await session.execute(
                        select(brand_assets_table).where(
                            brand_assets_table.c.tenant_id == tenant_id,
                            brand_assets_table.c.id == asset_id,
                        )
                    )
                )
                .mappings()
                .first()
            )
            return BrandAsset(**row) if row is not None else None

    async def delete_asset(self, tenant_id: str, asset_id: str) -> bool:
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(brand_assets_table).where(
                    brand_assets_table.c.tenant_id == tenant_id,
                    brand_assets_table.c.id == asset_id,
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]


class CalendarRepository:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def add(self, entry: CalendarEntry) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                insert(calendar_entries_table).values(
                    **_asdict(entry), created_at=datetime.now(UTC)
                )
            )

    async def between(self, tenant_id: str, start: datetime, end: datetime) -> list[CalendarEntry]:
        """Entries and campaign flights overlapping [start, end), by start time."""
        entries = calendar_entries_table
        # A milestone (no end) falls in the window; an event with an end overlaps it.
        overlaps = and_(
            entries.c.starts_at < end,
            or_(
                and_(entries.c.ends_at.is_(None), entries.c.starts_at >= start),
                entries.c.ends_at >= start,
            ),
        )
        flights = campaigns_table
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(entries).where(entries.c.tenant_id == tenant_id, overlaps)
                )
            ).mappings()
            found = [
                CalendarEntry(**{k: v for k, v in row.items() if k != "created_at"}) for row in rows
            ]
            campaign_rows = (
                await session.execute(
                    select(
                        flights.c.id, flights.c.name, flights.c.start_at, flights.c.end_at
                    ).where(
                        flights.c.tenant_id == tenant_id,
                        flights.c.start_at.is_not(None),
                        flights.c.start_at < end,
                        or_(flights.c.end_at.is_(None), flights.c.end_at >= start),
                    )
                )
            ).all()
        found.extend(
            CalendarEntry(
                id=f"flight-{campaign_id}",
                tenant_id=tenant_id,
                campaign_id=campaign_id,
                kind="flight",
                title=name,
                starts_at=start_at,
                ends_at=end_at,
                notes="",
            )
            for campaign_id, name, start_at, end_at in campaign_rows
        )
        return sorted(found, key=lambda entry: (entry.starts_at, entry.title))

    async def get(self, tenant_id: str, entry_id: str) -> CalendarEntry | None:
        async with self._sessions() as session:
            row = (
                (
                    await session.execute(
                        select(calendar_entries_table).where(
                            calendar_entries_table.c.tenant_id == tenant_id,
                            calendar_entries_table.c.id == entry_id,
                        )
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                return None
            return CalendarEntry(**{k: v for k, v in row.items() if k != "created_at"})

    async def delete(self, tenant_id: str, entry_id: str) -> bool:
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(calendar_entries_table).where(
                    calendar_entries_table.c.tenant_id == tenant_id,
                    calendar_entries_table.c.id == entry_id,
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]


def _asdict(item: BrandAsset | CalendarEntry) -> dict[str, Any]:
    return {name: getattr(item, name) for name in item.__slots__}
