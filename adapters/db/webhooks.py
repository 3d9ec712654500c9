"""What inbound vendor webhooks read and write: the sends they report on, the deliveries
already applied, and the tenants' own vendor accounts they may be signed with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from adapters.db import statements
from adapters.db.repositories import Sessions, _dialect
from adapters.db.tables import (
    message_sends_table,
    tenant_channel_settings_table,
    tenants_table,
    webhook_deliveries_table,
)
from domain.engagement import advances
from domain.journeys import Channel

sends = message_sends_table
deliveries = webhook_deliveries_table


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A send a vendor reports on: whose it was and which journey step sent it."""

    key: str
    tenant_id: str
    customer_id: str
    channel: Channel
    status: str
    journey_id: str | None
    node_id: str | None


class WebhookRepository:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    # --- deliveries: each vendor event applied once --------------------------------------------

    async def applied(self, vendor: str, event_id: str) -> bool:
        async with self._sessions() as session:
            found = (
                await session.execute(
                    select(deliveries.c.event_id).where(
                        deliveries.c.vendor == vendor, deliveries.c.event_id == event_id
                    )
                )
            ).first()
        return found is not None

    async def mark_applied(self, vendor: str, event_id: str, at: datetime) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                statements.insert_ignoring_duplicates(
                    _dialect(session),
                    deliveries,
                    ["vendor", "event_id"],
                    {"vendor": vendor, "event_id": event_id, "received_at": at},
                )
            )

    # --- the sends reported on -----------------------------------------------------------------

    async def send(self, key: str) -> SentMessage | None:
        return await self._one(sends.c.idempotency_key == key)

    async def send_by_vendor_id(self, vendor: str, vendor_message_id: str) -> SentMessage | None:
        return await self._one(
            sends.c.vendor == vendor, sends.c.vendor_message_id == vendor_message_id
        )

    async def _one(self, *where: Any) -> SentMessage | None:
        async with self._sessions() as session:
            row = (await session.execute(select(sends).where(*where).limit(1))).mappings().first()
        if row is None:
            return None
        return SentMessage(
            key=row["idempotency_key"],
            tenant_id=row["tenant_id"],
            customer_id=row["customer_id"],
            channel=Channel(row["channel"]),
            status=row["status"],
            journey_id=row["journey_id"],
            node_id=row["node_id"],
        )

    async def report(self, key: str, status: str, at: datetime) -> bool:
        """Move the send to ``status`` if that is progress (reports arrive out of order);
        whether it moved."""
        async with self._sessions.begin() as session:
            row = (
                await session.execute(
                    select(sends.c.status, sends.c.opened_at)
                    .where(sends.c.idempotency_key == key)
                    .with_for_update()
                )
            ).first()
            if row is None or not advances(row[0], status):
                return False
            values: dict[str, Any] = {"status": status}
            if status in ("opened", "clicked") and row[1] is None:
                values["opened_at"] = at  # send-time optimisation learns from it
            await session.execute(
                update(sends).where(sends.c.idempotency_key == key).values(**values)
            )
        return True

    # --- tenants' own vendor accounts ----------------------------------------------------------

    async def tenant_accounts(self, vendor: str) -> dict[str, dict[str, Any]]:
        """Each tenant with an account of its own at ``vendor``: its settings for it."""
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(
                        tenant_channel_settings_table.c.tenant_id,
                        tenant_channel_settings_table.c.vendors,
                    )
                )
            ).all()
        accounts: dict[str, dict[str, Any]] = {}
        for tenant_id, vendors in rows:
            account = (vendors or {}).get(vendor)
            if isinstance(account, dict) and account:
                accounts[tenant_id] = account
        return accounts

    async def tenant_exists(self, tenant_id: str) -> bool:
        async with self._sessions() as session:
            found = (
                await session.execute(
                    select(tenants_table.c.id).where(tenants_table.c.id == tenant_id)
                )
            ).first()
        return found is not None

    async def tenants_on_platform_account(self, vendor: str) -> list[str]:
        """Tenants that send through the platform's account at ``vendor``."""
        own = await self.tenant_accounts(vendor)
        async with self._sessions() as session:
            ids = (await session.execute(select(tenants_table.c.id))).scalars().all()
        return [tenant_id for tenant_id in ids if tenant_id not in own]
