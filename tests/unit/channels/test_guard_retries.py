"""The guard's retry policy as senders use it: the vendor's Retry-After, backoff, bounds."""

from __future__ import annotations

import pytest

from adapters.resilience import CircuitOpen, Guard, TryAgainLater
from domain.errors import DependencyUnavailable


class Refused(Exception):
    """The dependency answered and refused this one call."""


class RecordedSleeps(list[float]):
    """Waits recorded, not sat through; the clock they move is the guard's."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


class Script:
    """An operation that raises the given outcomes in turn, then returns "ok"."""

    def __init__(self, *outcomes: BaseException) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.outcomes:
            raise self.outcomes.pop(0)
        return "ok"


def guard(
    sleeps: RecordedSleeps,
    *,
    attempts: int = 4,
    failures_to_open: int = 100,
    backoff_max_s: float = 8.0,
    retry_after_max_s: float = 20.0,
    total_s: float | None = None,
) -> Guard:
    return Guard(
        "vendor",
        timeout_s=5,
        attempts=attempts,
        failures_to_open=failures_to_open,
        refusals=(Refused,),
        backoff_initial_s=0.5,
        backoff_max_s=backoff_max_s,
        retry_after_max_s=retry_after_max_s,
        total_s=total_s,
        sleep=sleeps,
        clock=sleeps.clock,
    )


async def test_retry_waits_what_the_dependency_asked() -> None:
    sleeps = RecordedSleeps()
    script = Script(TryAgainLater("429", 3.0), TryAgainLater("429", 1.5))

    assert await guard(sleeps).call(script) == "ok"

    assert sleeps == [3.0, 1.5]
    assert script.calls == 3


async def test_retry_after_capped() -> None:
    sleeps = RecordedSleeps()

    await guard(sleeps, retry_after_max_s=10.0).call(Script(TryAgainLater("429", 3600.0)))

    assert sleeps == [10.0]


async def test_backoff_grows_with_jitter_when_nothing_was_asked() -> None:
    sleeps = RecordedSleeps()
    script = Script(TryAgainLater("503"), OSError("reset"), TimeoutError())

    await guard(sleeps).call(script)

    assert len(sleeps) == 3
    for attempt, slept in enumerate(sleeps):
        base = 0.5 * 2**attempt
        assert base <= slept <= base + 0.5


async def test_backoff_never_exceeds_its_maximum() -> None:
    sleeps = RecordedSleeps()

    with pytest.raises(DependencyUnavailable):
        await guard(sleeps, attempts=8, backoff_max_s=2.0).call(
            Script(*[TryAgainLater("503") for _ in range(8)])
        )

    assert len(sleeps) == 7
    assert max(sleeps) == 2.0


async def test_attempts_bounded_and_last_failure_kept() -> None:
    sleeps = RecordedSleeps()
    last = TryAgainLater("503 again", 1.0)
    script = Script(TryAgainLater("503", 1.0), TryAgainLater("503", 1.0), last, TryAgainLater("x"))

    with pytest.raises(DependencyUnavailable) as raised:
        await guard(sleeps, attempts=3).call(script)

    assert script.calls == 3
    assert raised.value.__cause__ is last


async def test_no_attempt_starts_past_the_total_time() -> None:
    sleeps = RecordedSleeps()
    script = Script(TryAgainLater("429", 4.0), TryAgainLater("429", 4.0), TryAgainLater("429", 4.0))

    with pytest.raises(DependencyUnavailable):
        await guard(sleeps, total_s=10.0).call(script)

    # 4 s, then 4 s more: the third wait would end past 10 s, so no third retry.
    assert sleeps == [4.0, 4.0]
    assert script.calls == 3


async def test_refusal_passes_through_without_retry() -> None:
    sleeps = RecordedSleeps()
    script = Script(Refused("bad address"))

    with pytest.raises(Refused):
        await guard(sleeps).call(script)

    assert script.calls == 1
    assert sleeps == []


async def test_refusals_do_not_open_the_breaker() -> None:
    sleeps = RecordedSleeps()
    protected = guard(sleeps, attempts=1, failures_to_open=2)

    for _ in range(5):
        with pytest.raises(Refused):
            await protected.call(Script(Refused("bad address")))

    assert not protected.is_open
    assert await protected.call(Script()) == "ok"


async def test_open_breaker_refuses_at_once_without_retrying() -> None:
    sleeps = RecordedSleeps()
    protected = guard(sleeps, attempts=1, failures_to_open=2)
    for _ in range(2):
        with pytest.raises(DependencyUnavailable):
            await protected.call(Script(TryAgainLater("503")))
    assert protected.is_open
    retrying = guard(sleeps, attempts=4)
    retrying.breaker = protected.breaker
    script = Script()

    with pytest.raises(CircuitOpen):
        await retrying.call(script)

    assert script.calls == 0
    assert sleeps == []
