"""Suppressions on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.db import Database, TenantRepository
from adapters.db.delivery import DeliveryRepository
from domain.journeys import Channel


async def test_a_vendors_long_refusal_still_suppresses_the_address(database: Database) -> None:
    # What the send activity records for a number Twilio cannot take: longer than the column,
    # which PostgreSQL enforces and SQLite does not.
    tenant = await TenantRepository(database.async_session).ensure("shop")
    delivery = DeliveryRepository(database.async_session)
    reason = "rejected: not an international (E.164) phone number"

    await delivery.suppress(tenant.id, Channel.SMS, "+1 555 0100", reason)

    now = datetime.now(UTC)
    assert await delivery.suppressed(tenant.id, Channel.SMS, "+1 555 0100", now)
