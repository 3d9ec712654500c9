from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from domain.journey_schedules import (
    FireTimes,
    applies_on,
    day_for_run,
    fire_times,
    last_start,
    local_start,
)
from domain.journeys import ScheduleTrigger


def test_one_off_schedule_fires_the_day_before_its_date() -> None:
    trigger = ScheduleTrigger(at=time(9), date="2026-12-24")

    assert fire_times(trigger) == FireTimes(once=date(2026, 12, 23), weekdays=())
    assert applies_on(trigger, date(2026, 12, 24))
    assert not applies_on(trigger, date(2026, 12, 25))


def test_recurring_schedule_fires_the_weekday_before() -> None:
    trigger = ScheduleTrigger(at=time(9), weekdays=[0, 4])  # Monday and Friday

    assert fire_times(trigger) == FireTimes(once=None, weekdays=(3, 6))  # Thursday, Sunday
    assert applies_on(trigger, date(2026, 11, 30))  # a Monday
    assert not applies_on(trigger, date(2026, 12, 1))


def test_run_targets_the_next_utc_day() -> None:
    assert day_for_run(datetime(2026, 12, 23, 0, 0, 5, tzinfo=UTC)) == date(2026, 12, 24)


def test_local_start_is_the_wall_time_in_each_zone() -> None:
    day = date(2026, 12, 24)

    tokyo = local_start(day, time(9), ZoneInfo("Asia/Tokyo"))
    paris = local_start(day, time(9), ZoneInfo("Europe/Paris"))
    new_york = local_start(day, time(9), ZoneInfo("America/New_York"))

    assert tokyo == datetime(2026, 12, 24, 0, 0, tzinfo=UTC)
    assert paris == datetime(2026, 12, 24, 8, 0, tzinfo=UTC)
    assert new_york == datetime(2026, 12, 24, 14, 0, tzinfo=UTC)
    assert new_york < last_start(day, time(9))


def test_local_start_crosses_daylight_saving_changes() -> None:
    paris = ZoneInfo("Europe/Paris")

    # 2026-03-29: 02:00 -> 03:00 in Paris; 02:30 never shows: the run starts at the jump.
    assert local_start(date(2026, 3, 29), time(2, 30), paris) == datetime(
        2026, 3, 29, 1, 0, tzinfo=UTC
    )
    # 2026-10-25: 03:00 -> 02:00; 02:30 happens twice, the first one (summer time) counts.
    assert local_start(date(2026, 10, 25), time(2, 30), paris) == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC
    )
    # The day after a change, 09:00 is an hour further from UTC midnight.
    assert local_start(date(2026, 3, 28), time(9), paris).hour == 8
    assert local_start(date(2026, 3, 30), time(9), paris).hour == 7


def test_every_zone_is_at_least_ten_hours_after_the_run() -> None:
    run = datetime(2026, 12, 23, 0, 0, tzinfo=UTC)
    earliest = local_start(date(2026, 12, 24), time(0), ZoneInfo("Pacific/Kiritimati"))

    assert (earliest - run).total_seconds() >= 10 * 3600
