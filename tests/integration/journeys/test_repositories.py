from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from adapters.db.journeys import JourneyNotFoundError, JourneyStateError, Stored
from domain.customer_events import CustomerEvent, EventSource
from domain.entry import Verdict, event_entry_id
from domain.journey_lifecycle import JourneyMove, JourneyStatus
from tests.integration.journeys.conftest import NOW, Kit, definition


def _event(kit: Kit, event_id: str = "e1", **overrides: object) -> CustomerEvent:
    values: dict[str, object] = {
        "tenant_id": kit.tenant_id,
        "event_id": event_id,
        "customer_id": "cust-1",
        "name": "cart_abandoned",
        "source": EventSource.WEB,
        "occurred_at": NOW,
        "received_at": NOW,
        "properties": {"total": 42},
        "traits": {"email": "ada@example.com"},
    }
    values.update(overrides)
    return CustomerEvent.model_validate(values)


async def test_publish_makes_immutable_numbered_versions(kit: Kit) -> None:
    journey_id = str(uuid.uuid4())
    await kit.journeys.create(kit.tenant_id, journey_id, definition(), NOW)

    first = await kit.journeys.publish(kit.tenant_id, journey_id, "user:a", NOW)
    again = await kit.journeys.publish(kit.tenant_id, journey_id, "user:a", NOW)
    await kit.journeys.replace_draft(
        kit.tenant_id, journey_id, definition(name="Abandoned cart v2"), NOW
    )
    second = await kit.journeys.publish(kit.tenant_id, journey_id, "user:b", NOW)

    assert (first.version, first.created) == (1, True)
    assert (again.version, again.created) == (1, False)
    assert (second.version, second.created) == (2, True)
    assert second.journey.status is JourneyStatus.PUBLISHED
    v1 = await kit.journeys.version(kit.tenant_id, journey_id, 1)
    assert v1 is not None
    assert v1.definition["name"] == "Abandoned cart"
    listed = await kit.journeys.versions(kit.tenant_id, journey_id)
    assert listed is not None
    assert [v.version for v in listed[0]] == [2, 1]
    assert listed[1] == 2


async def test_moves_follow_the_status_rules(kit: Kit) -> None:
    journey_id = await kit.publish(definition())

    _, paused = await kit.journeys.move(kit.tenant_id, journey_id, JourneyMove.PAUSE, NOW)
    with pytest.raises(JourneyStateError):
        await kit.journeys.move(kit.tenant_id, journey_id, JourneyMove.PAUSE, NOW)
    await kit.journeys.move(kit.tenant_id, journey_id, JourneyMove.ARCHIVE, NOW)
    with pytest.raises(JourneyStateError):
        await kit.journeys.publish(kit.tenant_id, journey_id, "user:a", NOW)
    with pytest.raises(JourneyNotFoundError):
        await kit.journeys.move(kit.tenant_id, str(uuid.uuid4()), JourneyMove.PAUSE, NOW)

    assert paused.status is JourneyStatus.PAUSED
    assert await kit.journeys.live(kit.tenant_id) == []


async def test_admit_numbers_entries_and_finds_its_own_again(kit: Kit) -> None:
    journey_id = await kit.publish(definition(entry={"reentry": True}))
    entry_id = event_entry_id(journey_id, "cust-1", "e1")

    first = await kit.entries.admit(
        kit.tenant_id, journey_id, "cust-1", entry_id=entry_id, trigger_event_id="e1", at=NOW
    )
    redelivered = await kit.entries.admit(
        kit.tenant_id, journey_id, "cust-1", entry_id=entry_id, trigger_event_id="e1", at=NOW
    )
    other_event = await kit.entries.admit(
        kit.tenant_id,
        journey_id,
        "cust-1",
        entry_id=event_entry_id(journey_id, "cust-1", "e2"),
        trigger_event_id="e2",
        at=NOW,
    )

    assert first.entered
    assert first.fresh
    assert first.decision.entry_number == 1
    assert first.journey is not None
    assert first.journey.version == 1
    assert redelivered.entered
    assert not redelivered.fresh
    assert other_event.decision.verdict is Verdict.INSIDE
    assert [entry.entry_id for entry in await kit.entries.open_for(kit.tenant_id, "cust-1")] == [
        entry_id
    ]

    await kit.entries.close(entry_id, "exit at done", NOW + timedelta(seconds=5))
    after_exit = await kit.entries.admit(
        kit.tenant_id,
        journey_id,
        "cust-1",
        entry_id=event_entry_id(journey_id, "cust-1", "e3"),
        trigger_event_id="e3",
        at=NOW + timedelta(minutes=1),
    )
    assert after_exit.entered
    assert after_exit.decision.entry_number == 2


async def test_admit_refuses_paused_and_unpublished_journeys(kit: Kit) -> None:
    journey_id = await kit.publish(definition())
    draft_id = str(uuid.uuid4())
    await kit.journeys.create(kit.tenant_id, draft_id, definition(), NOW)
    await kit.journeys.move(kit.tenant_id, journey_id, JourneyMove.PAUSE, NOW)

    paused = await kit.entries.admit(
        kit.tenant_id, journey_id, "c", entry_id=str(uuid.uuid4()), trigger_event_id=None, at=NOW
    )
    draft = await kit.entries.admit(
        kit.tenant_id, draft_id, "c", entry_id=str(uuid.uuid4()), trigger_event_id=None, at=NOW
    )

    assert paused.decision.verdict is Verdict.REFUSED
    assert "paused" in paused.decision.reason
    assert draft.decision.verdict is Verdict.REFUSED


async def test_concurrent_admissions_enter_the_customer_once(kit: Kit) -> None:
    journey_id = await kit.publish(definition(entry={"reentry": True}))

    results = await asyncio.gather(
        *(
            kit.entries.admit(
                kit.tenant_id,
                journey_id,
                "cust-1",
                entry_id=event_entry_id(journey_id, "cust-1", f"e{n}"),
                trigger_event_id=f"e{n}",
                at=NOW,
            )
            for n in range(6)
        )
    )

    assert sum(result.entered for result in results) == 1
    assert len(await kit.entries.history(journey_id, "cust-1")) == 1


async def test_admission_after_a_new_version_uses_it_and_old_entries_keep_theirs(
    kit: Kit,
) -> None:
    journey_id = await kit.publish(definition(entry={"reentry": True}))
    first = await kit.entries.admit(
        kit.tenant_id, journey_id, "a", entry_id="entry-a", trigger_event_id="e1", at=NOW
    )
    await kit.publish(definition(name="v2", entry={"reentry": True}), journey_id)

    second = await kit.entries.admit(
        kit.tenant_id, journey_id, "b", entry_id="entry-b", trigger_event_id="e2", at=NOW
    )
    again = await kit.entries.admit(
        kit.tenant_id, journey_id, "a", entry_id="entry-a", trigger_event_id="e1", at=NOW
    )

    assert first.journey is not None
    assert first.journey.version == 1
    assert second.journey is not None
    assert second.journey.version == 2
    assert again.journey is not None
    assert again.journey.version == 1
    assert again.journey.definition.name == "Abandoned cart"


async def test_events_are_stored_once_and_marked_processed(kit: Kit) -> None:
    event = _event(kit)

    assert await kit.events.store(event) is Stored.NEW
    assert await kit.events.store(event) is Stored.PENDING
    await kit.events.mark_processed(kit.tenant_id, "e1", NOW)
    assert await kit.events.store(event) is Stored.PROCESSED
    stored = await kit.events.get(kit.tenant_id, "e1")
    assert stored is not None
    assert stored.traits == {"email": "ada@example.com"}


async def test_store_new_reports_only_the_new_ones(kit: Kit) -> None:
    await kit.events.store(_event(kit, "e1"))

    new = await kit.events.store_new([_event(kit, "e1"), _event(kit, "e2"), _event(kit, "e3")])

    assert new == {f"{kit.tenant_id}:e2", f"{kit.tenant_id}:e3"}


async def test_pending_events_come_most_urgent_then_oldest_first(kit: Kit) -> None:
    await kit.events.store_new(
        [
            _event(kit, "old-low", priority=10, received_at=NOW),
            _event(kit, "new-high", priority=90, received_at=NOW + timedelta(seconds=2)),
            _event(kit, "old-high", priority=90, received_at=NOW + timedelta(seconds=1)),
            _event(kit, "done", priority=99, received_at=NOW),
        ]
    )
    await kit.events.mark_processed(kit.tenant_id, "done", NOW)

    pending = await kit.events.pending(10)
    held_back = await kit.events.pending(10, skip=[(kit.tenant_id, "old-high")])

    assert [event.event_id for event in pending] == ["old-high", "new-high", "old-low"]
    assert [event.event_id for event in held_back] == ["new-high", "old-low"]


async def test_traits_create_the_profile_then_update_it(kit: Kit) -> None:
    created = await kit.profiles.apply_traits(
        kit.tenant_id, "cust-1", {"email": "a@example.com", "timezone": "Asia/Tokyo"}, NOW
    )
    updated = await kit.profiles.apply_traits(
        kit.tenant_id, "cust-1", {"segments": ["vip"], "first_name": "Ada"}, NOW
    )

    assert created.before is None
    assert created.after.timezone == "Asia/Tokyo"
    assert updated.before is not None
    assert updated.before.segments == []
    assert updated.after.segments == ["vip"]
    stored = await kit.profiles.get(kit.tenant_id, "cust-1")
    assert stored is not None
    assert stored.traits == {"email": "a@example.com", "first_name": "Ada"}
    assert stored.timezone == "Asia/Tokyo"


async def test_customers_page_through_a_segment(kit: Kit) -> None:
    for n in range(7):
        traits = {"segments": ["vip"] if n % 2 == 0 else []}
        await kit.profiles.apply_traits(kit.tenant_id, f"c{n}", traits, NOW)

    first, cursor = await kit.profiles.customers(kit.tenant_id, segment="vip", after=None, limit=2)
    second, cursor2 = await kit.profiles.customers(
        kit.tenant_id, segment="vip", after=cursor, limit=2
    )
    everyone, end = await kit.profiles.customers(kit.tenant_id, segment=None, after=None, limit=50)

    assert [p.user_id for p in first] == ["c0", "c2"]
    assert [p.user_id for p in second] == ["c4", "c6"]
    third, _ = await kit.profiles.customers(kit.tenant_id, segment="vip", after=cursor2, limit=2)
    assert third == []
    assert len(everyone) == 7
    assert end is None
