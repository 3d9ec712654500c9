"""Journeys (drafts, immutable versions, customers' entries), ingested customer events, and the
profile traits those events set.

Each method is one transaction. Where two writers could race on one customer (the trigger
evaluator on two workers, a schedule run beside it), the transaction first takes a lock for
that customer: a transaction-scoped advisory lock on PostgreSQL; on SQLite the database's write
lock, taken before anything is read (by BEGIN IMMEDIATE, see ``adapters.db.engine``; else by a
write statement up front, as pysqlite runs reads before a transaction's first write outside it,
and read-then-write would not be atomic).

Errors::

    LookupError
     └── JourneyNotFoundError        no such journey in this tenant
    ValueError
     └── JourneyStateError           the move is not allowed in the journey's status
    sqlalchemy.exc.SQLAlchemyError   the database refused or could not be reached
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, delete, false, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.db.convert import profile_from_row, profile_values
from adapters.db.engine import holds_write_lock
from adapters.db.repositories import Sessions, _dialect
from adapters.db.tables import (
    NAME_LENGTH,
    customer_events_table,
    journey_entries_table,
    journey_versions_table,
    journeys_table,
    user_profiles_table,
)
from domain.customer_events import CustomerEvent, EventSource, with_traits
from domain.entry import EntryDecision, PastEntry, Verdict, decide
from domain.journey_lifecycle import (
    JourneyMove,
    JourneyStatus,
    admits_entries,
    status_after,
)
from domain.journeys import JourneyDefinition
from domain.profiles import UserProfile

journeys = journeys_table
versions = journey_versions_table
entries = journey_entries_table
events = customer_events_table
profiles = user_profiles_table


class JourneyNotFoundError(LookupError):
    def __init__(self, journey_id: str) -> None:
        super().__init__(f"no journey {journey_id}")
        self.journey_id = journey_id


class JourneyStateError(ValueError):
    """The journey's status does not allow the move (publishing an archived journey...)."""

    def __init__(self, status: JourneyStatus, move: JourneyMove) -> None:
        super().__init__(f"a journey that is {status} cannot {move}")
        self.status = status
        self.move = move


def _insert(dialect_name: str, table: Any) -> postgresql.Insert | sqlite.Insert:
    return postgresql.insert(table) if dialect_name == "postgresql" else sqlite.insert(table)


def _lock_key(*parts: str) -> int:
    """A signed 64-bit advisory lock key for ``parts``."""
    digest = hashlib.sha256("|".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def _serialize(session: AsyncSession, *parts: str) -> None:
    """Make this transaction the only one working on ``parts`` until it ends."""
    if _dialect(session) == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(_lock_key(*parts))))
    elif not await holds_write_lock(session):
        # Matches no row, but takes SQLite's write lock for the rest of the transaction.
        await session.execute(
            update(journeys).where(false()).values(updated_at=journeys.c.updated_at)
        )


# --- journeys and their versions ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JourneyRecord:
    id: str
    tenant_id: str
    name: str
    status: JourneyStatus
    draft: dict[str, Any]
    published_version: int | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class JourneyVersionRecord:
    journey_id: str
    version: int
    definition: dict[str, Any]
    published_at: datetime
    published_by: str


@dataclass(frozen=True, slots=True)
class LiveJourney:
    """A published journey's current version, as triggers and runs need it."""

    tenant_id: str
    journey_id: str
    version: int
    definition: JourneyDefinition


@dataclass(frozen=True, slots=True)
class Published:
    journey: JourneyRecord
    version: int
    created: bool  # False: the draft was already the latest version, nothing new was made


def _journey(row: Any) -> JourneyRecord:
    return JourneyRecord(
        id=row["id"],
        tenant_id=row["tenant_id"],
        name=row["name"],
        status=JourneyStatus(row["status"]),
        draft=row["draft"],
        published_version=row["published_version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _version(row: Any) -> JourneyVersionRecord:
    return JourneyVersionRecord(
        journey_id=row["journey_id"],
        version=row["version"],
        definition=row["definition"],
        published_at=row["published_at"],
        published_by=row["published_by"],
    )


def _next_status(record: JourneyRecord, move: JourneyMove) -> JourneyStatus:
    try:
        return status_after(move, record.status)
    except ValueError:
        raise JourneyStateError(record.status, move) from None


def _mine(tenant_id: str, journey_id: str) -> Any:
    return and_(journeys.c.id == journey_id, journeys.c.tenant_id == tenant_id)


class JourneyRepository:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def create(
        self, tenant_id: str, journey_id: str, definition: JourneyDefinition, now: datetime
    ) -> JourneyRecord:
        values = {
            "id": journey_id,
            "tenant_id": tenant_id,
            "name": definition.name,
            "status": JourneyStatus.DRAFT.value,
            "draft": definition.model_dump(mode="json"),
            "published_version": None,
            "created_at": now,
            "updated_at": now,
        }
        async with self._sessions.begin() as session:
            await session.execute(journeys.insert().values(**values))
        return _journey(values)

    async def find(self, tenant_id: str, journey_id: str) -> JourneyRecord | None:
        async with self._sessions() as session:
            row = (
                (await session.execute(select(journeys).where(_mine(tenant_id, journey_id))))
                .mappings()
                .first()
            )
        return _journey(row) if row is not None else None

    async def search(
        self,
        tenant_id: str,
        *,
        status: JourneyStatus | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[JourneyRecord], int]:
        """One page of the tenant's journeys, newest first, and how many match in all."""
        criteria = [journeys.c.tenant_id == tenant_id]
        if status is not None:
            criteria.append(journeys.c.status == status.value)
        where = and_(*criteria)
        async with self._sessions() as session:
            total = (
                await session.execute(select(func.count()).select_from(journeys).where(where))
            ).scalar_one()
            rows = (
                (
                    await session.execute(
                        select(journeys)
                        .where(where)
                        .order_by(journeys.c.created_at.desc(), journeys.c.id)
                        .limit(limit)
                        .offset(offset)
                    )
                )
                .mappings()
                .all()
            )
        return [_journey(row) for row in rows], total

    async def replace_draft(
        self, tenant_id: str, journey_id: str, definition: JourneyDefinition, now: datetime
    ) -> JourneyRecord:
        async with self._sessions.begin() as session:
            current = await self._locked(session, tenant_id, journey_id)
            _next_status(current, JourneyMove.EDIT)
            await session.execute(
                update(journeys)
                .where(journeys.c.id == journey_id)
                .values(
                    name=definition.name, draft=definition.model_dump(mode="json"), updated_at=now
                )
            )
            return await self._reread(session, tenant_id, journey_id)

    async def move(
        self, tenant_id: str, journey_id: str, move: JourneyMove, now: datetime
    ) -> tuple[JourneyRecord, JourneyRecord]:
        """Pause, resume or archive: (before, after)."""
        async with self._sessions.begin() as session:
            before = await self._locked(session, tenant_id, journey_id)
            status = _next_status(before, move)
            await session.execute(
                update(journeys)
                .where(journeys.c.id == journey_id)
                .values(status=status.value, updated_at=now)
            )
            return before, await self._reread(session, tenant_id, journey_id)

    async def publish(
        self, tenant_id: str, journey_id: str, published_by: str, now: datetime
    ) -> Published:
        """The draft becomes the next version and the journey is published. A draft equal to
        the latest version makes no new one (a retried publish is harmless)."""
        async with self._sessions.begin() as session:
            current = await self._locked(session, tenant_id, journey_id)
            _next_status(current, JourneyMove.PUBLISH)
            latest = (
                (
                    await session.execute(
                        select(versions)
                        .where(versions.c.journey_id == journey_id)
                        .order_by(versions.c.version.desc())
                        .limit(1)
                    )
                )
                .mappings()
                .first()
            )
            created = latest is None or latest["definition"] != current.draft
            number = (latest["version"] if latest is not None else 0) + (1 if created else 0)
            if created:
                await session.execute(
                    versions.insert().values(
                        journey_id=journey_id,
                        version=number,
                        definition=current.draft,
                        published_at=now,
                        published_by=published_by,
                    )
                )
            await session.execute(
                update(journeys)
                .where(journeys.c.id == journey_id)
                .values(
                    status=JourneyStatus.PUBLISHED.value, published_version=number, updated_at=now
                )
            )
            record = await self._reread(session, tenant_id, journey_id)
        return Published(record, number, created)

    async def versions(
        self, tenant_id: str, journey_id: str, *, limit: int = 50, offset: int = 0
    ) -> tuple[list[JourneyVersionRecord], int] | None:
        """Newest first; None when the journey is not the tenant's."""
        async with self._sessions() as session:
            owned = (
                await session.execute(select(journeys.c.id).where(_mine(tenant_id, journey_id)))
            ).first()
            if owned is None:
                return None
            where = versions.c.journey_id == journey_id
            total = (
                await session.execute(select(func.count()).select_from(versions).where(where))
            ).scalar_one()
            rows = (
                (
                    await session.execute(
                        select(versions)
                        .where(where)
                        .order_by(versions.c.version.desc())
                        .limit(limit)
                        .offset(offset)
                    )
                )
                .mappings()
                .all()
            )
        return [_version(row) for row in rows], total

    async def version(
        self, tenant_id: str, journey_id: str, number: int
    ) -> JourneyVersionRecord | None:
        statement = (
            select(versions)
            .join(journeys, journeys.c.id == versions.c.journey_id)
            .where(
                _mine(tenant_id, journey_id),
                versions.c.version == number,
            )
        )
        async with self._sessions() as session:
            row = (await session.execute(statement)).mappings().first()
        return _version(row) if row is not None else None

    async def live(self, tenant_id: str, journey_id: str | None = None) -> list[LiveJourney]:
        """The tenant's published (not paused) journeys, at their current version."""
        statement = (
            select(journeys.c.id, versions.c.version, versions.c.definition)
            .join(
                versions,
                and_(
                    versions.c.journey_id == journeys.c.id,
                    versions.c.version == journeys.c.published_version,
                ),
            )
            .where(
                journeys.c.tenant_id == tenant_id,
                journeys.c.status == JourneyStatus.PUBLISHED.value,
            )
            .order_by(journeys.c.created_at, journeys.c.id)
        )
        if journey_id is not None:
            statement = statement.where(journeys.c.id == journey_id)
        async with self._sessions() as session:
            rows = (await session.execute(statement)).mappings().all()
        return [
            LiveJourney(
                tenant_id,
                row["id"],
                row["version"],
                JourneyDefinition.model_validate(row["definition"]),
            )
            for row in rows
        ]

    async def live_one(self, tenant_id: str, journey_id: str) -> LiveJourney | None:
        found = await self.live(tenant_id, journey_id)
        return found[0] if found else None

    async def _locked(
        self, session: AsyncSession, tenant_id: str, journey_id: str
    ) -> JourneyRecord:
        await _serialize(session, "journey", journey_id)
        row = (
            (await session.execute(select(journeys).where(_mine(tenant_id, journey_id))))
            .mappings()
            .first()
        )
        if row is None:
            raise JourneyNotFoundError(journey_id)
        return _journey(row)

    async def _reread(
        self, session: AsyncSession, tenant_id: str, journey_id: str
    ) -> JourneyRecord:
        row = (
            (await session.execute(select(journeys).where(_mine(tenant_id, journey_id))))
            .mappings()
            .one()
        )
        return _journey(row)


# --- entries ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenEntry:
    entry_id: str
    journey_id: str
    version: int
    trigger_event_id: str | None
    entered_at: datetime


@dataclass(frozen=True, slots=True)
class Admission:
    """What ``EntryRepository.admit`` decided. ``fresh``: the entry row was written just now
    (False for an entry this same cause made before: a redelivery or a retry)."""

    decision: EntryDecision
    entry_id: str
    fresh: bool = False
    journey: LiveJourney | None = None

    @property
    def entered(self) -> bool:
        return self.decision.verdict is Verdict.ENTER


class EntryRepository:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def admit(
        self,
        tenant_id: str,
        journey_id: str,
        customer_id: str,
        *,
        entry_id: str,
        trigger_event_id: str | None,
        at: datetime,
    ) -> Admission:
        """Apply the journey's entry rules for this customer at ``at`` and, if they admit
        them, write the entry (numbered, on the journey's current version)."""
        async with self._sessions.begin() as session:
            await _serialize(session, "entry", journey_id, customer_id)
            journey = (
                (
                    await session.execute(
                        select(
                            journeys.c.status, journeys.c.published_version, versions.c.definition
                        )
                        .join(
                            versions,
                            and_(
                                versions.c.journey_id == journeys.c.id,
                                versions.c.version == journeys.c.published_version,
                            ),
                        )
                        .where(_mine(tenant_id, journey_id))
                    )
                )
                .mappings()
                .first()
            )
            if journey is None:
                return Admission(EntryDecision(Verdict.REFUSED, reason="not published"), entry_id)
            live = LiveJourney(
                tenant_id,
                journey_id,
                journey["published_version"],
                JourneyDefinition.model_validate(journey["definition"]),
            )
            earlier = (
                (await session.execute(select(entries).where(entries.c.id == entry_id)))
                .mappings()
                .first()
            )
            if earlier is not None:
                # This cause entered the customer already; the caller finishes what it began.
                decision = EntryDecision(Verdict.ENTER, entry_number=earlier["entry_number"])
                live = LiveJourney(tenant_id, journey_id, earlier["version"], live.definition)
                if earlier["version"] != journey["published_version"]:
                    live = await self._at_version(session, live, earlier["version"])
                return Admission(decision, entry_id, fresh=False, journey=live)
            status = JourneyStatus(journey["status"])
            if not admits_entries(status):
                return Admission(
                    EntryDecision(Verdict.REFUSED, reason=f"the journey is {status}"), entry_id
                )
            past = (
                (
                    await session.execute(
                        select(
                            entries.c.entry_number, entries.c.entered_at, entries.c.exited_at
                        ).where(
                            entries.c.journey_id == journey_id,
                            entries.c.customer_id == customer_id,
                        )
                    )
                )
                .mappings()
                .all()
            )
            decision = decide(
                live.definition.entry,
                [
                    PastEntry(row["entry_number"], row["entered_at"], row["exited_at"])
                    for row in past
                ],
                at,
            )
            if decision.verdict is not Verdict.ENTER:
                return Admission(decision, entry_id, journey=live)
            await session.execute(
                entries.insert().values(
                    id=entry_id,
                    tenant_id=tenant_id,
                    journey_id=journey_id,
                    customer_id=customer_id,
                    version=live.version,
                    entry_number=decision.entry_number,
                    trigger_event_id=trigger_event_id,
                    entered_at=at,
                )
            )
        return Admission(decision, entry_id, fresh=True, journey=live)

    @staticmethod
    async def _at_version(session: AsyncSession, live: LiveJourney, number: int) -> LiveJourney:
        stored = (
            await session.execute(
                select(versions.c.definition).where(
                    versions.c.journey_id == live.journey_id, versions.c.version == number
                )
            )
        ).scalar_one()
        return LiveJourney(
            live.tenant_id, live.journey_id, number, JourneyDefinition.model_validate(stored)
        )

    async def open_for(self, tenant_id: str, customer_id: str) -> list[OpenEntry]:
        """The journeys the customer is inside now."""
        statement = select(
            entries.c.id,
            entries.c.journey_id,
            entries.c.version,
            entries.c.trigger_event_id,
            entries.c.entered_at,
        ).where(
            entries.c.tenant_id == tenant_id,
            entries.c.customer_id == customer_id,
            entries.c.exited_at.is_(None),
        )
        async with self._sessions() as session:
            rows = (await session.execute(statement)).mappings().all()
        return [
            OpenEntry(
                row["id"],
                row["journey_id"],
                row["version"],
                row["trigger_event_id"],
                row["entered_at"],
            )
            for row in rows
        ]

    async def close(self, entry_id: str, reason: str, at: datetime) -> bool:
        """Mark the entry exited; False when it was already (or never) open."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(entries)
                .where(entries.c.id == entry_id, entries.c.exited_at.is_(None))
                .values(exited_at=at, exit_reason=reason[:NAME_LENGTH])
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def discard(self, entry_id: str) -> None:
        """Remove an entry whose run never started (the customer was still inside)."""
        async with self._sessions.begin() as session:
            await session.execute(delete(entries).where(entries.c.id == entry_id))

    async def history(self, journey_id: str, customer_id: str) -> list[PastEntry]:
        statement = (
            select(entries.c.entry_number, entries.c.entered_at, entries.c.exited_at)
            .where(entries.c.journey_id == journey_id, entries.c.customer_id == customer_id)
            .order_by(entries.c.entry_number)
        )
        async with self._sessions() as session:
            rows = (await session.execute(statement)).mappings().all()
        return [PastEntry(row["entry_number"], row["entered_at"], row["exited_at"]) for row in rows]


# --- customer events ----------------------------------------------------------------------------


class Stored(StrEnum):
    NEW = "new"  # first time seen
    PENDING = "pending"  # seen before, not processed yet (a redelivery, or the embedded queue)
    PROCESSED = "processed"  # seen and processed: a duplicate


def _event_values(event: CustomerEvent) -> dict[str, Any]:
    return {
        "tenant_id": event.tenant_id,
        "event_id": event.event_id,
        "customer_id": event.customer_id,
        "name": event.name,
        "source": event.source.value,
        "priority": event.priority,
        "occurred_at": event.occurred_at,
        "received_at": event.received_at,
        "properties": event.properties,
        "traits": event.traits,
        "processed_at": None,
    }


def _event(row: Any) -> CustomerEvent:
    return CustomerEvent(
        tenant_id=row["tenant_id"],
        event_id=row["event_id"],
        customer_id=row["customer_id"],
        name=row["name"],
        source=EventSource(row["source"]),
        occurred_at=row["occurred_at"],
        received_at=row["received_at"],
        properties=row["properties"],
        traits=row["traits"] or {},
        priority=row["priority"],
    )


class CustomerEventRepository:
    """Events once per (tenant, event id); ``processed_at`` marks what the evaluator is done
    with."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def store(self, event: CustomerEvent) -> Stored:
        async with self._sessions.begin() as session:
            inserted = await session.execute(
                _insert(_dialect(session), events)
                .values(**_event_values(event))
                .on_conflict_do_nothing(index_elements=[events.c.tenant_id, events.c.event_id])
                .returning(events.c.event_id)
            )
            if inserted.first() is not None:
                return Stored.NEW
            processed = (
                await session.execute(
                    select(events.c.processed_at).where(
                        events.c.tenant_id == event.tenant_id, events.c.event_id == event.event_id
                    )
                )
            ).scalar()
        return Stored.PROCESSED if processed is not None else Stored.PENDING

    async def store_new(self, batch: Sequence[CustomerEvent]) -> set[str]:
        """Insert the events not stored yet, in one transaction; their dedup keys."""
        if not batch:
            return set()
        async with self._sessions.begin() as session:
            statement = (
                _insert(_dialect(session), events)
                .on_conflict_do_nothing(index_elements=[events.c.tenant_id, events.c.event_id])
                .returning(events.c.tenant_id, events.c.event_id)
            )
            rows = await session.execute(statement, [_event_values(event) for event in batch])
            return {f"{tenant}:{event_id}" for tenant, event_id in rows.all()}

    async def mark_processed(self, tenant_id: str, event_id: str, at: datetime) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(events)
                .where(events.c.tenant_id == tenant_id, events.c.event_id == event_id)
                .values(processed_at=at)
            )

    async def pending(
        self, limit: int, *, skip: Collection[tuple[str, str]] = ()
    ) -> list[CustomerEvent]:
        """Unprocessed events, most urgent first, then oldest first; ``skip``: (tenant, event
        id) pairs the caller is holding back."""
        statement = (
            select(events)
            .where(events.c.processed_at.is_(None))
            .order_by(events.c.priority.desc(), events.c.received_at, events.c.event_id)
            .limit(limit + len(skip))
        )
        async with self._sessions() as session:
            rows = (await session.execute(statement)).mappings().all()
        held = set(skip)
        found = [_event(row) for row in rows if (row["tenant_id"], row["event_id"]) not in held]
        return found[:limit]

    async def get(self, tenant_id: str, event_id: str) -> CustomerEvent | None:
        async with self._sessions() as session:
            row = (
                (
                    await session.execute(
                        select(events).where(
                            events.c.tenant_id == tenant_id, events.c.event_id == event_id
                        )
                    )
                )
                .mappings()
                .first()
            )
        return _event(row) if row is not None else None

    async def properties(self, tenant_id: str, event_id: str) -> dict[str, Any] | None:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(events.c.properties).where(
                        events.c.tenant_id == tenant_id, events.c.event_id == event_id
                    )
                )
            ).first()
        return dict(row[0] or {}) if row is not None else None


# --- profiles as events change them ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TraitChange:
    before: UserProfile | None  # None: the profile was created by this change
    after: UserProfile


class CustomerProfiles:
    """Profiles as ingested events and journeys read and change them.

    The bid path reads the same rows through ``ProfileRepository`` and its caches, so a trait
    or segment change reaches bids once those caches expire.
    """

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def get(self, tenant_id: str, customer_id: str) -> UserProfile | None:
        async with self._sessions() as session:
            row = (
                (
                    await session.execute(
                        select(profiles).where(
                            profiles.c.tenant_id == tenant_id, profiles.c.user_id == customer_id
                        )
                    )
                )
                .mappings()
                .first()
            )
        return profile_from_row(row) if row is not None else None

    async def apply_traits(
        self, tenant_id: str, customer_id: str, traits: dict[str, Any], now: datetime
    ) -> TraitChange:
        """Set ``traits`` (see ``domain.customer_events.with_traits``), creating the profile if
        the customer is new; returns the profile before and after."""
        async with self._sessions.begin() as session:
            await _serialize(session, "profile", tenant_id, customer_id)
            row = (
                (
                    await session.execute(
                        select(profiles).where(
                            profiles.c.tenant_id == tenant_id, profiles.c.user_id == customer_id
                        )
                    )
                )
                .mappings()
                .first()
            )
            before = profile_from_row(row) if row is not None else None
            base = before or UserProfile(tenant_id=tenant_id, user_id=customer_id)
            after = with_traits(base, traits)
            if before is None or after != before:
                values = profile_values(after, now)
                await session.execute(
                    _insert(_dialect(session), profiles)
                    .values(**values)
                    .on_conflict_do_update(
                        index_elements=[profiles.c.tenant_id, profiles.c.user_id],
                        set_={
                            key: value
                            for key, value in values.items()
                            if key not in ("tenant_id", "user_id")
                        },
                    )
                )
        return TraitChange(before, after)

    async def customers(
        self, tenant_id: str, *, segment: str | None, after: str | None, limit: int
    ) -> tuple[list[UserProfile], str | None]:
        """One page of the tenant's customers (in ``segment``, if given) in id order, and the
        cursor for the next page (None on the last)."""
        found: list[UserProfile] = []
        cursor = after
        # Segment membership is a JSON list; it is filtered here rather than in SQL, so the
        # same code serves SQLite and PostgreSQL. Scanning stops once a page is full.
        while len(found) < limit:
            statement = (
                select(profiles)
                .where(profiles.c.tenant_id == tenant_id)
                .order_by(profiles.c.user_id)
                .limit(limit)
            )
            if cursor is not None:
                statement = statement.where(profiles.c.user_id > cursor)
            async with self._sessions() as session:
                rows = (await session.execute(statement)).mappings().all()
            if not rows:
                return found, None
            for row in rows:
                cursor = row["user_id"]
                profile = profile_from_row(row)
                if segment is None or segment in profile.segments:
                    found.append(profile)
                    if len(found) == limit:
                        break
            if len(rows) < limit and len(found) < limit:
                return found, None
        return found, cursor


class CustomerRecords:
    """``domain.journey_runs.CustomerData`` over the database: what journey activities read
    and write about a customer."""

    def __init__(self, sessions: Sessions) -> None:
        self._profiles = CustomerProfiles(sessions)
        self._events = CustomerEventRepository(sessions)
        self._entries = EntryRepository(sessions)

    async def profile(self, tenant_id: str, customer_id: str) -> UserProfile | None:
        return await self._profiles.get(tenant_id, customer_id)

    async def event_properties(self, tenant_id: str, event_id: str) -> dict[str, Any] | None:
        return await self._events.properties(tenant_id, event_id)

    async def set_traits(self, tenant_id: str, customer_id: str, traits: dict[str, Any]) -> None:
        await self._profiles.apply_traits(tenant_id, customer_id, traits, datetime.now(UTC))

    async def close_entry(self, entry_id: str, reason: str, at: datetime) -> None:
        await self._entries.close(entry_id, reason, at)
