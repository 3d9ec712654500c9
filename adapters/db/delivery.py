"""Message sends, suppressions and tenants' delivery policies: what every send is checked
against and recorded in.

``begin_send`` inserts the send under its idempotency key before anything leaves; a retried
activity finds the record and does not send again. Webhooks from the vendors move the record
forward (delivered, opened...) through ``adapters.db.webhooks.WebhookRepository.report``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.db import statements
from adapters.db.repositories import Sessions, _dialect
from adapters.db.tables import (
    CODE_LENGTH,
    message_sends_table,
    suppressions_table,
    tenant_channel_settings_table,
)
from domain.delivery import DeliveryPolicy, SendRecord, Sent, local_day
from domain.journeys import Channel

sends = message_sends_table


class DeliveryRepository:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    # --- policy -------------------------------------------------------------------------------

    async def policy(self, tenant_id: str) -> DeliveryPolicy:
        async with self._sessions() as session:
            stored = (
                await session.execute(
                    select(tenant_channel_settings_table.c.delivery).where(
                        tenant_channel_settings_table.c.tenant_id == tenant_id
                    )
                )
            ).scalar()
        return DeliveryPolicy.model_validate(stored or {})

    async def save_policy(self, tenant_id: str, policy: DeliveryPolicy) -> None:
        async with self._sessions.begin() as session:
            existing = (
                await session.execute(
                    select(tenant_channel_settings_table.c.vendors).where(
                        tenant_channel_settings_table.c.tenant_id == tenant_id
                    )
                )
            ).scalar()
            await session.execute(
                statements.upsert(
                    _dialect(session),
                    tenant_channel_settings_table,
                    ["tenant_id"],
                    {
                        "tenant_id": tenant_id,
                        "delivery": policy.model_dump(mode="json"),
                        "vendors": existing or {},
                        "updated_at": datetime.now(UTC),
                    },
                )
            )

    async def vendor_overrides(self, tenant_id: str) -> dict[str, Any]:
        async with self._sessions() as session:
            stored: dict[str, Any] | None = (
                await session.execute(
                    select(tenant_channel_settings_table.c.vendors).where(
                        tenant_channel_settings_table.c.tenant_id == tenant_id
                    )
                )
            ).scalar()
        return stored or {}

    # --- suppressions -------------------------------------------------------------------------

    async def suppressed(
        self, tenant_id: str, channel: Channel, address: str, now: datetime
    ) -> bool:
        async with self._sessions() as session:
            found = (
                await session.execute(
                    select(suppressions_table.c.reason).where(
                        suppressions_table.c.tenant_id == tenant_id,
                        suppressions_table.c.channel == channel.value,
                        suppressions_table.c.address == normalise(address),
                        or_(
                            suppressions_table.c.expires_at.is_(None),
                            suppressions_table.c.expires_at > now,
                        ),
                    )
                )
            ).first()
        return found is not None

    async def suppress(
        self,
        tenant_id: str,
        channel: Channel,
        address: str,
        reason: str,
        expires_at: datetime | None = None,
    ) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                statements.upsert(
                    _dialect(session),
                    suppressions_table,
                    ["tenant_id", "channel", "address"],
                    {
                        "tenant_id": tenant_id,
                        "channel": channel.value,
                        "address": normalise(address),
                        # Callers say why in words (a vendor's refusal, a keyword); the
                        # column keeps a code-sized summary of it.
                        "reason": reason[:CODE_LENGTH],
                        "created_at": datetime.now(UTC),
                        "expires_at": expires_at,
                    },
                )
            )

    async def lift(self, tenant_id: str, channel: Channel, address: str) -> bool:
        async with self._sessions.begin() as session:
            result = await session.execute(
                suppressions_table.delete().where(
                    suppressions_table.c.tenant_id == tenant_id,
                    suppressions_table.c.channel == channel.value,
                    suppressions_table.c.address == normalise(address),
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    # --- sends --------------------------------------------------------------------------------

    async def recent_sends(self, tenant_id: str, customer_id: str, since: datetime) -> list[Sent]:
        """Messages that left for the customer since ``since`` (transactional ones excepted:
        they never count against caps or fatigue)."""
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(sends.c.channel, sends.c.sent_at).where(
                        sends.c.tenant_id == tenant_id,
                        sends.c.customer_id == customer_id,
                        sends.c.status.in_(("sent", "delivered", "opened", "clicked")),
                        sends.c.transactional.is_(False),
                        sends.c.sent_at >= since,
                    )
                )
            ).all()
        return [Sent(channel=Channel(channel), at=at) for channel, at in rows]

    async def opens(self, tenant_id: str, customer_id: str, since: datetime) -> list[datetime]:
        async with self._sessions() as session:
            return list(
                (
                    await session.execute(
                        select(sends.c.opened_at).where(
                            sends.c.tenant_id == tenant_id,
                            sends.c.customer_id == customer_id,
                            sends.c.opened_at.is_not(None),
                            sends.c.opened_at >= since,
                        )
                    )
                ).scalars()
            )

    async def send_record(self, key: str) -> SendRecord | None:
        async with self._sessions() as session:
            return await self._send_record(session, key)

    @staticmethod
    async def _send_record(session: AsyncSession, key: str) -> SendRecord | None:
        row = (
            await session.execute(
                select(sends.c.status, sends.c.vendor, sends.c.vendor_message_id).where(
                    sends.c.idempotency_key == key
                )
            )
        ).first()
        if row is None:
            return None
        return SendRecord(key=key, status=row[0], vendor=row[1], vendor_message_id=row[2])

    async def begin_send(self, key: str, details: dict[str, Any]) -> SendRecord:
        now: datetime = details["now"]
        timezone = details.get("timezone", "UTC")
        async with self._sessions.begin() as session:
            await session.execute(
                statements.insert_ignoring_duplicates(
                    _dialect(session),
                    sends,
                    ["idempotency_key"],
                    {
                        "idempotency_key": key,
                        "tenant_id": details["tenant_id"],
                        "customer_id": details["customer_id"],
                        "channel": details["channel"],
                        "journey_id": details.get("journey_id"),
                        "node_id": details.get("node_id"),
                        "workflow_id": details.get("workflow_id"),
                        "vendor": "",
                        "vendor_message_id": None,
                        "status": "sending",
                        "transactional": bool(details.get("transactional")),
                        "local_day": local_day(now, timezone).isoformat(),
                        "sent_at": now,
                        "opened_at": None,
                    },
                )
            )
            # Read in the same transaction: the row is there, whoever wrote it.
            record = await self._send_record(session, key)
        assert record is not None
        return record

    async def finish_send(
        self, key: str, status: str, vendor: str, vendor_message_id: str | None
    ) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(sends)
                .where(sends.c.idempotency_key == key)
                .values(status=status, vendor=vendor, vendor_message_id=vendor_message_id)
            )


def normalise(address: str) -> str:
    """One spelling per address: emails are case-insensitive in practice, phones have no spaces."""
    cleaned = address.strip()
    return cleaned.lower() if "@" in cleaned else cleaned.replace(" ", "")
