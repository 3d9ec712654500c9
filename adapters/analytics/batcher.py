"""In-process analytics: events buffered in memory, written to the store in batches.

The bid path calls ``emit`` and moves on; a background task turns the buffer into inserts of
``batch_size`` events (or whatever is waiting every ``flush_interval_s``) in a worker thread, so
the event loop keeps serving bids while ClickHouse writes.

A full batch is written at least ``min_insert_interval_s`` after the previous insert: past
``batch_size`` events in that time, the batch grows instead of the inserts coming faster (the
timer still writes every ``flush_interval_s``). Each insert makes a part that ClickHouse
must later merge, and that cost is per insert, not per row (see ``adapters.analytics.schema``).
Measured in `up` under wrk (one core, process CPU per bid, chdb's threads included): 414 µs
when inserts of ~100 events followed each other every ~40 ms (ClickHouse's merge threads took
a third of the core), 244 µs with one insert per 5 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Sequence
from typing import Any

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    wait_exponential,
    wait_random,
)

from adapters import metrics
from adapters.analytics.buffer import ColumnBuffer, encoded_or_dropped
from adapters.analytics.schema import COLUMNS, BatchEncoder, EncodedBatch, event_row
from adapters.analytics.store import AnalyticsStore
from domain.analytics import AnalyticsEvent

logger = logging.getLogger(__name__)

# Events encoded per turn of the event loop: about half a millisecond of work.
ENCODE_SLICE = 500


class AnalyticsBatcher:
    """An ``EventSink`` over an ``AnalyticsStore``.

    ``emit`` is for the event loop's thread (the bid path); it never awaits and never blocks.
    At most ``queue_max`` events wait, the oldest dropped and counted first (``ColumnBuffer``).
    No deduplication here: an in-process event is handed over once and never redelivered.
    """

    def __init__(
        self,
        store: AnalyticsStore,
        batch_size: int,
        flush_interval_s: float,
        queue_max: int,
        *,
        min_insert_interval_s: float = 0.0,
        max_insert_rows: int = 50_000,
        drain_timeout_s: float = 30.0,
        retry_initial_s: float = 0.2,
        retry_max_s: float = 10.0,
    ) -> None:
        if batch_size <= 0 or queue_max <= 0 or flush_interval_s <= 0:
            raise ValueError("batch_size, queue_max and flush_interval_s must be positive")
        if min_insert_interval_s < 0 or max_insert_rows < batch_size:
            raise ValueError(
                "min_insert_interval_s must not be negative, max_insert_rows not below batch_size"
            )
        self._store = store
        self._batch_size = batch_size
        self._min_insert_interval_s = min_insert_interval_s
        self._max_insert_rows = max_insert_rows
        self._last_insert = -math.inf
        self._flush_interval_s = flush_interval_s
        self._drain_timeout_s = drain_timeout_s
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._buffer = ColumnBuffer(queue_max, len(COLUMNS))
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._abandon = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Events waiting in memory, not counting a batch being written."""
        return len(self._buffer)

    def emit(self, event: AnalyticsEvent) -> None:
        # Turned into its row now, not at insert time: see ColumnBuffer.
        row = encoded_or_dropped(event_row, event)
        if row is None:
            return
        if self._buffer.append(row) >= self._batch_size and not self._wake.is_set():
            self._wake.set()

    def start(self) -> None:
        """Starts the flushing task on the running loop."""
        if self._task is not None:
            raise RuntimeError("the analytics batcher is already started")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="analytics-batcher")

    async def stop(self) -> None:
        """Writes what is left, giving up (and counting the drops) after ``drain_timeout_s``."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), self._drain_timeout_s)
        except TimeoutError:
            # The store is still failing: stop retrying, let the task count what it holds.
            self._abandon.set()
            await task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time() + self._flush_interval_s
        while not self._stopping.is_set():
            timeout = next_tick - loop.time()
            if len(self._buffer) < self._batch_size and timeout > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            if loop.time() < next_tick:  # a size wake: not sooner than the interval allows
                await self._hold_off(loop, next_tick)  # returns at once when stopping
            if self._stopping.is_set():
                break
            ticked = loop.time() >= next_tick
            # A size wake writes one batch and leaves the rest to grow; the timer writes
            # whatever is waiting.
            try:
                await self._flush(partial=ticked)
            except Exception:
                # Whatever went wrong, the writer must outlive it or analytics stop for good.
                logger.exception("analytics: batcher flush failed")
            # The timer counts from the last insert, whoever made it: counted from its own
            # last tick, it fired just after each size-triggered insert and wrote the few
            # events that came in during it, doubling the inserts under steady load.
            if ticked:
                next_tick = loop.time() + self._flush_interval_s
            else:
                next_tick = max(next_tick, self._last_insert + self._flush_interval_s)
        while self._buffer and not self._abandon.is_set():
            await self._flush(partial=True)
        self._buffer.discard_all("at shutdown")

    async def _hold_off(self, loop: asyncio.AbstractEventLoop, next_tick: float) -> None:
        """Until ``min_insert_interval_s`` after the last insert, the timer's next tick (which
        writes at its own pace), or stopping, whichever comes first."""
        until = min(self._last_insert + self._min_insert_interval_s, next_tick)
        remaining = until - loop.time()
        if remaining > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), remaining)

    async def _flush(self, *, partial: bool) -> None:
        """Write what is waiting now: everything for the timer (``partial``), one batch for a
        size wake. Events that arrive during these inserts wait for the next pass: under
        steady load a pass that chased them would never end, writing a small insert each
        time one returned."""
        loop = asyncio.get_running_loop()
        due = len(self._buffer)
        if not partial:
            if due < self._batch_size:
                return
            due = min(due, self._max_insert_rows)
        while due > 0 and not self._abandon.is_set():
            batch = self._buffer.take(min(due, self._max_insert_rows))
            taken = len(batch[0])
            if not taken:  # dropped meanwhile to make room (ColumnBuffer)
                return
            due -= taken
            self._last_insert = loop.time()
            await self._write(batch)

    async def _write(self, columns: Sequence[Sequence[Any]]) -> None:
        try:
            batch = await self._encode(columns)
        except Exception:
            # Rows are checked on emit, so this is a bug: the batch is lost, counted and logged
            # like any other drop, and the writer goes on.
            metrics.analytics_events_dropped.inc(len(columns[0]))
            logger.exception("analytics: could not encode a batch of %d events", len(columns[0]))
            return
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(Exception),
                # Jitter keeps several processes from retrying against ClickHouse in step.
                wait=wait_exponential(multiplier=self._retry_initial_s, max=self._retry_max_s)
                + wait_random(0, self._retry_initial_s),
                stop=self._should_give_up,
                sleep=self._backoff,
                before_sleep=self._log_retry,
                reraise=True,
            ):
                with attempt:
                    await asyncio.to_thread(self._store.insert_encoded, batch)
        except Exception:
            metrics.analytics_events_dropped.inc(batch.count)
            logger.exception("analytics: gave up on a batch of %d events", batch.count)
            return
        metrics.analytics_events_batched.inc(batch.count)

    @staticmethod
    async def _encode(columns: Sequence[Sequence[Any]]) -> EncodedBatch:
        """Encoded here, a slice between bids: on the insert's worker thread the encoding held
        the interpreter for tens of milliseconds a batch, and every bid waited it out. The
        payload is assembled a column at a time for the same reason (one orjson call over a
        50,000-event batch took ~11 ms)."""
        encoder = BatchEncoder()
        for start in range(0, len(columns[0]), ENCODE_SLICE):
            encoder.add([column[start : start + ENCODE_SLICE] for column in columns])
            await asyncio.sleep(0)
        members: list[bytes] = []
        for member in encoder.columns():
            members.append(member)
            await asyncio.sleep(0)
        return encoder.finish(members)

    def _should_give_up(self, retry_state: RetryCallState) -> bool:
        return self._abandon.is_set()

    async def _backoff(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        if not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), seconds)
        if self._stopping.is_set():
            # Draining: retry soon; the drain deadline, not the backoff, bounds the wait.
            deadline = min(deadline, loop.time() + self._retry_initial_s)
        remaining = deadline - loop.time()
        if remaining > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._abandon.wait(), remaining)

    def _log_retry(self, retry_state: RetryCallState) -> None:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        logger.warning(
            "analytics: insert failed (attempt %d), retrying: %s",
            retry_state.attempt_number,
            error,
        )
