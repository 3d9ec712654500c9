"""Welcome series, abandoned cart, re-engagement, versions: journeys as customers live them."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.integration.journey_runs.conftest import Journeys, welcome_watching_the_open

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "journeys"


def abandoned_cart() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EXAMPLES / "abandoned-cart.json").read_text())
    return loaded


async def test_abandoned_cart_emails_once_without_a_purchase(kit: Journeys) -> None:
    journey = await kit.publish(abandoned_cart())
    await kit.customer("anna", first_name="Anna")

    await kit.ingest("anna", "cart_abandoned", {"cart_url": "https://shop.example/cart/1"})
    state = await kit.finished(journey, "anna")

    (mail,) = kit.emails_to("anna@example.com")
    assert mail["subject"] == "You left something in your cart"
    assert (
        "Hello Anna, your cart is waiting: https://shop.example/cart/1"
        in mail["content"][0]["value"]
    )
    assert [step.node_id for step in state.steps] == [
        "pause",
        "purchase_window",
        "reminder",
        "reminded",
    ]
    assert state.steps[1].outcome == "timeout"


async def test_abandoned_cart_purchase_in_the_window_exits_without_email(kit: Journeys) -> None:
    journey = await kit.publish(abandoned_cart())
    await kit.customer("bob")

    await kit.ingest("bob", "cart_abandoned")
    await kit.env.sleep(timedelta(seconds=4))
    await kit.ingest("bob", "purchase", {"total": 42})
    state = await kit.finished(journey, "bob")

    assert kit.emails_to("bob@example.com") == []
    assert state.exit_reason == "exit event purchase"


async def test_welcome_series_branches_on_the_loyalty_tier(kit: Journeys) -> None:
    journey = await kit.publish(
        {
            "name": "Welcome",
            "trigger": {"type": "event", "event": "signed_up"},
            "start": "hello",
            "nodes": [
                {"id": "hello", "type": "action", "channel": "email",
                 "template": {"subject": "Welcome", "body": "Hi {{ profile.first_name }}"},
                 "next": "a_day_later"},
                {"id": "a_day_later", "type": "wait", "duration": "P1D", "next": "tier"},
                {"id": "tier", "type": "branch",
                 "branches": [{"when": [{"path": "profile.vip", "op": "eq", "value": True}],
                               "next": "vip_sms"}],
                 "otherwise": "tips"},
                {"id": "vip_sms", "type": "action", "channel": "sms",
                 "template": {"body": "Your VIP code: WELCOME10"}, "next": "done"},
                {"id": "tips", "type": "action", "channel": "email",
                 "template": {"subject": "Tips", "body": "Getting started"}, "next": "done"},
                {"id": "done", "type": "exit"},
            ],
        }
    )  # fmt: skip
    await kit.customer("vera", first_name="Vera", vip=True, phone="+15005550011")
    await kit.customer("walt", first_name="Walt")

    await kit.ingest("vera", "signed_up")
    await kit.ingest("walt", "signed_up")
    vera = await kit.finished(journey, "vera")
    walt = await kit.finished(journey, "walt")

    assert [m["subject"] for m in kit.emails_to("vera@example.com")] == ["Welcome"]
    assert [m["subject"] for m in kit.emails_to("walt@example.com")] == ["Welcome", "Tips"]
    (sms,) = [r.form() for r in kit.twilio.accepted()]
    assert sms["To"] == "+15005550011"
    assert sms["Body"] == "Your VIP code: WELCOME10"
    assert vera.steps[2].outcome == "branch to vip_sms"
    assert walt.steps[2].outcome == "branch to tips"


async def test_reengagement_splits_the_same_way_every_time(kit: Journeys) -> None:
    definition = {
        "name": "Come back",
        "trigger": {"type": "event", "event": "went_quiet"},
        "entry": {"reentry": True},
        "start": "watch",
        "nodes": [
            {"id": "watch", "type": "wait_for_event", "event": "app_opened", "timeout": "P3D",
             "on_event": "back", "on_timeout": "test"},
            {"id": "test", "type": "split", "paths": [
                {"name": "discount", "weight": 50, "next": "discount"},
                {"name": "news", "weight": 50, "next": "news"}]},
            {"id": "discount", "type": "action", "channel": "email",
             "template": {"subject": "20% off", "body": "-"}, "next": "back"},
            {"id": "news", "type": "action", "channel": "email",
             "template": {"subject": "What's new", "body": "-"}, "next": "back"},
            {"id": "back", "type": "exit"},
        ],
    }  # fmt: skip
    journey = await kit.publish(definition)
    customers = [f"quiet-{n}" for n in range(8)]
    for customer in customers:
        await kit.customer(customer)
        await kit.ingest(customer, "went_quiet")
    first = {c: (await kit.finished(journey, c)).steps[1].outcome for c in customers}

    for customer in customers:
        await kit.ingest(customer, "went_quiet")  # re-entry: a second pass
    second = {c: (await kit.finished(journey, c)).steps[1].outcome for c in customers}

    assert first == second
    assert set(first.values()) == {"split: discount", "split: news"}  # both sides are used
    for customer in customers:
        subjects = [m["subject"] for m in kit.emails_to(f"{customer}@example.com")]
        assert len(subjects) == 2
        assert len(set(subjects)) == 1


async def test_customer_who_comes_back_exits_before_the_split(kit: Journeys) -> None:
    journey = await kit.publish(
        {
            "name": "Come back",
            "trigger": {"type": "event", "event": "went_quiet"},
            "start": "watch",
            "nodes": [
                {"id": "watch", "type": "wait_for_event", "event": "app_opened",
                 "timeout": "P3D", "on_event": "back", "on_timeout": "nudge"},
                {"id": "nudge", "type": "action", "channel": "email",
                 "template": {"subject": "We miss you", "body": "-"}, "next": "back"},
                {"id": "back", "type": "exit"},
            ],
        }
    )  # fmt: skip
    await kit.customer("carl")
    await kit.ingest("carl", "went_quiet")
    await kit.env.sleep(timedelta(days=1))
    await kit.ingest("carl", "app_opened")
    state = await kit.finished(journey, "carl")
    assert state.steps[0].outcome == "event"
    assert kit.emails_to("carl@example.com") == []


async def test_an_edited_journey_leaves_customers_on_their_version(kit: Journeys) -> None:
    def version(subject: str) -> dict[str, Any]:
        return {
            "name": "Versions",
            "trigger": {"type": "event", "event": "joined"},
            "start": "later",
            "nodes": [
                {"id": "later", "type": "wait", "duration": "PT1H", "next": "mail"},
                {"id": "mail", "type": "action", "channel": "email",
                 "template": {"subject": subject, "body": "-"}, "next": "end"},
                {"id": "end", "type": "exit"},
            ],
        }  # fmt: skip

    journey = await kit.publish(version("first version"))
    await kit.customer("early")
    await kit.ingest("early", "joined")
    await kit.replace(journey, version("second version"))
    await kit.customer("late")
    await kit.ingest("late", "joined")

    await kit.finished(journey, "early")
    await kit.finished(journey, "late")
    assert [m["subject"] for m in kit.emails_to("early@example.com")] == ["first version"]
    assert [m["subject"] for m in kit.emails_to("late@example.com")] == ["second version"]


async def test_an_open_while_the_email_is_still_sending_reaches_the_wait_for_it(
    kit: Journeys,
) -> None:
    journey = await kit.publish(welcome_watching_the_open())
    await kit.customer("olga")

    await kit.open_during_the_send("olga")
    state = await kit.finished(journey, "olga")

    assert [(step.node_id, step.outcome) for step in state.steps][1:] == [
        ("opened", "event"),
        ("read", "exit"),
    ]
