"""Intelligent delivery as customers live it: the real JourneyWorkflow waits out quiet hours in
each customer's own time zone (across the nights the clocks change), keeps the daily SMS cap
on the customer's calendar day, honours suppressions and lets transactional messages through.

The test server's clock is what workflows see, so each test first moves it to a known instant,
and reads when a message left from the sends table (``sent_at`` is the workflow's clock when
it sent), not from the wall clock.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from domain.delivery import DeliveryPolicy
from domain.journey_runs import JourneyRunState
from domain.journeys import Channel
from tests.integration.journey_runs.conftest import Journeys

NEW_YORK = "America/New_York"
PARIS = "Europe/Paris"
TOKYO = "Asia/Tokyo"
QUIET_NIGHTS = DeliveryPolicy(
    quiet_start=time(21), quiet_end=time(8), daily_caps={}, fatigue_max=None
)
# A workflow sends a moment after its timer fires (an activity or two later); far less than this.
LAG = timedelta(minutes=1)


def one_mail(*, wait: str | None = None) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [
        {"id": "mail", "type": "action", "channel": "email",
         "template": {"subject": "News", "body": "Hello {{ profile.email }}"}, "next": "done"},
        {"id": "done", "type": "exit"},
    ]  # fmt: skip
    if wait is not None:
        nodes.insert(0, {"id": "later", "type": "wait", "duration": wait, "next": "mail"})
    return {
        "name": "One mail",
        "trigger": {"type": "event", "event": "joined"},
        "start": nodes[0]["id"],
        "nodes": nodes,
    }


async def move_clock_to(kit: Journeys, moment: datetime) -> None:
    """Skip the test server's clock (all the workflows' clock) forward to ``moment``."""
    now = await kit.env.get_current_time()
    assert moment > now, f"{moment} is already past on the test server ({now})"
    await kit.env.sleep(moment - now)


def local(moment: datetime, timezone: str) -> datetime:
    return moment.astimezone(ZoneInfo(timezone))


def at(timezone: str, day: date, hour: int, minute: int = 0, *, fold: int = 0) -> datetime:
    wall = datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(timezone))
    return wall.replace(fold=fold).astimezone(UTC)


async def next_january_15(kit: Journeys) -> date:
    return date((await kit.env.get_current_time()).year + 1, 1, 15)


async def next_clock_change(kit: Journeys, timezone: str, *, forward: bool) -> date:
    """The next day (well ahead of the test server's clock) on which ``timezone`` moves its
    clocks forward (or back): the tests keep working whichever year they run in."""
    tz = ZoneInfo(timezone)
    day = (await kit.env.get_current_time()).date() + timedelta(days=2)
    for _ in range(2 * 366):
        midnight = datetime.combine(day, time(0), tzinfo=tz).utcoffset()
        noon = datetime.combine(day, time(12), tzinfo=tz).utcoffset()
        assert midnight is not None
        assert noon is not None
        if noon != midnight and (noon > midnight) == forward:
            return day
        day += timedelta(days=1)
    raise AssertionError(f"{timezone} no longer changes its clocks")


async def sent_times(kit: Journeys, customer_id: str) -> list[datetime]:
    """When messages (transactional ones aside) left for the customer, by the workflow's clock."""
    sends = await kit.delivery.recent_sends(
        kit.tenant_id, customer_id, datetime(2000, 1, 1, tzinfo=UTC)
    )
    return sorted(sent.at for sent in sends)


async def only_send(kit: Journeys, customer_id: str) -> datetime:
    (sent_at,) = await sent_times(kit, customer_id)
    return sent_at


def outcomes(state: JourneyRunState) -> dict[str, str]:
    return {step.node_id: step.outcome for step in state.steps}


def entered(state: JourneyRunState, node_id: str) -> datetime:
    (step,) = [step for step in state.steps if step.node_id == node_id]
    return step.entered_at


# --- quiet hours in three time zones ------------------------------------------------------------


async def test_one_instant_mails_each_customer_at_their_own_first_allowed_time(
    kit: Journeys,
) -> None:
    await kit.delivery.save_policy(kit.tenant_id, QUIET_NIGHTS)
    journey = await kit.publish(one_mail())
    zones = {"nadia": NEW_YORK, "pierre": PARIS, "yuki": TOKYO}
    for customer, timezone in zones.items():
        await kit.customer(customer, timezone=timezone)
    day = await next_january_15(kit)
    # 12:30 UTC: 07:30 in New York, 13:30 in Paris, 21:30 in Tokyo (standard time in all three)
    instant = datetime.combine(day, time(12, 30), tzinfo=UTC)
    await move_clock_to(kit, instant)

    for customer in zones:
        await kit.ingest(customer, "joined")
    states = {customer: await kit.finished(journey, customer) for customer in zones}

    first_allowed = {
        "nadia": at(NEW_YORK, day, 8),  # this morning
        "pierre": instant,  # now
        "yuki": at(TOKYO, day + timedelta(days=1), 8),  # tomorrow morning
    }
    for customer in zones:
        sent_at = await only_send(kit, customer)
        assert first_allowed[customer] <= sent_at < first_allowed[customer] + LAG, customer
        assert outcomes(states[customer])["mail"] == "sent"
        assert len(kit.emails_to(f"{customer}@example.com")) == 1


# --- the nights the clocks change ---------------------------------------------------------------


async def test_quiet_hours_ending_in_the_skipped_hour_end_when_the_clocks_jump(
    kit: Journeys,
) -> None:
    # Quiet until 02:30, which Paris clocks never show on the spring-forward night:
    # 01:59 CET is followed by 03:00 CEST, already outside quiet hours.
    await kit.delivery.save_policy(
        kit.tenant_id, QUIET_NIGHTS.model_copy(update={"quiet_end": time(2, 30)})
    )
    journey = await kit.publish(one_mail())
    await kit.customer("camille", timezone=PARIS)
    day = await next_clock_change(kit, PARIS, forward=True)
    await move_clock_to(kit, at(PARIS, day, 1, 30))

    await kit.ingest("camille", "joined")
    state = await kit.finished(journey, "camille")

    sent_at = await only_send(kit, "camille")
    jump = at(PARIS, day, 3)
    assert jump <= sent_at < jump + LAG
    assert local(sent_at, PARIS).utcoffset() == timedelta(hours=2)  # summer time already
    assert outcomes(state)["mail"] == "sent"


async def test_quiet_hours_ending_in_the_repeated_hour_are_kept_the_second_time_round(
    kit: Journeys,
) -> None:
    # On the fall-back night Paris shows 02:00-03:00 twice; at the second 02:10 the clock is
    # inside quiet hours again, and the first 02:30 is already past.
    await kit.delivery.save_policy(
        kit.tenant_id, QUIET_NIGHTS.model_copy(update={"quiet_end": time(2, 30)})
    )
    journey = await kit.publish(one_mail())
    await kit.customer("lucie", timezone=PARIS)
    day = await next_clock_change(kit, PARIS, forward=False)
    await move_clock_to(kit, at(PARIS, day, 2, 10, fold=1))

    await kit.ingest("lucie", "joined")
    state = await kit.finished(journey, "lucie")

    sent_at = await only_send(kit, "lucie")
    second_half_past_two = at(PARIS, day, 2, 30, fold=1)
    assert second_half_past_two <= sent_at < second_half_past_two + LAG
    assert local(sent_at, PARIS).utcoffset() == timedelta(hours=1)  # winter time
    assert outcomes(state)["mail"] == "sent"


# --- daily cap, suppression, transactional ------------------------------------------------------


async def test_daily_sms_cap_is_kept_per_customers_calendar_day(kit: Journeys) -> None:
    await kit.delivery.save_policy(
        kit.tenant_id,
        DeliveryPolicy(
            quiet_start=None, quiet_end=None, daily_caps={Channel.SMS: 1}, fatigue_max=None
        ),
    )
    journey = await kit.publish(
        {
            "name": "Three texts",
            "trigger": {"type": "event", "event": "joined"},
            "start": "first",
            "nodes": [
                {"id": "first", "type": "action", "channel": "sms",
                 "template": {"body": "one"}, "next": "half_hour"},
                {"id": "half_hour", "type": "wait", "duration": "PT30M", "next": "second"},
                {"id": "second", "type": "action", "channel": "sms",
                 "template": {"body": "two"}, "next": "an_hour"},
                {"id": "an_hour", "type": "wait", "duration": "PT1H", "next": "third"},
                {"id": "third", "type": "action", "channel": "sms",
                 "template": {"body": "three"}, "next": "done"},
                {"id": "done", "type": "exit"},
            ],
        }
    )  # fmt: skip
    await kit.customer("kenji", timezone=TOKYO)
    day = await next_january_15(kit)
    # 23:00 in Tokyo (14:00 UTC): the first text tonight, the second at 23:30 the same local
    # day, the third at 00:30 the next local day, though all three on one UTC day.
    await move_clock_to(kit, at(TOKYO, day, 23))

    await kit.ingest("kenji", "joined")
    state = await kit.finished(journey, "kenji")

    assert outcomes(state) == {
        "first": "sent",
        "half_hour": "waited",
        "second": f"skipped: daily cap: 1 sms messages on {day.isoformat()}",
        "an_hour": "waited",
        "third": "sent",
        "done": "exit",
    }
    assert [request.form()["Body"] for request in kit.twilio.accepted()] == ["one", "three"]
    first, third = await sent_times(kit, "kenji")
    assert first.date() == third.date()  # one UTC day...
    assert [local(first, TOKYO).date(), local(third, TOKYO).date()] == [
        day,
        day + timedelta(days=1),  # ...two days in Tokyo
    ]


async def test_suppressed_addresses_are_skipped_until_the_suppression_expires(
    kit: Journeys,
) -> None:
    journey = await kit.publish(one_mail(wait="PT1H"))
    now = await kit.env.get_current_time()
    suppressions = {
        "sam": (Channel.EMAIL, None),  # unsubscribed for good
        "tess": (Channel.EMAIL, now + timedelta(minutes=30)),  # over before the mail
        "uma": (Channel.EMAIL, now + timedelta(days=1)),  # still on when it is due
        "vic": (Channel.SMS, None),  # texts only: mail still goes
    }
    for customer, (channel, expires_at) in suppressions.items():
        await kit.customer(customer)
        address = (
            f" {customer.upper()}@Example.com" if channel is Channel.EMAIL else "+1 500 555 0010"
        )
        await kit.delivery.suppress(kit.tenant_id, channel, address, "tests", expires_at)

    for customer in suppressions:
        await kit.ingest(customer, "joined")
    states = {customer: await kit.finished(journey, customer) for customer in suppressions}

    assert {customer: outcomes(state)["mail"] for customer, state in states.items()} == {
        "sam": "skipped: suppressed",
        "tess": "sent",
        "uma": "skipped: suppressed",
        "vic": "sent",
    }
    assert [c for c in suppressions if kit.emails_to(f"{c}@example.com")] == ["tess", "vic"]


async def test_transactional_mail_goes_during_quiet_hours_and_marketing_waits(
    kit: Journeys,
) -> None:
    await kit.delivery.save_policy(kit.tenant_id, QUIET_NIGHTS)
    journey = await kit.publish(
        {
            "name": "Order",
            "trigger": {"type": "event", "event": "ordered"},
            "start": "receipt",
            "nodes": [
                {"id": "receipt", "type": "action", "channel": "email", "transactional": True,
                 "template": {"subject": "Your receipt", "body": "-"}, "next": "offer"},
                {"id": "offer", "type": "action", "channel": "email",
                 "template": {"subject": "You may also like", "body": "-"}, "next": "done"},
                {"id": "done", "type": "exit"},
            ],
        }
    )  # fmt: skip
    await kit.customer("olga", timezone=PARIS)
    day = await next_january_15(kit)
    late = at(PARIS, day, 23)
    await move_clock_to(kit, late)

    await kit.ingest("olga", "ordered")
    state = await kit.finished(journey, "olga")

    assert outcomes(state)["receipt"] == "sent"
    assert late <= entered(state, "offer") < late + LAG  # the receipt did not wait
    (offer_sent,) = await sent_times(kit, "olga")  # transactional sends are not counted
    morning = at(PARIS, day + timedelta(days=1), 8)
    assert morning <= offer_sent < morning + LAG
    assert [m["subject"] for m in kit.emails_to("olga@example.com")] == [
        "Your receipt",
        "You may also like",
    ]
