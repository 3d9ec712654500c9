"""Intelligent delivery's rules (domain.delivery) in the customer's own time zone: quiet hours,
daily caps, fatigue, suppression, transactional messages, send-time optimisation, and the
days the clocks change."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from domain.delivery import (
    DeliveryPolicy,
    Plan,
    Sent,
    Verdict,
    best_hour,
    local_day,
    next_local,
    plan,
)
from domain.journeys import Channel

NEW_YORK = "America/New_York"
PARIS = "Europe/Paris"
TOKYO = "Asia/Tokyo"
SYDNEY = "Australia/Sydney"

# 2027's clock changes: Paris skips 02:00-03:00 on 28 March and repeats it on 31 October;
# New York skips 02:00-03:00 on 14 March and repeats 01:00-02:00 on 7 November; Sydney
# repeats 02:00-03:00 on 4 April and skips it on 3 October; Tokyo keeps one offset.
PARIS_SPRING, PARIS_FALL = date(2027, 3, 28), date(2027, 10, 31)
NEW_YORK_SPRING, NEW_YORK_FALL = date(2027, 3, 14), date(2027, 11, 7)
SYDNEY_FALL, SYDNEY_SPRING = date(2027, 4, 4), date(2027, 10, 3)


def at(timezone: str, day: date, hour: int, minute: int = 0, *, fold: int = 0) -> datetime:
    """The instant (UTC) a customer in ``timezone`` sees ``hour:minute`` on ``day``; ``fold=1``
    is the second time round on a day the clocks go back."""
    wall = datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(timezone))
    return wall.replace(fold=fold).astimezone(UTC)


def wall(moment: datetime, timezone: str) -> tuple[date, time, timedelta | None]:
    """What the customer's clock shows at ``moment``: day, time and offset from UTC."""
    local = moment.astimezone(ZoneInfo(timezone))
    return local.date(), local.time(), local.utcoffset()


def rules(**overrides: Any) -> DeliveryPolicy:
    """Quiet hours 21:00-08:00 and nothing else unless a test asks for it."""
    return DeliveryPolicy.model_validate(
        {"quiet_start": time(21), "quiet_end": time(8), "daily_caps": {}, "fatigue_max": None}
        | overrides
    )


def decide(
    now: datetime,
    timezone: str,
    policy: DeliveryPolicy | None = None,
    *,
    channel: Channel = Channel.EMAIL,
    history: Sequence[Sent] = (),
    opens: Sequence[datetime] = (),
    suppressed: bool = False,
    transactional: bool = False,
) -> Plan:
    return plan(
        policy=policy or rules(),
        channel=channel,
        now=now,
        timezone=timezone,
        suppressed=suppressed,
        transactional=transactional,
        history=history,
        opens=opens,
    )


# --- quiet hours in three (four) time zones -----------------------------------------------------


@pytest.mark.parametrize(
    ("timezone", "local_now", "expected"),
    [
        # One instant, 2027-01-15 12:30 UTC, four local clocks (all on standard time).
        (NEW_YORK, (date(2027, 1, 15), time(7, 30)), (date(2027, 1, 15), time(8))),
        (PARIS, (date(2027, 1, 15), time(13, 30)), None),
        (TOKYO, (date(2027, 1, 15), time(21, 30)), (date(2027, 1, 16), time(8))),
        (SYDNEY, (date(2027, 1, 15), time(23, 30)), (date(2027, 1, 16), time(8))),
    ],
)
def test_one_instant_waits_for_each_customers_own_morning(
    timezone: str, local_now: tuple[date, time], expected: tuple[date, time] | None
) -> None:
    now = datetime(2027, 1, 15, 12, 30, tzinfo=UTC)
    assert wall(now, timezone)[:2] == local_now

    decision = decide(now, timezone)

    assert decision.verdict is Verdict.SEND
    assert decision.send_at is not None
    if expected is None:
        assert decision.send_at == now
        assert decision.reason == ""
    else:
        assert wall(decision.send_at, timezone)[:2] == expected
        assert decision.reason == "quiet hours"


@pytest.mark.parametrize(
    ("local_now", "expected"),
    [
        ((2027, 1, 15, 20, 59), "now"),
        ((2027, 1, 15, 21, 0), (date(2027, 1, 16), time(8))),  # the start is quiet
        ((2027, 1, 15, 23, 59), (date(2027, 1, 16), time(8))),
        ((2027, 1, 16, 0, 0), (date(2027, 1, 16), time(8))),  # past midnight: the same morning
        ((2027, 1, 16, 7, 59), (date(2027, 1, 16), time(8))),
        ((2027, 1, 16, 8, 0), "now"),  # the end is not
    ],
)
def test_quiet_hours_across_midnight_hold_on_both_sides_of_it(
    local_now: tuple[int, int, int, int, int], expected: tuple[date, time] | str
) -> None:
    year, month, day, hour, minute = local_now
    now = at(TOKYO, date(year, month, day), hour, minute)

    decision = decide(now, TOKYO)

    assert decision.send_at is not None
    if expected == "now":
        assert decision.send_at == now
    else:
        assert wall(decision.send_at, TOKYO)[:2] == expected


def test_quiet_hours_within_one_day_wait_for_their_end() -> None:
    policy = rules(quiet_start=time(12), quiet_end=time(14))
    day = date(2027, 1, 15)

    lunch = decide(at(PARIS, day, 12, 30), PARIS, policy)
    evening = decide(at(PARIS, day, 23, 0), PARIS, policy)

    assert lunch.send_at == at(PARIS, day, 14)
    assert evening.send_at == at(PARIS, day, 23, 0)


def test_no_quiet_hours_sends_at_any_hour() -> None:
    now = at(NEW_YORK, date(2027, 1, 15), 3)

    assert decide(now, NEW_YORK, rules(quiet_start=None, quiet_end=None)).send_at == now


def test_unknown_time_zone_is_treated_as_utc() -> None:
    now = datetime(2027, 1, 15, 23, 0, tzinfo=UTC)

    decision = decide(now, "Mars/Olympus_Mons")

    assert decision.send_at == datetime(2027, 1, 16, 8, 0, tzinfo=UTC)


# --- the days the clocks change -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("timezone", "day", "gap_end_utc"),
    [
        (PARIS, PARIS_SPRING, datetime(2027, 3, 28, 1, 0, tzinfo=UTC)),
        (NEW_YORK, NEW_YORK_SPRING, datetime(2027, 3, 14, 7, 0, tzinfo=UTC)),
        (SYDNEY, SYDNEY_SPRING, datetime(2027, 10, 2, 16, 0, tzinfo=UTC)),
    ],
)
def test_quiet_hours_ending_in_the_skipped_hour_end_when_the_clocks_jump(
    timezone: str, day: date, gap_end_utc: datetime
) -> None:
    # 02:30 never shows on these clocks: 01:59 is followed by 03:00, already outside the window.
    policy = rules(quiet_start=time(21), quiet_end=time(2, 30))
    now = at(timezone, day, 1, 30)

    decision = decide(now, timezone, policy)

    assert decision.send_at == gap_end_utc
    assert wall(gap_end_utc, timezone)[:2] == (day, time(3))


def test_spring_forward_night_is_an_hour_shorter_in_real_time() -> None:
    now = at(PARIS, PARIS_SPRING - timedelta(days=1), 22)

    decision = decide(now, PARIS)

    assert decision.send_at == datetime(2027, 3, 28, 6, 0, tzinfo=UTC)  # 08:00 CEST
    assert decision.send_at - now == timedelta(hours=9)  # ten hours on the clock


def test_fall_back_night_is_an_hour_longer_in_real_time() -> None:
    now = at(PARIS, PARIS_FALL - timedelta(days=1), 22)

    decision = decide(now, PARIS)

    assert decision.send_at == datetime(2027, 10, 31, 7, 0, tzinfo=UTC)  # 08:00 CET
    assert decision.send_at - now == timedelta(hours=11)


@pytest.mark.parametrize(
    ("timezone", "day", "end", "first", "second"),
    [
        (PARIS, PARIS_FALL, time(2, 30), datetime(2027, 10, 31, 0, 30, tzinfo=UTC),
         datetime(2027, 10, 31, 1, 30, tzinfo=UTC)),
        (NEW_YORK, NEW_YORK_FALL, time(1, 30), datetime(2027, 11, 7, 5, 30, tzinfo=UTC),
         datetime(2027, 11, 7, 6, 30, tzinfo=UTC)),
        (SYDNEY, SYDNEY_FALL, time(2, 30), datetime(2027, 4, 3, 15, 30, tzinfo=UTC),
         datetime(2027, 4, 3, 16, 30, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_quiet_hours_ending_in_the_repeated_hour_end_at_the_next_of_its_two_ends(
    timezone: str, day: date, end: time, first: datetime, second: datetime
) -> None:
    policy = rules(quiet_start=time(21), quiet_end=end)
    assert wall(first, timezone)[1] == wall(second, timezone)[1] == end
    repeated = end.replace(minute=10)  # shows twice: before and after the clocks go back

    before_first = decide(at(timezone, day, repeated.hour, 10, fold=0), timezone, policy)
    between = decide(first + timedelta(minutes=15), timezone, policy)
    in_the_repeat = decide(at(timezone, day, repeated.hour, 10, fold=1), timezone, policy)

    assert before_first.send_at == first
    assert between.send_at == first + timedelta(minutes=15)  # out of quiet hours: at once
    assert in_the_repeat.send_at == second  # back in them: never a time already past
    assert in_the_repeat.reason == "quiet hours"


@pytest.mark.parametrize(
    ("after", "at_time", "timezone", "expected"),
    [
        # an ordinary day, and strictly after: the same instant is tomorrow's
        (datetime(2027, 1, 15, 6, 0, tzinfo=UTC), time(8), PARIS,
         datetime(2027, 1, 15, 7, 0, tzinfo=UTC)),
        (datetime(2027, 1, 15, 7, 0, tzinfo=UTC), time(8), PARIS,
         datetime(2027, 1, 16, 7, 0, tzinfo=UTC)),
        # the skipped hour: the moment the clocks jump over it
        (datetime(2027, 3, 27, 12, 0, tzinfo=UTC), time(2, 30), PARIS,
         datetime(2027, 3, 28, 1, 0, tzinfo=UTC)),
        (datetime(2027, 3, 27, 12, 0, tzinfo=UTC), time(2, 0), PARIS,
         datetime(2027, 3, 28, 1, 0, tzinfo=UTC)),
        (datetime(2027, 3, 28, 1, 0, tzinfo=UTC), time(2, 30), PARIS,
         datetime(2027, 3, 29, 0, 30, tzinfo=UTC)),
        # the repeated hour: first showing, then second
        (datetime(2027, 11, 7, 0, 0, tzinfo=UTC), time(1, 15), NEW_YORK,
         datetime(2027, 11, 7, 5, 15, tzinfo=UTC)),
        (datetime(2027, 11, 7, 5, 15, tzinfo=UTC), time(1, 15), NEW_YORK,
         datetime(2027, 11, 7, 6, 15, tzinfo=UTC)),
        (datetime(2027, 11, 7, 6, 15, tzinfo=UTC), time(1, 15), NEW_YORK,
         datetime(2027, 11, 8, 6, 15, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_next_local_is_when_the_clock_next_reaches_the_time(
    after: datetime, at_time: time, timezone: str, expected: datetime
) -> None:
    assert next_local(after, at_time, ZoneInfo(timezone)) == expected


# Every time (sampled every 17 minutes, off the minute) across the two days around each 2027
# clock change, and a plain winter week in Tokyo, against quiet windows that wrap midnight,
# stay in one day, or end or start inside a skipped or repeated hour.
SWEEPS = [
    (PARIS, PARIS_SPRING),
    (PARIS, PARIS_FALL),
    (NEW_YORK, NEW_YORK_SPRING),
    (NEW_YORK, NEW_YORK_FALL),
    (SYDNEY, SYDNEY_FALL),
    (SYDNEY, SYDNEY_SPRING),
    (TOKYO, date(2027, 1, 15)),
]
WINDOWS = [
    (time(21), time(8)),
    (time(21), time(2, 30)),
    (time(1, 30), time(6)),
    (time(2, 30), time(9)),
    (time(12), time(14)),
]


def _quiet(moment: datetime, timezone: str, start: time, end: time) -> bool:
    local = moment.astimezone(ZoneInfo(timezone)).time()
    return start <= local < end if start <= end else not end <= local < start


def _allowed_minutes_between(
    now: datetime, send_at: datetime, timezone: str, start: time, end: time
) -> list[datetime]:
    """By brute force, the whole minutes after ``now`` and before ``send_at`` the customer's
    clock is out of the window (windows and clock changes fall on whole minutes). The second
    showing of a repeated hour is left out: quiet hours that began before the clocks went
    back are kept, though the clock may show a time before their start for a while."""
    tz = ZoneInfo(timezone)
    moment = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    allowed = []
    while moment < send_at:
        if not _quiet(moment, timezone, start, end) and moment.astimezone(tz).fold == 0:
            allowed.append(moment)
        moment += timedelta(minutes=1)
    return allowed


def _sweep(day: date) -> list[datetime]:
    start = datetime.combine(day - timedelta(days=1), time(0, 0, 13), tzinfo=UTC)
    return [start + timedelta(minutes=17 * step) for step in range(3 * 24 * 60 // 17)]


@pytest.mark.parametrize(("timezone", "day"), SWEEPS)
@pytest.mark.parametrize(("start", "end"), WINDOWS)
def test_send_is_at_the_first_moment_out_of_quiet_hours(
    timezone: str, day: date, start: time, end: time
) -> None:
    policy = rules(quiet_start=start, quiet_end=end)
    for now in _sweep(day):
        decision = decide(now, timezone, policy)

        assert decision.send_at is not None
        assert decision.send_at >= now, now
        assert not _quiet(decision.send_at, timezone, start, end), now
        assert _allowed_minutes_between(now, decision.send_at, timezone, start, end) == [], now


@pytest.mark.parametrize(("timezone", "day"), SWEEPS)
@pytest.mark.parametrize("hour", [0, 2, 7, 8, 19, 23])
def test_optimised_send_is_never_early_nor_in_quiet_hours(
    timezone: str, day: date, hour: int
) -> None:
    policy = rules(send_time_optimization=True, default_send_hour=hour)
    for now in _sweep(day):
        decision = decide(now, timezone, policy)

        assert decision.send_at is not None
        assert decision.send_at >= now, now
        assert not _quiet(decision.send_at, timezone, time(21), time(8)), now
        assert decision.send_at - now <= policy.sto_window, now


# --- daily caps on the customer's calendar day --------------------------------------------------


def test_local_day_is_the_customers_calendar_day() -> None:
    late = at(TOKYO, date(2027, 1, 15), 23, 30)  # 14:30 UTC
    early = at(TOKYO, date(2027, 1, 16), 0, 30)  # 15:30 UTC, the same UTC day

    assert late.date() == early.date()
    assert local_day(late, TOKYO) == date(2027, 1, 15)
    assert local_day(early, TOKYO) == date(2027, 1, 16)


def test_daily_cap_resets_at_local_midnight_within_one_utc_day() -> None:
    policy = rules(quiet_start=None, quiet_end=None, daily_caps={Channel.SMS: 1})
    sent = [Sent(Channel.SMS, at(TOKYO, date(2027, 1, 15), 23, 30))]

    after_midnight = decide(
        at(TOKYO, date(2027, 1, 16), 0, 30), TOKYO, policy, channel=Channel.SMS, history=sent
    )

    assert after_midnight.verdict is Verdict.SEND


def test_daily_cap_counts_one_local_day_across_two_utc_days() -> None:
    policy = rules(quiet_start=None, quiet_end=None, daily_caps={Channel.SMS: 1})
    evening = at(NEW_YORK, date(2027, 1, 15), 18, 30)  # 23:30 UTC on the 15th
    later = at(NEW_YORK, date(2027, 1, 15), 19, 30)  # 00:30 UTC on the 16th
    assert evening.date() != later.date()

    decision = decide(
        later, NEW_YORK, policy, channel=Channel.SMS, history=[Sent(Channel.SMS, evening)]
    )

    assert decision.verdict is Verdict.SKIP
    assert decision.reason == "daily cap: 1 sms messages on 2027-01-15"


def test_daily_cap_counts_only_its_own_channel() -> None:
    policy = rules(quiet_start=None, quiet_end=None, daily_caps={Channel.SMS: 1})
    now = at(PARIS, date(2027, 1, 15), 12)
    emails = [Sent(Channel.EMAIL, now - timedelta(hours=n)) for n in (1, 2, 3)]

    assert decide(now, PARIS, policy, channel=Channel.SMS, history=emails).verdict is Verdict.SEND
    assert decide(now, PARIS, policy, history=emails).verdict is Verdict.SEND  # email: no cap


def test_daily_cap_counts_the_day_the_message_will_go() -> None:
    policy = rules(daily_caps={Channel.SMS: 1})
    yesterday = [Sent(Channel.SMS, at(PARIS, date(2027, 1, 15), 20))]
    tonight = at(PARIS, date(2027, 1, 15), 22)  # quiet: goes tomorrow morning, tomorrow's cap

    deferred = decide(tonight, PARIS, policy, channel=Channel.SMS, history=yesterday)

    assert deferred.verdict is Verdict.SEND
    assert deferred.send_at == at(PARIS, date(2027, 1, 16), 8)


def test_daily_cap_on_a_25_hour_day_counts_both_ends_of_it() -> None:
    policy = rules(quiet_start=None, quiet_end=None, daily_caps={Channel.EMAIL: 2})
    history = [
        Sent(Channel.EMAIL, at(PARIS, PARIS_FALL, 0, 30)),
        Sent(Channel.EMAIL, at(PARIS, PARIS_FALL, 2, 15, fold=1)),
    ]

    now = at(PARIS, PARIS_FALL, 23, 30)
    assert now - history[0].at == timedelta(hours=24)  # a whole day later, the same local day

    decision = decide(now, PARIS, policy, history=history)

    assert decision.verdict is Verdict.SKIP
    assert decision.reason.startswith("daily cap: 2 email messages on 2027-10-31")


# --- fatigue, suppression, transactional messages -----------------------------------------------


def test_fatigue_skips_at_the_weekly_limit_on_any_channel() -> None:
    policy = rules(quiet_start=None, quiet_end=None, fatigue_max=3)
    now = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)
    history = [
        Sent(Channel.EMAIL, now - timedelta(days=6, hours=23)),
        Sent(Channel.SMS, now - timedelta(days=3)),
        Sent(Channel.PUSH, now - timedelta(hours=1)),
    ]

    decision = decide(now, PARIS, policy, history=history)

    assert decision.verdict is Verdict.SKIP
    assert decision.reason == "fatigue: 3 messages in 7 days"


def test_fatigue_forgets_messages_a_week_old() -> None:
    policy = rules(quiet_start=None, quiet_end=None, fatigue_max=3)
    now = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)
    history = [
        Sent(Channel.EMAIL, now - timedelta(days=7)),
        Sent(Channel.EMAIL, now - timedelta(days=12)),
        Sent(Channel.SMS, now - timedelta(days=3)),
        Sent(Channel.PUSH, now - timedelta(hours=1)),
    ]

    assert decide(now, PARIS, policy, history=history).verdict is Verdict.SEND


def test_suppressed_address_is_skipped_even_for_transactional_messages() -> None:
    now = at(PARIS, date(2027, 1, 15), 12)

    for transactional in (False, True):
        decision = decide(now, PARIS, suppressed=True, transactional=transactional)

        assert decision == Plan(Verdict.SKIP, reason="suppressed")


def test_transactional_message_ignores_quiet_hours_caps_fatigue_and_optimisation() -> None:
    policy = rules(
        daily_caps={Channel.SMS: 1},
        fatigue_max=1,
        send_time_optimization=True,
        default_send_hour=10,
    )
    now = at(TOKYO, date(2027, 1, 15), 23, 45)  # quiet
    history = [Sent(Channel.SMS, now - timedelta(minutes=30))]  # cap and fatigue both reached

    marketing = decide(now, TOKYO, policy, channel=Channel.SMS, history=history)
    receipt = decide(now, TOKYO, policy, channel=Channel.SMS, history=history, transactional=True)

    assert marketing.verdict is Verdict.SKIP
    assert receipt == Plan(Verdict.SEND, send_at=now)


# --- send-time optimisation ---------------------------------------------------------------------


def _opens(timezone: str, *hours: int) -> list[datetime]:
    return [at(timezone, date(2027, 1, day), hour, 10) for day, hour in enumerate(hours, 1)]


def test_best_hour_is_the_most_frequent_local_open_hour() -> None:
    opens = _opens(PARIS, 19, 19, 7, 19, 7)

    assert best_hour(opens, PARIS, minimum=3) == 19
    assert best_hour(opens, TOKYO, minimum=3) == 3  # the same instants on a Tokyo clock
    assert best_hour(opens[:2], PARIS, minimum=3) is None
    assert best_hour(_opens(PARIS, 7, 19, 7, 19), PARIS, minimum=3) == 7  # a tie: the earlier


def test_optimisation_waits_for_the_customers_best_hour() -> None:
    policy = rules(send_time_optimization=True)
    now = at(PARIS, date(2027, 1, 15), 10)

    decision = decide(now, PARIS, policy, opens=_opens(PARIS, 19, 19, 19))

    assert decision.send_at == at(PARIS, date(2027, 1, 15), 19)
    assert decision.reason == "best time to send"


def test_optimisation_falls_back_to_the_tenants_hour_without_enough_opens() -> None:
    policy = rules(send_time_optimization=True, default_send_hour=11)
    now = at(NEW_YORK, date(2027, 1, 15), 10)

    decision = decide(now, NEW_YORK, policy, opens=_opens(NEW_YORK, 19, 19))

    assert decision.send_at == at(NEW_YORK, date(2027, 1, 15), 11)


def test_optimisation_without_any_hour_sends_now() -> None:
    now = at(NEW_YORK, date(2027, 1, 15), 10)

    decision = decide(now, NEW_YORK, rules(send_time_optimization=True))

    assert decision == Plan(Verdict.SEND, send_at=now)


def test_optimisation_starts_from_the_end_of_quiet_hours() -> None:
    policy = rules(send_time_optimization=True, default_send_hour=10)
    now = at(TOKYO, date(2027, 1, 15), 22)

    decision = decide(now, TOKYO, policy)

    assert decision.send_at == at(TOKYO, date(2027, 1, 16), 10)  # not 08:00, not tonight


def test_optimisation_never_picks_a_quiet_hour() -> None:
    policy = rules(send_time_optimization=True)
    now = at(PARIS, date(2027, 1, 15), 10)

    decision = decide(now, PARIS, policy, opens=_opens(PARIS, 23, 23, 23))

    assert decision == Plan(Verdict.SEND, send_at=now)


def test_optimisation_does_not_wait_beyond_its_window() -> None:
    policy = rules(send_time_optimization=True, sto_window=timedelta(hours=6))
    now = at(PARIS, date(2027, 1, 15), 10)

    too_far = decide(now, PARIS, policy, opens=_opens(PARIS, 19, 19, 19))
    near = decide(now, PARIS, policy, opens=_opens(PARIS, 15, 15, 15))

    assert too_far.send_at == now
    assert near.send_at == at(PARIS, date(2027, 1, 15), 15)


def test_optimisation_at_the_best_hour_itself_sends_now() -> None:
    policy = rules(send_time_optimization=True, default_send_hour=10)
    now = at(PARIS, date(2027, 1, 15), 10)

    assert decide(now, PARIS, policy).send_at == now
