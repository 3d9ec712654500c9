"""The in-process throttle's arithmetic, on a hand-driven clock."""

from __future__ import annotations

import pytest

from adapters.throttle import InProcessThrottle, retry_after_header


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def test_a_burst_then_one_attempt_per_interval() -> None:
    clock = Clock()
    throttle = InProcessThrottle(burst=3, interval_s=60, clock=clock)

    assert [await throttle.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert await throttle.take("k") == pytest.approx(60.0)
    clock.now += 59
    assert await throttle.take("k") == pytest.approx(1.0)
    clock.now += 1
    assert await throttle.take("k") == 0.0
    assert await throttle.take("other key") == 0.0


async def test_an_attempt_given_back_is_not_counted() -> None:
    throttle = InProcessThrottle(burst=2, interval_s=60, clock=Clock())
    for _ in range(10):  # every one signs in: none is counted
        assert await throttle.take("k") == 0.0
        await throttle.give_back("k")
    assert await throttle.take("k") == await throttle.take("k") == 0.0
    assert await throttle.take("k") > 0


async def test_keys_stay_bounded_and_idle_ones_go_first() -> None:
    clock = Clock()
    throttle = InProcessThrottle(burst=1, interval_s=10, clock=clock, max_keys=3)
    for key in ("a", "b", "c"):
        await throttle.take(key)
    clock.now += 5
    await throttle.take("c")  # refused: c waits; a and b too
    clock.now += 6  # a, b and c have come due: all idle
    await throttle.take("d")
    assert await throttle.take("d") > 0  # d itself is remembered
    assert await throttle.take("a") == 0.0


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    assert [retry_after_header(s) for s in (0.01, 1.0, 59.2)] == ["1", "1", "60"]
