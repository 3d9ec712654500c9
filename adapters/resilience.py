"""Timeouts, retries and circuit breaking for every call that leaves the process.

One ``Guard`` per dependency. The hot path uses a guard without retries (a retry would not fit
in a bid's time budget); background work retries with exponential backoff and jitter, or after
the delay the dependency asked for (``TryAgainLater``, an HTTP 429's Retry-After). An open
breaker fails fast with ``CircuitOpen`` instead of waiting on a dead service, and is not retried:
the next attempt would be refused the same way.

    DependencyUnavailable (domain)   timed out, failed, or refused after the attempts
    └── CircuitOpen                  refused without a call: the breaker is open
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pybreaker
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
)

from adapters import metrics
from domain.errors import DependencyUnavailable

T = TypeVar("T")

log = logging.getLogger(__name__)


class CircuitOpen(DependencyUnavailable):
    """The dependency's breaker is open: the call was refused without being made."""

    def __init__(self, dependency: str) -> None:
        super().__init__(dependency, "circuit open")


class TryAgainLater(Exception):
    """Raised by an operation when the dependency answered but asked to be tried again (an HTTP
    429 or 5xx), after ``retry_after_s`` if it said. A failure like a timeout for the breaker."""

    def __init__(self, detail: str, retry_after_s: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


def _retryable(error: BaseException) -> bool:
    return isinstance(error, DependencyUnavailable) and not isinstance(error, CircuitOpen)


class _LogStateChanges(pybreaker.CircuitBreakerListener):
    """One log line when a dependency is cut off or back, not one per refused call."""

    def state_change(self, breaker: pybreaker.CircuitBreaker, old: object, new: object) -> None:
        before, after = getattr(old, "name", str(old)), getattr(new, "name", str(new))
        # Half-open trials that fail again reopen the circuit; only the first opening and the
        # final closing are news.
        if before == pybreaker.STATE_CLOSED and after == pybreaker.STATE_OPEN:
            log.warning("%s failing: circuit open, calls refused for a while", breaker.name)
        elif before != pybreaker.STATE_CLOSED and after == pybreaker.STATE_CLOSED:
            log.info("%s answering again: circuit closed", breaker.name)


class Guard:
    def __init__(
        self,
        dependency: str,
        *,
        timeout_s: float,
        failures_to_open: int = 5,
        reset_after_s: float = 10.0,
        attempts: int = 1,
        failures: tuple[type[BaseException], ...] = (OSError,),
        refusals: tuple[type[BaseException], ...] = (),
        backoff_initial_s: float = 0.05,
        backoff_max_s: float = 2.0,
        retry_after_max_s: float = 30.0,
        total_s: float | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``failures``: what the dependency's client raises when the dependency fails (timeouts
        and ``TryAgainLater`` are always failures). ``refusals``: what the operation raises when
        the dependency answered and refused this one request (a bad address): passed through,
        never retried, and counted as the dependency working. Anything else is a bug on our
        side and propagates as it is.

        With ``attempts`` > 1, a failed attempt is tried again after the delay the dependency
        asked for (at most ``retry_after_max_s``), else after an exponential backoff with jitter
        between ``backoff_initial_s`` and ``backoff_max_s``; no attempt starts whose wait would
        end past ``total_s``. ``sleep`` and ``clock`` are how waiting happens and time passes
        (tests record the waits instead of sitting through them)."""
        self.dependency = dependency
        self._timeout = timeout_s
        self.attempts = attempts
        self._failures: tuple[type[BaseException], ...] = (*failures, TryAgainLater, TimeoutError)
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._retry_after_max_s = retry_after_max_s
        self._total_s = total_s
        self._sleep = sleep
        self._clock = clock
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=failures_to_open,
            reset_timeout=reset_after_s,
            name=dependency,
            listeners=[_LogStateChanges()],
            # A caller giving up (its bid's deadline passed) says nothing about the dependency:
            # counting it as a failure let one slow burst of bids open the breaker for good.
            exclude=[asyncio.CancelledError, *refusals],  # type: ignore[arg-type]
        )

    @property
    def is_open(self) -> bool:
        return bool(self.breaker.current_state == pybreaker.STATE_OPEN)

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run ``operation`` under the timeout, breaker and retry policy."""
        if self.attempts <= 1:
            return await self._once(operation)
        started = self._clock()

        def stop(state: RetryCallState) -> bool:
            if state.attempt_number >= self.attempts:
                return True
            if self._total_s is None:
                return False
            return self._clock() - started + (state.upcoming_sleep or 0.0) >= self._total_s

        retrying = AsyncRetrying(
            stop=stop,
            wait=self._wait,
            retry=retry_if_exception(_retryable),
            sleep=self._sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._once(operation)
        raise AssertionError("unreachable: tenacity reraises the last failure")

    def _wait(self, state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome is not None else None
        asked = failure.__cause__ if failure is not None else None
        if isinstance(asked, TryAgainLater) and asked.retry_after_s is not None:
            return min(max(asked.retry_after_s, 0.0), self._retry_after_max_s)
        # Exponential, with up to one initial step of jitter so that callers failing together
        # do not come back together.
        step: float = self._backoff_initial_s * 2.0 ** (state.attempt_number - 1)
        return min(step + random.uniform(0, self._backoff_initial_s), self._backoff_max_s)

    async def _once(self, operation: Callable[[], Awaitable[T]]) -> T:
        try:
            with self.breaker.calling():
                async with asyncio.timeout(self._timeout):
                    return await operation()
        except pybreaker.CircuitBreakerError as error:
            metrics.dependency_errors.labels(self.dependency).inc()
            raise CircuitOpen(self.dependency) from error
        except self._failures as error:
            metrics.dependency_errors.labels(self.dependency).inc()
            raise DependencyUnavailable(self.dependency, type(error).__name__) from error
