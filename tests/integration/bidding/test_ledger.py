"""The ledger contract, held by the in-process ledger and the Redis one alike."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from importlib import resources

import pytest
import redis.asyncio as aioredis

from adapters.cache.ledger import RedisLedger
from adapters.cache.redis_client import redis_guard
from adapters.resilience import Guard
from domain.bidding.ledger import NOTICE_MEMORY, InMemoryLedger
from domain.bidding.ports import DeliveryLedger, LedgerCandidate, NoticeKind, SettledNotice
from domain.errors import DependencyUnavailable
from tests.support.services import PrivateRedis

NOW = datetime(2026, 11, 28, 14, 30, 5, tzinfo=UTC)
WINDOW = 10


def candidate(
    campaign: str = "c1",
    price: int = 1_000,
    per_hour: int | None = None,
    per_day: int | None = None,
    budget: int = 10**9,
    daily: int | None = None,
) -> LedgerCandidate:
    return LedgerCandidate(campaign, price, per_hour, per_day, budget, daily)


def notice(
    kind: str,
    bid_id: str,
    *,
    price: int = 1_000,
    clearing: int | None = 800,
    user: str | None = "u1",
    at: datetime = NOW,
) -> SettledNotice:
    return SettledNotice(
        kind=kind,
        bid_id=bid_id,
        campaign_id="c1",
        user_key=user,
        bid_time=at,
        bid_price_micros=price,
        clearing_price_micros=clearing,
        loss_reason=102 if kind == NoticeKind.LOSS else None,
    )


@pytest.fixture(params=["in_memory", "redis"])
async def ledger(request: pytest.FixtureRequest) -> AsyncIterator[DeliveryLedger]:
    if request.param == "in_memory":
        yield InMemoryLedger(window_minutes=WINDOW)
        return
    url = request.getfixturevalue("redis_url")
    client = aioredis.from_url(url)
    yield RedisLedger(client, window_minutes=WINDOW, guard=redis_guard("redis", 1.0))
    await client.aclose()


async def test_hourly_cap_stops_the_third_impression(ledger: DeliveryLedger) -> None:
    slate = [[candidate(per_hour=2)]]
    taken = [await ledger.reserve("u1", NOW, slate) for _ in range(3)]
    assert taken == [[0], [0], [None]]


async def test_hourly_cap_resets_next_hour_but_daily_cap_holds(ledger: DeliveryLedger) -> None:
    slate = [[candidate(per_hour=1, per_day=2)]]
    assert await ledger.reserve("u1", NOW, slate) == [0]
    assert await ledger.reserve("u1", NOW, slate) == [None]
    later = NOW + timedelta(hours=1)
    assert await ledger.reserve("u1", later, slate) == [0]
    assert await ledger.reserve("u1", later + timedelta(hours=1), slate) == [None]


async def test_caps_are_per_user(ledger: DeliveryLedger) -> None:
    slate = [[candidate(per_hour=1)]]
    assert await ledger.reserve("u1", NOW, slate) == [0]
    assert await ledger.reserve("u2", NOW, slate) == [0]


async def test_unknown_user_only_takes_uncapped_offers(ledger: DeliveryLedger) -> None:
    slate = [[candidate("capped", per_day=5), candidate("open")]]
    assert await ledger.reserve(None, NOW, slate) == [1]


async def test_capped_first_choice_falls_through_to_the_next(ledger: DeliveryLedger) -> None:
    slate = [[candidate("c1", per_hour=1), candidate("c2")]]
    assert await ledger.reserve("u1", NOW, slate) == [0]
    assert await ledger.reserve("u1", NOW, slate) == [1]


async def test_budget_admits_exactly_what_it_can_pay_for(ledger: DeliveryLedger) -> None:
    slate = [[candidate(price=1_000, budget=10_000)]]
    taken = [(await ledger.reserve(f"u{i}", NOW, slate))[0] for i in range(15)]
    assert taken.count(0) == 10
    assert taken[10:] == [None] * 5


async def test_daily_budget_holds_within_the_total(ledger: DeliveryLedger) -> None:
    slate = [[candidate(price=1_000, budget=100_000, daily=3_000)]]
    taken = [(await ledger.reserve(f"u{i}", NOW, slate))[0] for i in range(5)]
    assert taken == [0, 0, 0, None, None]


async def test_two_imps_of_one_request_share_the_counters(ledger: DeliveryLedger) -> None:
    slates = [[candidate(per_hour=1)], [candidate(per_hour=1), candidate("c2")]]
    assert await ledger.reserve("u1", NOW, slates) == [0, 1]


async def test_win_books_clearing_price_once(ledger: DeliveryLedger) -> None:
    assert await ledger.reserve("u1", NOW, [[candidate()]]) == [0]
    first = await ledger.settle(notice(NoticeKind.WIN, "b1"))
    again = await ledger.settle(notice(NoticeKind.WIN, "b1"))
    billing = await ledger.settle(notice(NoticeKind.BILLING, "b1"))
    assert (first.first_of_its_kind, first.spend_recorded_micros) == (True, 800)
    assert (again.first_of_its_kind, again.spend_recorded_micros) == (False, 0)
    assert (billing.first_of_its_kind, billing.spend_recorded_micros) == (True, 0)


async def test_settled_spend_frees_the_reservation(ledger: DeliveryLedger) -> None:
    slate = [[candidate(price=1_000, budget=2_000)]]
    assert await ledger.reserve("u1", NOW, slate) == [0]
    assert await ledger.reserve("u2", NOW, slate) == [0]
    assert await ledger.reserve("u3", NOW, slate) == [None]
    await ledger.settle(notice(NoticeKind.WIN, "b1", price=1_000, clearing=500))
    # 500 spent + 1,000 still reserved leaves room for one more bid of 500 but not of 1,000.
    assert await ledger.reserve("u3", NOW, slate) == [None]
    assert await ledger.reserve("u3", NOW, [[candidate(price=500, budget=2_000)]]) == [0]


async def test_loss_gives_back_the_cap_and_the_reservation(ledger: DeliveryLedger) -> None:
    slate = [[candidate(price=1_000, budget=1_000, per_hour=1)]]
    assert await ledger.reserve("u1", NOW, slate) == [0]
    assert await ledger.reserve("u1", NOW, slate) == [None]
    outcome = await ledger.settle(notice(NoticeKind.LOSS, "b1", clearing=None))
    assert outcome.first_of_its_kind
    assert await ledger.reserve("u1", NOW, slate) == [0]


async def test_reservations_lapse_after_the_window(ledger: DeliveryLedger) -> None:
    slate = [[candidate(price=1_000, budget=1_000)]]
    assert await ledger.reserve("u1", NOW, slate) == [0]
    assert await ledger.reserve("u2", NOW, slate) == [None]
    assert await ledger.reserve("u2", NOW + timedelta(minutes=WINDOW), slate) == [0]


async def test_each_bid_sees_the_reservations_of_its_own_window(ledger: DeliveryLedger) -> None:
    slate = [[candidate(price=1_000, budget=2_000)]]
    later = NOW + timedelta(minutes=2)
    assert await ledger.reserve("u1", NOW, slate) == [0]
    assert await ledger.reserve("u2", later, slate) == [0]
    assert await ledger.reserve("u3", later, slate) == [None]
    await ledger.settle(notice(NoticeKind.LOSS, "b1", clearing=None, at=NOW))
    assert await ledger.reserve("u3", later, slate) == [0]
    # Back in the first minute, the window ends there: the later two are not in it.
    assert await ledger.reserve("u4", NOW, slate) == [0]
    assert await ledger.reserve("u5", later, slate) == [None]


@pytest.mark.parametrize(("budget", "daily"), [(2_000, None), (10**9, 2_000)])
async def test_a_notice_that_outlived_its_reservation_reports_the_overspend(
    ledger: DeliveryLedger, budget: int, daily: int | None
) -> None:
    slate = [[candidate(price=1_000, budget=budget, daily=daily)]]
    later = NOW + timedelta(minutes=WINDOW)  # the first bid's reservation has lapsed
    assert await ledger.reserve("u1", NOW, slate) == [0]
    assert await ledger.reserve("u2", later, slate) == [0]
    assert await ledger.reserve("u3", later, slate) == [0]

    in_time = [
        await ledger.settle(notice(NoticeKind.WIN, bid, clearing=1_000, at=later))
        for bid in ("b2", "b3")
    ]
    late = await ledger.settle(notice(NoticeKind.WIN, "b1", clearing=800, at=NOW))

    assert [outcome.over_budget for outcome in in_time] == [False, False]  # exactly the budget
    assert (late.spend_recorded_micros, late.over_budget) == (800, True)  # booked all the same
    again = await ledger.settle(notice(NoticeKind.BILLING, "b1", clearing=800, at=NOW))
    assert (again.spend_recorded_micros, again.over_budget) == (0, False)


async def test_a_late_notice_adds_up_on_its_bid_s_day_after_midnight(
    ledger: DeliveryLedger,
) -> None:
    evening = datetime(2026, 11, 28, 23, 40, tzinfo=UTC)
    slate = [[candidate(price=1_000, daily=2_000)]]
    assert await ledger.reserve("u1", evening, slate) == [0]
    night = evening + timedelta(minutes=WINDOW + 5)  # 23:55: the first reservation lapsed
    assert await ledger.reserve("u2", night, slate) == [0]
    assert await ledger.reserve("u3", night, slate) == [0]
    for bid in ("b2", "b3"):
        await ledger.settle(notice(NoticeKind.WIN, bid, clearing=1_000, at=night))
    # A bid after midnight: the ledger moves on to a new day (and tidies the old ones).
    assert await ledger.reserve("u4", night + timedelta(minutes=10), slate) == [0]

    late = await ledger.settle(notice(NoticeKind.WIN, "b1", clearing=800, at=evening))

    assert late.over_budget  # 2,800 spent on the 28th against a daily 2,000


async def test_a_budget_lowered_below_the_spend_is_what_late_notices_are_judged_against(
    ledger: DeliveryLedger,
) -> None:
    before = [[candidate(price=1_000, budget=10_000)]]
    for user in ("u1", "u2", "u3"):
        assert await ledger.reserve(user, NOW, before) == [0]
    for bid in ("b1", "b2"):
        await ledger.settle(notice(NoticeKind.WIN, bid, clearing=1_000))
    # The marketer lowers the budget to 1,500: 2,000 is spent, so nothing fits any more.
    later = NOW + timedelta(minutes=1)
    assert await ledger.reserve("u4", later, [[candidate(price=1_000, budget=1_500)]]) == [None]

    late = await ledger.settle(notice(NoticeKind.WIN, "b3", clearing=1_000))

    assert late.over_budget  # 3,000 against the 1,500 now in force, not the 10,000 bid under


def test_the_redis_script_remembers_as_long_as_the_ledger_rules_say() -> None:
    script = resources.files("adapters.cache").joinpath("ledger.lua").read_text()
    assert f"local NOTICE_MEMORY_S = {int(NOTICE_MEMORY.total_seconds())}\n" in script


async def test_a_loss_is_never_over_budget(ledger: DeliveryLedger) -> None:
    slate = [[candidate(price=1_000, budget=1_000)]]
    assert await ledger.reserve("u1", NOW, slate) == [0]
    await ledger.settle(notice(NoticeKind.WIN, "b0", clearing=1_000))
    outcome = await ledger.settle(notice(NoticeKind.LOSS, "b1", clearing=None))
    assert (outcome.first_of_its_kind, outcome.over_budget) == (True, False)


_WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from datetime import datetime, UTC
    from adapters.cache.ledger import RedisLedger
    from adapters.cache.redis_client import connect_redis, redis_guard
    from domain.bidding.ports import LedgerCandidate

    async def main(url, name):
        client = connect_redis(url, pool_size=16, timeout_s=5)
        ledger = RedisLedger(client, window_minutes=10, guard=redis_guard("redis", 5))
        now = datetime(2026, 11, 28, 14, 30, tzinfo=UTC)
        capped = LedgerCandidate("capped", 1, 3, None, 10**9, None)
        budgeted = LedgerCandidate("budget", 1_000, None, None, 50_000, None)

        async def one(i):
            return await ledger.reserve("same-user", now, [[capped], [budgeted]])

        results = await asyncio.gather(*(one(i) for i in range(200)))
        print(sum(r[0] == 0 for r in results), sum(r[1] == 0 for r in results))
        await client.aclose()

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


async def test_caps_and_budget_hold_across_two_processes(redis_url: str) -> None:
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", _WORKER, redis_url, name, stdout=asyncio.subprocess.PIPE
        )
        for name in ("a", "b")
    ]
    outputs = [await process.communicate() for process in processes]
    assert all(process.returncode == 0 for process in processes)
    capped = budget = 0
    for stdout, _ in outputs:
        first, second = map(int, stdout.split())
        capped += first
        budget += second
    assert capped == 3
    assert budget == 50


@pytest.fixture
async def private_ledger() -> AsyncIterator[tuple[RedisLedger, aioredis.Redis, PrivateRedis]]:
    """A Redis ledger on a redis-server of the test's own: its command counts are the test's."""
    server = PrivateRedis().start()
    client = aioredis.from_url(server.url)
    ledger = RedisLedger(client, window_minutes=WINDOW, guard=redis_guard("redis", 1.0))
    yield ledger, client, server
    await ledger.stop()
    await client.aclose()
    server.stop()


async def test_concurrent_reservations_share_a_round_trip_and_still_add_up(
    private_ledger: tuple[RedisLedger, aioredis.Redis, PrivateRedis],
) -> None:
    ledger, client, _ = private_ledger
    await ledger.reserve("warm-up", NOW, [[candidate("other")]])  # the script is loaded
    calls_before = await script_calls(client)

    slate = [[candidate(price=1_000, budget=10_000, per_hour=1)]]
    taken = await asyncio.gather(*(ledger.reserve(f"u{i % 12}", NOW, slate) for i in range(30)))

    assert await script_calls(client) - calls_before == 1
    # In order, as if one after the other: 10 fit the budget, 12 users with a cap of 1 each.
    assert [answer[0] for answer in taken] == [0] * 10 + [None] * 20


async def test_reservations_sharing_a_round_trip_all_learn_it_failed(
    private_ledger: tuple[RedisLedger, aioredis.Redis, PrivateRedis],
) -> None:
    ledger, _, server = private_ledger
    await ledger.reserve("warm-up", NOW, [[candidate("other")]])
    server.stop()

    outcomes = await asyncio.gather(
        *(ledger.reserve(f"u{i}", NOW, [[candidate()]]) for i in range(5)), return_exceptions=True
    )

    assert [type(outcome) for outcome in outcomes] == [DependencyUnavailable] * 5
    assert str(outcomes[0]).count("unavailable") == 1, str(outcomes[0])


async def script_calls(client: aioredis.Redis) -> int:
    stats = await client.info("commandstats")
    return sum(
        int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval")
    )


async def test_a_bid_that_gave_up_before_the_call_takes_nothing(
    private_ledger: tuple[RedisLedger, aioredis.Redis, PrivateRedis],
) -> None:
    ledger, _, _ = private_ledger
    slate = [[candidate(price=1_000, budget=1_000)]]  # room for one
    gave_up = asyncio.ensure_future(ledger.reserve("u1", NOW, slate))
    waiting = asyncio.ensure_future(ledger.reserve("u2", NOW, slate))
    await asyncio.sleep(0)  # both queued
    gave_up.cancel()

    assert await waiting == [0]  # the budget was still there for it
    assert gave_up.cancelled()


async def test_stopping_answers_what_is_queued_and_refuses_more(
    private_ledger: tuple[RedisLedger, aioredis.Redis, PrivateRedis],
) -> None:
    ledger, _, _ = private_ledger
    queued = asyncio.ensure_future(ledger.reserve("u1", NOW, [[candidate()]]))
    await asyncio.sleep(0)

    await ledger.stop()

    assert queued.done()
    assert await queued == [0]
    with pytest.raises(DependencyUnavailable):
        await ledger.reserve("u2", NOW, [[candidate()]])


def test_a_retrying_guard_is_refused(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    retrying = Guard("redis", timeout_s=1.0, attempts=2)
    with pytest.raises(ValueError, match="one attempt"):
        RedisLedger(client, window_minutes=WINDOW, guard=retrying)


async def test_a_bid_that_gave_up_during_the_call_gives_its_reservation_back(
    private_ledger: tuple[RedisLedger, aioredis.Redis, PrivateRedis],
) -> None:
    ledger, _, server = private_ledger
    await ledger.reserve("warm-up", NOW, [[candidate("other")]])
    slate = [[candidate(price=1_000, budget=1_000, per_hour=1)]]  # one impression, one user
    server.pause()  # the call goes out and hangs, well within the guard's second
    gave_up = asyncio.ensure_future(asyncio.wait_for(ledger.reserve("u1", NOW, slate), 0.1))
    await asyncio.sleep(0.3)
    server.resume()  # the script runs now, for a caller that is gone

    with pytest.raises(TimeoutError):
        await gave_up
    # The budget and the user's cap come back: the same user can be bid on again.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while await ledger.reserve("u1", NOW, slate) != [0]:
        assert loop.time() < deadline, "the reservation was not given back"
        await asyncio.sleep(0.05)
