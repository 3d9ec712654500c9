"""Timeouts, retries and circuit breaking for every call that leaves the process.

One ``Guard`` per dependency. The hot path uses a guard without retries (a retry would not fit
in a bid's time budget); background work retries with exponential backoff and jitter. An open
breaker fails fast with ``DependencyUnavailable`` instead of waiting on a dead service.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pybreaker
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from adapters import metrics
from domain.errors import DependencyUnavailable

T = TypeVar("T")

log = logging.getLogger(__name__)


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
    ) -> None:
        """``failures``: what the dependency's client raises when the dependency fails (timeouts
        are always failures). Anything else is a bug on our side and propagates as it is."""
        self.dependency = dependency
        self._timeout = timeout_s
        self._attempts = attempts
        self._failures: tuple[type[BaseException], ...] = (*failures, TimeoutError)
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=failures_to_open,
            reset_timeout=reset_after_s,
            name=dependency,
            listeners=[_LogStateChanges()],
            # A caller giving up (its bid's deadline passed) says nothing about the dependency:
            # counting it as a failure let one slow burst of bids open the breaker for good.
            exclude=[asyncio.CancelledError],
        )

    @property
    def is_open(self) -> bool:
        return bool(self.breaker.current_state == pybreaker.STATE_OPEN)

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run ``operation`` under the timeout, breaker and retry policy."""
        if self._attempts <= 1:
            return await self._once(operation)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential_jitter(initial=0.05, max=2.0),
            retry=retry_if_exception_type(DependencyUnavailable),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._once(operation)
        raise AssertionError("unreachable: tenacity reraises the last failure")

    async def _once(self, operation: Callable[[], Awaitable[T]]) -> T:
        try:
            with self.breaker.calling():
                async with asyncio.timeout(self._timeout):
                    return await operation()
        except pybreaker.CircuitBreakerError as error:
            metrics.dependency_errors.labels(self.dependency).inc()
            raise DependencyUnavailable(self.dependency, "circuit open") from error
        except self._failures as error:
            metrics.dependency_errors.labels(self.dependency).inc()
            raise DependencyUnavailable(self.dependency, type(error).__name__) from error
