"""journey.send_message when an earlier attempt's answer was lost: it asks the vendor first.

The real activity runs in Temporal's ActivityEnvironment over a real SQLite database and the
real SendGrid adapter, against the SendGrid stand-in. The state an attempt killed mid-call
leaves behind (the send recorded, its hand-over begun, the vendor's answer never written) is
set up through the same repository the activity writes with.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.journeys import JourneyActivities, SendMessage
from adapters.channels import ChannelSenders, OutboundMessage, RetryPolicy
from adapters.channels.sendgrid import ACTIVITY_LAG_S
from adapters.db import Database, TenantRepository, upgrade
from adapters.db.delivery import DeliveryRepository
from adapters.db.journeys import CustomerProfiles, CustomerRecords
from adapters.settings import Settings
from domain.journeys import Channel, Template
from tests.support.vendors import SendGridStandIn

KEY = "SG.lost-answers"
SEND_KEY = "journey-t-j-ada:entry-1:first"


@dataclass
class Kit:
    tenant_id: str
    delivery: DeliveryRepository
    activities: JourneyActivities
    senders: ChannelSenders
    sendgrid: SendGridStandIn

    def request(self) -> SendMessage:
        return SendMessage(
            tenant_id=self.tenant_id,
            customer_id="ada",
            journey_id="j",
            node_id="first",
            workflow_id="journey-t-j-ada",
            channel=Channel.EMAIL,
            template=Template(subject="Welcome", body="Hello {{ profile.first_name }}"),
            context_event_id=None,
            transactional=False,
            idempotency_key=SEND_KEY,
            now=datetime.now(UTC),
        )

    async def killed_mid_call(self, *, vendor_took_it: bool) -> None:
        """What an attempt killed during the vendor call leaves: the send begun and handed
        over, no answer recorded; the vendor may or may not have the message."""
        request = self.request()
        await self.delivery.begin_send(
            SEND_KEY,
            {"tenant_id": self.tenant_id, "customer_id": "ada", "channel": "email",
             "now": request.now},
        )  # fmt: skip
        await self.delivery.finish_send(SEND_KEY, "sending", "email", None)
        if vendor_took_it:
            await self.senders.send(
                OutboundMessage(
                    channel=Channel.EMAIL,
                    to="ada@example.com",
                    subject="Welcome",
                    body="Hello Ada",
                    idempotency_key=SEND_KEY,
                )
            )


def attempt(number: int, scheduled_ago: timedelta = timedelta(hours=1)) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        attempt=number,
        current_attempt_scheduled_time=datetime.now(UTC) - scheduled_ago,
    )
    return env


@pytest.fixture
def sendgrid() -> Iterator[SendGridStandIn]:
    with SendGridStandIn(api_key=KEY).serve() as stand_in:
        yield stand_in


async def make_kit(tmp_path: Path, sendgrid: SendGridStandIn) -> AsyncIterator[Kit]:
    url = f"sqlite:///{tmp_path / 'sends.db'}"
    upgrade(url)
    database = Database(url)
    sessions = database.async_session
    tenant = await TenantRepository(sessions).ensure("shop")
    await CustomerProfiles(sessions).apply_traits(
        tenant.id, "ada", {"email": "ada@example.com", "first_name": "Ada"}, datetime.now(UTC)
    )
    settings = Settings(
        home=tmp_path / "home",
        sendgrid_api_key=SecretStr(KEY),
        sendgrid_base_url=sendgrid.base_url,
        sendgrid_from="Shop <shop@example.com>",
    )
    senders = ChannelSenders.from_settings(
        settings, policy=RetryPolicy(timeout_s=0.5, attempts=1, failures_to_open=50)
    )
    delivery = DeliveryRepository(sessions)
    yield Kit(
        tenant_id=tenant.id,
        delivery=delivery,
        activities=JourneyActivities(CustomerRecords(sessions), delivery, senders),
        senders=senders,
        sendgrid=sendgrid,
    )
    await senders.aclose()
    await database.dispose()


@pytest.fixture
async def kit(tmp_path: Path, sendgrid: SendGridStandIn) -> AsyncIterator[Kit]:
    async for made in make_kit(tmp_path, sendgrid):
        yield made


async def test_lost_answer_is_looked_up_and_not_sent_again(kit: Kit) -> None:
    kit.sendgrid.fail_next(1, hold_s=30, path_contains="/v3/mail/send")

    with pytest.raises(ApplicationError) as raised:
        await attempt(1).run(kit.activities.send_message, kit.request())
    left = await kit.delivery.send_record(SEND_KEY)
    outcome = await attempt(2).run(kit.activities.send_message, kit.request())

    assert raised.value.type == "SendOutcomeUnknown"
    assert left is not None
    assert (left.status, left.vendor) == ("sending", "email")
    [accepted] = kit.sendgrid.accepted()
    assert outcome.status == "sent"
    assert outcome.detail == "accepted on an earlier attempt"
    assert outcome.vendor_message_id == accepted.reply_headers["x-message-id"]
    record = await kit.delivery.send_record(SEND_KEY)
    assert record is not None
    assert (record.status, record.vendor) == ("sent", "sendgrid")
    assert record.vendor_message_id == outcome.vendor_message_id


async def test_retry_after_a_kill_past_the_vendor_finds_the_message(kit: Kit) -> None:
    await kit.killed_mid_call(vendor_took_it=True)

    outcome = await attempt(2).run(kit.activities.send_message, kit.request())

    assert outcome.status == "sent"
    assert len(kit.sendgrid.accepted()) == 1
    assert len(kit.sendgrid.lookups()) == 1


async def test_retry_after_a_kill_before_the_vendor_sends_once_lookup_says_no(kit: Kit) -> None:
    await kit.killed_mid_call(vendor_took_it=False)

    outcome = await attempt(2).run(kit.activities.send_message, kit.request())

    assert outcome.status == "sent"
    assert outcome.detail == ""
    [accepted] = kit.sendgrid.accepted()
    assert accepted.json()["custom_args"]["ce_send_key"] == SEND_KEY
    assert len(kit.sendgrid.lookups()) == 1


async def test_not_found_too_soon_asked_again_once_the_feed_caught_up(tmp_path: Path) -> None:
    with SendGridStandIn(api_key=KEY, activity_lag_s=0.3).serve() as lagging:
        async for kit in make_kit(tmp_path, lagging):
            await kit.killed_mid_call(vendor_took_it=True)
            # The earlier attempt ended just under the feed's lag ago: the first "no" is early.
            late = attempt(2, scheduled_ago=timedelta(seconds=ACTIVITY_LAG_S - 0.8))
            outcome = await late.run(kit.activities.send_message, kit.request())
            accepted = lagging.accepted()
            lookups = [r.reply_json()["messages"] for r in lagging.lookups()]

    assert outcome.status == "sent"
    assert outcome.detail == "accepted on an earlier attempt"
    assert len(accepted) == 1
    assert len(lookups) == 2
    assert lookups[0] == []
    assert len(lookups[1]) == 1


async def test_vendor_refusing_nothing_clears_the_hand_over_so_no_lookup_follows(
    kit: Kit,
) -> None:
    kit.sendgrid.fail_next(1, status=429, retry_after="7", path_contains="/v3/mail/send")

    with pytest.raises(ApplicationError) as raised:
        await attempt(1).run(kit.activities.send_message, kit.request())
    left = await kit.delivery.send_record(SEND_KEY)
    outcome = await attempt(2).run(kit.activities.send_message, kit.request())

    assert raised.value.next_retry_delay == timedelta(seconds=7)
    assert left is not None
    assert (left.status, left.vendor) == ("sending", "")
    assert outcome.status == "sent"
    assert kit.sendgrid.lookups() == []
    assert len(kit.sendgrid.accepted()) == 1


async def test_lookup_the_vendor_cannot_answer_fails_the_attempt_without_sending(kit: Kit) -> None:
    await kit.killed_mid_call(vendor_took_it=False)
    kit.sendgrid.fail_next(1, status=503, path_contains="/v3/messages")

    with pytest.raises(ApplicationError) as raised:
        await attempt(2).run(kit.activities.send_message, kit.request())

    assert raised.value.type == "TransientSendError"
    assert kit.sendgrid.accepted() == []
    record = await kit.delivery.send_record(SEND_KEY)
    assert record is not None
    assert (record.status, record.vendor) == ("sending", "email")


async def test_account_without_email_activity_sends_again_at_least_once(tmp_path: Path) -> None:
    with SendGridStandIn(api_key=KEY, activity_access=False).serve() as no_addon:
        async for kit in make_kit(tmp_path, no_addon):
            await kit.killed_mid_call(vendor_took_it=False)
            outcome = await attempt(2).run(kit.activities.send_message, kit.request())
            accepted = no_addon.accepted()
            refused = [r.status for r in no_addon.lookups()]

    assert outcome.status == "sent"
    assert len(accepted) == 1
    assert refused == [403]
