"""Whether a customer may enter a journey now, given its entry rules and their past passes.

A customer inside the journey (an entry not yet exited) is never entered again: the event that
would have entered them is signalled to the run they are in. Otherwise, in this order:

* ``reentry: false``: one pass per customer, ever;
* ``max_entries``: at most that many passes;
* ``min_interval``: at least that long between two entries (entry to entry, not exit to entry).

Entry ids are derived from what caused the entry (an event id, a schedule occurrence), so a
redelivered event or a retried schedule finds the entry it made the first time instead of
making a second one.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from domain.journeys import EntryRules

# Fixed for ever: entry ids already stored were derived under it.
_ENTRY_NAMESPACE = uuid.UUID("6f1c3c1e-8a55-4a4e-9a53-0f2f0b6f3b71")


@dataclass(frozen=True, slots=True)
class PastEntry:
    entry_number: int
    entered_at: datetime
    exited_at: datetime | None = None

    @property
    def open(self) -> bool:
        return self.exited_at is None


class Verdict(StrEnum):
    ENTER = "enter"
    INSIDE = "inside"  # already in the journey: signal the run instead
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class EntryDecision:
    verdict: Verdict
    entry_number: int | None = None  # ENTER: the number of this pass, from 1
    reason: str = ""


def decide(rules: EntryRules, past: Sequence[PastEntry], now: datetime) -> EntryDecision:
    if any(entry.open for entry in past):
        return EntryDecision(Verdict.INSIDE, reason="already inside")
    if past and not rules.reentry:
        return EntryDecision(Verdict.REFUSED, reason="re-entry is not allowed")
    if rules.max_entries is not None and len(past) >= rules.max_entries:
        return EntryDecision(Verdict.REFUSED, reason=f"entered {len(past)} times, the most allowed")
    if past and rules.min_interval is not None:
        last = max(entry.entered_at for entry in past)
        if now - last < rules.min_interval:
            return EntryDecision(
                Verdict.REFUSED, reason=f"last entered {now - last} ago, under {rules.min_interval}"
            )
    number = max((entry.entry_number for entry in past), default=0) + 1
    return EntryDecision(Verdict.ENTER, entry_number=number)


def event_entry_id(journey_id: str, customer_id: str, event_id: str) -> str:
    """The entry an event makes: the same for every delivery of that event."""
    return str(uuid.uuid5(_ENTRY_NAMESPACE, f"{journey_id}|{customer_id}|event|{event_id}"))


def scheduled_entry_id(journey_id: str, customer_id: str, day: date) -> str:
    """The entry a schedule makes on ``day``: the same however often that day's run retries."""
    return str(
        uuid.uuid5(_ENTRY_NAMESPACE, f"{journey_id}|{customer_id}|schedule|{day.isoformat()}")
    )
