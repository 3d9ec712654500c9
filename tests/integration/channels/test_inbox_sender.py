"""The ``in_app`` channel: sending stores the message in the customer's inbox (a migrated
SQLite database), once per idempotency key, and an unsure retry finds it there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.channels import (
    ChannelMisconfigured,
    ChannelSenders,
    InboxSender,
    OutboundMessage,
    Vendor,
    VendorConfigs,
)
from adapters.db import Database, TenantRepository, upgrade
from adapters.db.inbox import InboxRepository
from domain.journeys import Channel


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite:///{tmp_path / 'db' / 'campaign.db'}"
    upgrade(url)
    db = Database(url)
    yield db
    await db.dispose()


@pytest.fixture
async def tenant_id(database: Database) -> str:
    return (await TenantRepository(database.async_session).ensure("shop")).id


def in_app(tenant_id: str, key: str = "entry-1:welcome") -> OutboundMessage:
    return OutboundMessage(
        channel=Channel.IN_APP,
        to="ada",
        subject="Welcome, Ada",
        body="Your first order ships free",
        idempotency_key=key,
        metadata={
            "tenant_id": tenant_id,
            "journey_id": "j-1",
            "node_id": "welcome",
            "workflow_id": "journey-j-1-ada",
            "send_key": key,
        },
    )


async def test_a_send_stores_the_rendered_message_once(database: Database, tenant_id: str) -> None:
    inbox = InboxRepository(database.async_session)
    senders = ChannelSenders(VendorConfigs(), inbox=inbox)
    sender = senders.sender(Channel.IN_APP)

    receipt = await sender.send(in_app(tenant_id))
    again = await sender.send(in_app(tenant_id))

    assert isinstance(sender, InboxSender)
    assert receipt.vendor is Vendor.IN_APP
    assert again.vendor_message_id == receipt.vendor_message_id
    (stored,) = await inbox.list(tenant_id, "ada", now=datetime.now(UTC))
    assert stored.id == receipt.vendor_message_id
    assert (stored.title, stored.body) == ("Welcome, Ada", "Your first order ships free")
    assert stored.send_key == "entry-1:welcome"
    # Journey and step go to the app; our internal ids do not.
    assert stored.data == {"journey_id": "j-1", "node_id": "welcome"}
    await senders.aclose()


async def test_an_unsure_retry_finds_the_stored_message(database: Database, tenant_id: str) -> None:
    sender = InboxSender(InboxRepository(database.async_session))
    since = datetime.now(UTC) - timedelta(minutes=1)

    assert await sender.find_accepted(in_app(tenant_id), since) is None
    receipt = await sender.send(in_app(tenant_id))
    found = await sender.find_accepted(in_app(tenant_id), since)

    assert sender.lookup_lag_s == 0.0
    assert found is not None
    assert found.vendor_message_id == receipt.vendor_message_id
    assert await sender.find_accepted(in_app(tenant_id, key="another"), since) is None


async def test_a_message_without_a_tenant_is_refused(database: Database) -> None:
    sender = InboxSender(InboxRepository(database.async_session))
    orphan = in_app("t").model_copy(update={"metadata": {}})

    with pytest.raises(ChannelMisconfigured, match="tenant_id"):
        await sender.send(orphan)


async def test_without_an_inbox_in_app_messages_are_refused() -> None:
    senders = ChannelSenders(VendorConfigs())

    with pytest.raises(ChannelMisconfigured, match="no inbox"):
        await senders.send(in_app("t"))
