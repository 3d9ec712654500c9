"""Async repositories over the relational store.

Each method is one unit of work: it opens a session from the factory it was given, runs in
one transaction and commits before returning. Errors::

    LookupError
     └── CampaignNotFoundError      set_status on an unknown id
    RuntimeError
     └── SchemaNotMigratedError     the database was never migrated
    sqlalchemy.exc.SQLAlchemyError  the database refused or could not be reached
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import uuid
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, Result, and_, delete, func, insert, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.db import statements
from adapters.db.convert import (
    Row,
    Values,
    campaign_from_row,
    campaign_values,
    creative_values,
    profile_from_row,
    profile_values,
    tenant_from_row,
)
from adapters.db.tables import (
    campaigns_table,
    creatives_table,
    tenants_table,
    user_profiles_table,
)
from adapters.db.types import JsonDocument
from domain.campaigns import Campaign, CampaignStatus
from domain.profiles import UserProfile
from domain.tenants import Tenant

Sessions = async_sessionmaker[AsyncSession]

_TENANT_SEAT = "tenant_seat"
_CREATIVE_PREFIX = "creative_"
_CREATIVE_COLUMNS = [column.label(_CREATIVE_PREFIX + column.name) for column in creatives_table.c]


class CampaignNotFoundError(LookupError):
    def __init__(self, campaign_id: str) -> None:
        super().__init__(f"no campaign {campaign_id}")
        self.campaign_id = campaign_id


class CampaignChangedError(Exception):
    """The campaign is no longer at the version a conditional write was based on."""

    def __init__(self, campaign_id: str, expected_version: int) -> None:
        super().__init__(f"campaign {campaign_id} is no longer at version {expected_version}")
        self.campaign_id = campaign_id


def campaign_at(
    campaign_id: str, expected_version: int | None, *, tenant_id: str | None = None
) -> list[ColumnElement[bool]]:
    """The WHERE of a write to one campaign: at ``expected_version`` only, when one is given
    (a conditional write; see ``raise_if_changed``)."""
    where = [campaigns_table.c.id == campaign_id]
    if tenant_id is not None:
        where.append(campaigns_table.c.tenant_id == tenant_id)
    if expected_version is not None:
        where.append(campaigns_table.c.version == expected_version)
    return where


def raise_if_changed(result: Result[Any], campaign_id: str, expected_version: int | None) -> None:
    """After a conditional write: no row matched, so the campaign moved past the version."""
    if expected_version is not None and result.rowcount == 0:  # type: ignore[attr-defined]
        raise CampaignChangedError(campaign_id, expected_version)


def _now() -> datetime:
    return datetime.now(UTC)


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def _bump_catalog_revision(session: AsyncSession) -> None:
    result = await session.execute(statements.bump_catalog_revision())
    statements.check_bumped(result.rowcount)  # type: ignore[attr-defined]  # a CursorResult


class TenantRepository:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def ensure(self, name: str, seat: str | None = None) -> Tenant:
        """The tenant called ``name``, created if missing. A given ``seat`` replaces the stored
        one; None leaves it as it is."""
        async with self._sessions.begin() as session:
            await session.execute(
                statements.insert_tenant_if_missing(
                    _dialect(session),
                    tenant_id=str(uuid.uuid4()),
                    name=name,
                    seat=seat,
                    created_at=_now(),
                )
            )
            row = (await session.execute(statements.select_tenant_by_name(name))).mappings().one()
            tenant = tenant_from_row(row)
            if seat is not None and tenant.seat != seat:
                await session.execute(statements.update_tenant_seat(tenant.id, seat))
                # Live campaigns without a seat of their own bid under this one.
                await _bump_catalog_revision(session)
                tenant = tenant.model_copy(update={"seat": seat})
            return tenant


@dataclass(frozen=True, slots=True)
class CampaignRecord:
    """A campaign as the management API shows it: with its bookkeeping."""

    campaign: Campaign
    created_at: datetime
    updated_at: datetime
    version: int


class CampaignRepository:
    """Campaigns with their creatives. Every write moves the catalog revision.

    With ``inline_engine`` (SQLite), ``catalog_revision`` reads on the calling thread: bid
    processes poll it twice a second, and through aiosqlite's worker thread each poll cost
    GIL hand-offs that the busy event loop waited out (~1.4 % of a bid process's samples).
    """

    def __init__(self, sessions: Sessions, *, inline_engine: Engine | None = None) -> None:
        self._sessions = sessions
        self._inline_engine = inline_engine

    async def list_live(self) -> list[Campaign]:
        """Live campaigns, seat resolved: the tenant's seat where the campaign names none."""
        live = campaigns_table.c.status == CampaignStatus.LIVE.value
        return await self._load(live, resolve_seat=True)

    async def get(self, campaign_id: str) -> Campaign | None:
        """The campaign as stored: ``seat`` stays None when the campaign has none of its own."""
        found = await self._load(campaigns_table.c.id == campaign_id, resolve_seat=False)
        return found[0] if found else None

    async def find(self, tenant_id: str, campaign_id: str) -> CampaignRecord | None:
        """The tenant's campaign; another tenant's id is simply not found."""
        found = await self._load_records(
            and_(campaigns_table.c.id == campaign_id, campaigns_table.c.tenant_id == tenant_id)
        )
        return found[0] if found else None

    async def search(
        self,
        tenant_id: str,
        *,
        status: CampaignStatus | None = None,
        campaign_type: str | None = None,
        name_contains: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[CampaignRecord], int]:
        """One page of the tenant's campaigns, newest first, and how many match in all."""
        criteria = [campaigns_table.c.tenant_id == tenant_id]
        if status is not None:
            criteria.append(campaigns_table.c.status == status.value)
        if campaign_type is not None:
            criteria.append(campaigns_table.c.campaign_type == campaign_type)
        if name_contains:
            escaped = name_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            criteria.append(campaigns_table.c.name.ilike(f"%{escaped}%", escape="\\"))
        where = and_(*criteria)
        page = (
            select(campaigns_table.c.id)
            .where(where)
            .order_by(campaigns_table.c.created_at.desc(), campaigns_table.c.id)
            .limit(limit)
            .offset(offset)
        )
        async with self._sessions() as session:
            total = (
                await session.execute(
                    select(func.count()).select_from(campaigns_table).where(where)
                )
            ).scalar_one()
            ids = list((await session.execute(page)).scalars())
        if not ids:
            return [], total
        records = {
            r.campaign.id: r for r in await self._load_records(campaigns_table.c.id.in_(ids))
        }
        return [records[campaign_id] for campaign_id in ids if campaign_id in records], total

    async def delete(
        self, tenant_id: str, campaign_id: str, *, expected_version: int | None = None
    ) -> bool:
        """False when there is no such campaign. ``expected_version``: delete only the
        campaign at that version, else raise CampaignChangedError."""
        where = campaign_at(campaign_id, expected_version, tenant_id=tenant_id)
        async with self._sessions.begin() as session:
            await _bump_catalog_revision(session)
            result = await session.execute(delete(campaigns_table).where(*where))
            raise_if_changed(result, campaign_id, expected_version)
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def _load_records(self, criterion: ColumnElement[bool]) -> list[CampaignRecord]:
        rows = await self._rows(criterion)
        return [
            CampaignRecord(
                campaign=campaign_from_row(row, creatives, default_seat=None),
                created_at=row["created_at"],
                updated_at=row["updated_at"],
                version=row["version"],
            )
            for row, creatives in rows
        ]

    async def _rows(self, criterion: ColumnElement[bool]) -> list[tuple[Row, list[Row]]]:
        # One statement, so a concurrent save can never pair a campaign with another
        # version's creatives.
        statement = (
            select(campaigns_table, tenants_table.c.seat.label(_TENANT_SEAT), *_CREATIVE_COLUMNS)
            .join(tenants_table, tenants_table.c.id == campaigns_table.c.tenant_id)
            .outerjoin(creatives_table, creatives_table.c.campaign_id == campaigns_table.c.id)
            .where(criterion)
            .order_by(campaigns_table.c.id, creatives_table.c.position)
        )
        async with self._sessions() as session:
            rows = (await session.execute(statement)).mappings().all()
        campaign_rows: dict[str, Row] = {}
        creatives: defaultdict[str, list[Row]] = defaultdict(list)
        for row in rows:
            campaign_rows.setdefault(row["id"], row)
            if row[_CREATIVE_PREFIX + "id"] is not None:
                creatives[row["id"]].append(
                    {c.name: row[_CREATIVE_PREFIX + c.name] for c in creatives_table.c}
                )
        return [(row, creatives[campaign_id]) for campaign_id, row in campaign_rows.items()]

    async def _load(self, criterion: ColumnElement[bool], *, resolve_seat: bool) -> list[Campaign]:
        return [
            campaign_from_row(
                row, creatives, default_seat=row[_TENANT_SEAT] if resolve_seat else None
            )
            for row, creatives in await self._rows(criterion)
        ]

    async def save(self, campaign: Campaign, *, expected_version: int | None = None) -> None:
        """Insert or replace the campaign and all its creatives, in one transaction.

        ``expected_version``: replace only the campaign at that version (the one the edit was
        made on), else raise CampaignChangedError. Every write moves the version, a status
        change too, so an edit read before the campaign was submitted cannot overwrite it."""
        now = _now()
        values = campaign_values(campaign)
        async with self._sessions.begin() as session:
            await _bump_catalog_revision(session)
            updated = await session.execute(
                update(campaigns_table)
                .where(*campaign_at(campaign.id, expected_version))
                .values(**values, updated_at=now, version=campaigns_table.c.version + 1)
            )
            raise_if_changed(updated, campaign.id, expected_version)
            if updated.rowcount == 0:  # type: ignore[attr-defined]
                await session.execute(
                    insert(campaigns_table).values(
                        **values, created_at=now, updated_at=now, version=1
                    )
                )
            await session.execute(
                delete(creatives_table).where(creatives_table.c.campaign_id == campaign.id)
            )
            creatives = creative_values(campaign)
            if creatives:
                await session.execute(insert(creatives_table), creatives)

    async def set_status(
        self, campaign_id: str, status: CampaignStatus, *, expected_version: int | None = None
    ) -> None:
        """``expected_version``: as for ``save``."""
        async with self._sessions.begin() as session:
            await _bump_catalog_revision(session)
            result = await session.execute(
                update(campaigns_table)
                .where(*campaign_at(campaign_id, expected_version))
                .values(
                    status=status.value,
                    updated_at=_now(),
                    version=campaigns_table.c.version + 1,
                )
            )
            raise_if_changed(result, campaign_id, expected_version)
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise CampaignNotFoundError(campaign_id)

    async def catalog_revision(self) -> int:
        """A number that changes whenever any process writes a campaign or a creative."""
        query = statements.select_catalog_revision()
        if self._inline_engine is not None:
            with self._inline_engine.connect() as connection:
                revision = connection.execute(query).scalar()
        else:
            async with self._sessions() as session:
                revision = (await session.execute(query)).scalar()
        if revision is None:
            raise statements.SchemaNotMigratedError("catalog_revision has no row")
        return revision


class ProfileRepository:
    """Customer profiles; implements ``domain.bidding.ports.ProfileSource``.

    With ``inline_engine`` (SQLite), ``load_profiles`` reads on the calling thread, on the
    driver's own cursor. Through aiosqlite's worker thread a read cost several GIL hand-offs,
    and with the event loop busy serving bids each hand-off waited out the 5 ms switch
    interval, so reads took tens of milliseconds and piled up. Through SQLAlchemy's Core on
    the calling thread it cost ~135 µs of CPU, most of it statement and result machinery
    around a primary-key lookup that SQLite answers in a few microseconds; every bid for a
    user not in L1 paid it.
    """

    def __init__(self, sessions: Sessions, *, inline_engine: Engine | None = None) -> None:
        self._sessions = sessions
        self._inline_engine = inline_engine

    async def load_profiles(
        self, user_id: str, tenant_ids: Collection[str]
    ) -> dict[str, UserProfile]:
        if not tenant_ids:
            return {}
        rows: Sequence[Row]
        if self._inline_engine is not None:
            rows = _read_profiles_inline(self._inline_engine, user_id, list(tenant_ids))
        else:
            query = select(user_profiles_table).where(
                user_profiles_table.c.user_id == user_id,
                user_profiles_table.c.tenant_id.in_(list(tenant_ids)),
            )
            async with self._sessions() as session:
                rows = (await session.execute(query)).mappings().all()
        return {row["tenant_id"]: profile_from_row(row) for row in rows}

    async def upsert_many(self, profiles: Sequence[UserProfile]) -> None:
        """Insert new profiles and overwrite existing ones, all in one transaction."""
        if not profiles:
            return
        now = _now()
        async with self._sessions.begin() as session:
            await session.execute(
                statements.upsert_profiles(_dialect(session)),
                [profile_values(profile, now) for profile in profiles],
            )


_PROFILE_COLUMNS = tuple(user_profiles_table.c.keys())
_PROFILE_JSON_COLUMNS = frozenset(
    name for name, column in user_profiles_table.c.items() if isinstance(column.type, JsonDocument)
)


def _read_profiles_inline(engine: Engine, user_id: str, tenant_ids: list[str]) -> list[Values]:
    """The rows ``load_profiles`` wants, with JSON columns decoded as SQLAlchemy would (the
    standard library's decoder: it reads NaN and big integers the way they were written).

    Driver errors come out as SQLAlchemy's, like every other read: the profile source's guard
    counts those as the database failing and the bid goes on without the profile.
    """
    marks = ",".join("?" * len(tenant_ids))
    sql = (
        # Column and table names come from our own table definition; values are bound.
        f"SELECT {', '.join(_PROFILE_COLUMNS)} FROM {user_profiles_table.name} "  # noqa: S608
        f"WHERE user_id = ? AND tenant_id IN ({marks})"
    )
    params = (user_id, *tenant_ids)
    connection = engine.raw_connection()
    try:
        with contextlib.closing(connection.cursor()) as cursor:
            found = cursor.execute(sql, params).fetchall()
    except sqlite3.Error as error:
        raise OperationalError(sql, params, error) from error
    finally:
        connection.close()  # back to the pool
    rows: list[Values] = []
    for values in found:
        row = dict(zip(_PROFILE_COLUMNS, values, strict=True))
        for name in _PROFILE_JSON_COLUMNS:
            if row[name] is not None:
                row[name] = json.loads(row[name])
        rows.append(row)
    return rows
