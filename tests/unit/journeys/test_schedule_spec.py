from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from api.journeys import ScheduleInPastError, schedule_spec
from domain.journeys import ScheduleTrigger

NOW = datetime(2026, 12, 1, 15, 30, 20, tzinfo=UTC)


def _starts(ranges: object) -> list[int]:
    return [r.start for r in ranges]  # type: ignore[attr-defined]


def test_recurring_schedule_fires_at_utc_midnight_the_day_before() -> None:
    spec = schedule_spec(ScheduleTrigger(at=time(9), weekdays=[0, 6]), NOW)  # Mon, Sun

    calendar = spec.calendars[0]
    assert spec.time_zone_name == "UTC"
    assert _starts(calendar.day_of_week) == [0, 6]  # Temporal: Sunday (for Monday), Saturday
    assert (_starts(calendar.hour), _starts(calendar.minute)) == ([0], [0])


def test_one_off_schedule_fires_once_the_day_before() -> None:
    spec = schedule_spec(ScheduleTrigger(at=time(9), date="2026-12-24"), NOW)

    calendar = spec.calendars[0]
    assert (_starts(calendar.year), _starts(calendar.month), _starts(calendar.day_of_month)) == (
        [2026],
        [12],
        [23],
    )
    assert _starts(calendar.hour) == [0]


def test_one_off_published_late_fires_at_the_next_minute() -> None:
    spec = schedule_spec(ScheduleTrigger(at=time(9), date="2026-12-02"), NOW)

    calendar = spec.calendars[0]
    assert (_starts(calendar.day_of_month), _starts(calendar.hour), _starts(calendar.minute)) == (
        [1],
        [15],
        [31],
    )


def test_one_off_past_everywhere_is_refused() -> None:
    with pytest.raises(ScheduleInPastError):
        schedule_spec(ScheduleTrigger(at=time(2), date="2026-12-01"), NOW)
