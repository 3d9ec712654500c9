"""The in-app inbox on SQLite and PostgreSQL: one message per send key, newest first, pages
that hold still, and reads and dismissals recorded once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from adapters.db import Database, TenantRepository
from adapters.db.inbox import InboxRepository
from domain.inbox import InboxMessage

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def message(
    tenant_id: str,
    key: str,
    *,
    at: datetime = T0,
    customer_id: str = "ada",
    expires_at: datetime | None = None,
) -> InboxMessage:
    return InboxMessage(
        tenant_id=tenant_id,
        id=str(uuid.uuid4()),
        customer_id=customer_id,
        send_key=key,
        title=f"Title {key}",
        body=f"Body {key} ✓",
        data={"journey_id": "j-1", "deep_link": "app://offers/42"},
        created_at=at,
        expires_at=expires_at,
    )


async def inbox_of(database: Database) -> tuple[InboxRepository, str]:
    tenant = await TenantRepository(database.async_session).ensure("shop")
    return InboxRepository(database.async_session), tenant.id


async def test_a_send_key_stores_one_message_however_often_it_is_stored(
    database: Database,
) -> None:
    inbox, tenant = await inbox_of(database)
    first = message(tenant, "activation:1")
    again = message(tenant, "activation:1")

    stored = await inbox.store(first)
    stored_again = await inbox.store(again)

    assert stored == stored_again == first.id
    assert await inbox.by_key(tenant, "activation:1") == first
    assert [m.id for m in await inbox.list(tenant, "ada", now=T0)] == [first.id]


async def test_send_keys_are_unique_per_tenant_not_across_tenants(database: Database) -> None:
    inbox, tenant = await inbox_of(database)
    other = (await TenantRepository(database.async_session).ensure("other")).id

    ours = await inbox.store(message(tenant, "same-key"))
    theirs = await inbox.store(message(other, "same-key"))

    assert ours != theirs
    assert [m.id for m in await inbox.list(other, "ada", now=T0)] == [theirs]
    assert await inbox.get(other, "ada", ours) is None


async def test_listing_is_newest_first_in_pages_that_hold_still(database: Database) -> None:
    inbox, tenant = await inbox_of(database)
    stored = [
        await inbox.store(message(tenant, f"k{n}", at=T0 + timedelta(minutes=n))) for n in range(5)
    ]
    same_moment = [await inbox.store(message(tenant, f"tie{n}", at=T0)) for n in range(2)]
    newest_first = [*reversed(stored[1:]), *sorted([stored[0], *same_moment], reverse=True)]

    seen: list[str] = []
    before = None
    while True:
        page = await inbox.list(tenant, "ada", now=T0, limit=2, before=before)
        if not page:
            break
        seen += [m.id for m in page]
        before = (page[-1].created_at, page[-1].id)
        # A message stored meanwhile is newer than every page: it shifts none of them.
        await inbox.store(message(tenant, f"late{len(seen)}", at=T0 + timedelta(hours=1)))

    assert seen == newest_first


async def test_listing_leaves_out_expired_dismissed_and_other_customers(
    database: Database,
) -> None:
    inbox, tenant = await inbox_of(database)
    kept = await inbox.store(message(tenant, "kept", expires_at=T0 + timedelta(days=1)))
    expired = await inbox.store(message(tenant, "expired", expires_at=T0 - timedelta(seconds=1)))
    dismissed = await inbox.store(message(tenant, "dismissed"))
    await inbox.store(message(tenant, "bob's", customer_id="bob"))

    assert await inbox.dismiss(tenant, "ada", dismissed, T0)

    assert [m.id for m in await inbox.list(tenant, "ada", now=T0)] == [kept]
    assert await inbox.unread(tenant, "ada", T0) == 1
    # An expired message stays stored: the send's record still points at it.
    assert (await inbox.get(tenant, "ada", expired)) is not None


async def test_the_first_read_is_recorded_and_later_ones_change_nothing(
    database: Database,
) -> None:
    inbox, tenant = await inbox_of(database)
    first = await inbox.store(message(tenant, "first"))
    second = await inbox.store(message(tenant, "second", at=T0 + timedelta(minutes=1)))

    assert await inbox.mark_read(tenant, "ada", first, T0 + timedelta(hours=1))
    assert not await inbox.mark_read(tenant, "ada", first, T0 + timedelta(hours=2))
    assert not await inbox.mark_read(tenant, "bob", second, T0)  # not bob's message

    read = await inbox.get(tenant, "ada", first)
    assert read is not None
    assert read.read_at == T0 + timedelta(hours=1)
    assert await inbox.unread(tenant, "ada", T0) == 1
    assert [m.id for m in await inbox.list(tenant, "ada", now=T0, unread_only=True)] == [second]
    assert [m.id for m in await inbox.list(tenant, "ada", now=T0)] == [second, first]


async def test_unknown_messages_change_nothing(database: Database) -> None:
    inbox, tenant = await inbox_of(database)

    assert await inbox.get(tenant, "ada", "nope") is None
    assert not await inbox.mark_read(tenant, "ada", "nope", T0)
    assert not await inbox.dismiss(tenant, "ada", "nope", T0)
