from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from domain.entry import (
    EntryDecision,
    PastEntry,
    Verdict,
    decide,
    event_entry_id,
    scheduled_entry_id,
)
from domain.journeys import EntryRules

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _closed(number: int, ago: timedelta) -> PastEntry:
    return PastEntry(number, NOW - ago, exited_at=NOW - ago + timedelta(minutes=1))


def test_first_entry_is_number_one() -> None:
    assert decide(EntryRules(), [], NOW) == EntryDecision(Verdict.ENTER, entry_number=1)


def test_customer_inside_is_not_entered_again_whatever_the_rules() -> None:
    inside = [PastEntry(1, NOW - timedelta(days=3))]

    decision = decide(EntryRules(reentry=True), inside, NOW)

    assert decision.verdict is Verdict.INSIDE


def test_second_entry_is_refused_when_reentry_is_off() -> None:
    decision = decide(EntryRules(reentry=False), [_closed(1, timedelta(days=30))], NOW)

    assert decision.verdict is Verdict.REFUSED
    assert "re-entry" in decision.reason


def test_reentry_numbers_the_next_pass() -> None:
    past = [_closed(1, timedelta(days=9)), _closed(2, timedelta(days=3))]

    assert decide(EntryRules(reentry=True), past, NOW) == EntryDecision(
        Verdict.ENTER, entry_number=3
    )


def test_entry_is_refused_at_max_entries() -> None:
    past = [_closed(1, timedelta(days=9)), _closed(2, timedelta(days=3))]

    decision = decide(EntryRules(reentry=True, max_entries=2), past, NOW)

    assert decision.verdict is Verdict.REFUSED
    assert "2 times" in decision.reason


def test_entry_is_refused_inside_min_interval_from_the_last_entry() -> None:
    rules = EntryRules(reentry=True, min_interval=timedelta(days=1))

    too_soon = decide(rules, [_closed(1, timedelta(hours=23))], NOW)
    long_enough = decide(rules, [_closed(1, timedelta(hours=24))], NOW)

    assert too_soon.verdict is Verdict.REFUSED
    assert long_enough == EntryDecision(Verdict.ENTER, entry_number=2)


def test_entry_ids_depend_on_the_cause_only() -> None:
    first = event_entry_id("j1", "c1", "e1")

    assert first == event_entry_id("j1", "c1", "e1")
    assert len({first, event_entry_id("j1", "c1", "e2"), event_entry_id("j2", "c1", "e1")}) == 3
    day = date(2026, 12, 24)
    assert scheduled_entry_id("j1", "c1", day) == scheduled_entry_id("j1", "c1", day)
    assert scheduled_entry_id("j1", "c1", day) != scheduled_entry_id(
        "j1", "c1", day + timedelta(days=1)
    )
