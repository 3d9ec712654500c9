"""When a schedule-triggered journey enters its audience, in each customer's own time zone.

A schedule trigger says "at 09:00 local, on 2026-12-24" (once) or "at 09:00 local, on Mondays"
(recurring). 09:00 on a given day happens at 26 different instants around the world, the
first one (UTC+14) at 19:00 UTC the day before. So the journey's Temporal Schedule fires at
00:00 UTC on the day *before* each target day; the run it starts enumerates the audience and
gives each customer a start delay until 09:00 on the target day where they live. Every such
instant is then at least ten hours away when the run begins.

A wall time that does not exist that day (inside a spring-forward gap) moves on by the gap
(02:30 becomes 03:30); one that happens twice (fall back) starts at the first of the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from domain.delivery import clock_reaches
from domain.journeys import ScheduleTrigger

# The westernmost zone in use (UTC-12): the last place a target day's wall time comes round.
_LATEST_OFFSET = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class FireTimes:
    """The UTC days the Schedule fires on, at 00:00 UTC: one date, or days of the week."""

    once: date | None
    weekdays: tuple[int, ...]  # 0 = Monday, as ``date.weekday()``


def target_day(trigger: ScheduleTrigger) -> date | None:
    """The one day of a one-off schedule; None for a recurring one."""
    return date.fromisoformat(trigger.date) if trigger.date is not None else None


def fire_times(trigger: ScheduleTrigger) -> FireTimes:
    once = target_day(trigger)
    if once is not None:
        return FireTimes(once=once - timedelta(days=1), weekdays=())
    return FireTimes(once=None, weekdays=tuple(sorted({(day - 1) % 7 for day in trigger.weekdays})))


def day_for_run(fired_at: datetime) -> date:
    """The target day of a run the Schedule started at ``fired_at`` (the day after, in UTC)."""
    return fired_at.astimezone(UTC).date() + timedelta(days=1)


def applies_on(trigger: ScheduleTrigger, day: date) -> bool:
    once = target_day(trigger)
    if once is not None:
        return day == once
    return day.weekday() in trigger.weekdays


def local_start(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of wall time ``at`` on ``day`` in ``tz``."""
    # The first of a repeated time (fall back); the jump itself for a skipped one (spring
    # forward), as quiet hours and local-time waits do.
    return clock_reaches(datetime.combine(day, at.replace(tzinfo=None, fold=0), tzinfo=tz))


def last_start(day: date, at: time) -> datetime:
    """The latest instant anyone anywhere reaches wall time ``at`` on ``day``."""
    return datetime.combine(day, at.replace(tzinfo=None), tzinfo=UTC) + _LATEST_OFFSET
