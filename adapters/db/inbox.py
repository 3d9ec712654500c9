"""The customers' in-app inboxes: messages stored once per send key, listed newest first.

Pages are cut by a cursor, the ``(created_at, id)`` of the last message of the page before:
messages stored while the app pages through never shift a page or repeat one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update

from adapters.db import statements
from adapters.db.repositories import Sessions, _dialect
from adapters.db.tables import inbox_messages_table
from domain.inbox import InboxMessage

inbox = inbox_messages_table

Cursor = tuple[datetime, str]
# Module-level names: inside the repository, ``list`` is its own method.
Messages = list[InboxMessage]
Conditions = list[ColumnElement[bool]]


def _message(row: Any) -> InboxMessage:
    return InboxMessage.model_validate(dict(row))


class InboxRepository:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def store(self, message: InboxMessage) -> str:
        """Store ``message`` unless its tenant already has one under its send key; the id of
        the message stored under that key, this one's or the earlier one's."""
        async with self._sessions.begin() as session:
            inserted = (
                await session.execute(
                    statements.insert_ignoring_duplicates(
                        _dialect(session),
                        inbox,
                        ["tenant_id", "send_key"],
                        message.model_dump(),
                    )
                )
            ).first()
            if inserted is not None:
                return message.id
            stored: str = (
                await session.execute(
                    select(inbox.c.id).where(
                        inbox.c.tenant_id == message.tenant_id,
                        inbox.c.send_key == message.send_key,
                    )
                )
            ).scalar_one()
        return stored

    async def by_key(self, tenant_id: str, send_key: str) -> InboxMessage | None:
        return await self._one(inbox.c.tenant_id == tenant_id, inbox.c.send_key == send_key)

    async def get(self, tenant_id: str, customer_id: str, message_id: str) -> InboxMessage | None:
        return await self._one(
            inbox.c.tenant_id == tenant_id,
            inbox.c.customer_id == customer_id,
            inbox.c.id == message_id,
        )

    async def list(
        self,
        tenant_id: str,
        customer_id: str,
        *,
        now: datetime,
        unread_only: bool = False,
        limit: int = 50,
        before: Cursor | None = None,
    ) -> Messages:
        """Newest first, neither expired nor dismissed; only those older than ``before``."""
        where = self._listed(tenant_id, customer_id, now, unread_only)
        if before is not None:
            created_at, message_id = before
            where.append(
                or_(
                    inbox.c.created_at < created_at,
                    and_(inbox.c.created_at == created_at, inbox.c.id < message_id),
                )
            )
        async with self._sessions() as session:
            rows = (
                (
                    await session.execute(
                        select(inbox)
                        .where(*where)
                        .order_by(inbox.c.created_at.desc(), inbox.c.id.desc())
                        .limit(limit)
                    )
                )
                .mappings()
                .all()
            )
        return [_message(row) for row in rows]

    async def unread(self, tenant_id: str, customer_id: str, now: datetime) -> int:
        """How many listed messages the customer has not read."""
        async with self._sessions() as session:
            count = (
                await session.execute(
                    select(func.count())
                    .select_from(inbox)
                    .where(*self._listed(tenant_id, customer_id, now, unread_only=True))
                )
            ).scalar_one()
        return int(count)

    async def mark_read(
        self, tenant_id: str, customer_id: str, message_id: str, at: datetime
    ) -> bool:
        """Record the first read; whether this was it."""
        return await self._stamp(tenant_id, customer_id, message_id, inbox.c.read_at, at)

    async def dismiss(
        self, tenant_id: str, customer_id: str, message_id: str, at: datetime
    ) -> bool:
        """Hide the message from the inbox; whether this call hid it."""
        return await self._stamp(tenant_id, customer_id, message_id, inbox.c.dismissed_at, at)

    async def _stamp(
        self,
        tenant_id: str,
        customer_id: str,
        message_id: str,
        column: ColumnElement[Any],
        at: datetime,
    ) -> bool:
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(inbox)
                .where(
                    inbox.c.tenant_id == tenant_id,
                    inbox.c.customer_id == customer_id,
                    inbox.c.id == message_id,
                    column.is_(None),
                )
                .values({column.key: at})
            )
        changed: int = result.rowcount  # type: ignore[attr-defined]  # a CursorResult
        return changed == 1

    async def _one(self, *where: ColumnElement[bool]) -> InboxMessage | None:
        async with self._sessions() as session:
            row = (await session.execute(select(inbox).where(*where).limit(1))).mappings().first()
        return None if row is None else _message(row)

    @staticmethod
    def _listed(tenant_id: str, customer_id: str, now: datetime, unread_only: bool) -> Conditions:
        where: Conditions = [
            inbox.c.tenant_id == tenant_id,
            inbox.c.customer_id == customer_id,
            inbox.c.dismissed_at.is_(None),
            or_(inbox.c.expires_at.is_(None), inbox.c.expires_at > now),
        ]
        if unread_only:
            where.append(inbox.c.read_at.is_(None))
        return where
