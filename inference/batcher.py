"""Coalesces concurrent ``score`` calls into one forward pass per event-loop tick (or wait window).

A bidder process runs many agents as coroutines on one event loop. Each bid scores a handful of
candidate rows; run alone, each pays the forward pass's fixed cost (~8 µs at batch 1, ~40 µs at
batch 64 on numpy). The batcher queues rows from every caller and runs them as one batch:

- ``max_wait_us == 0``: the flush is scheduled with ``loop.call_soon``, so it runs after every
  coroutine already ready in this tick has had its turn. Callers that submit together share a
  batch and nobody waits longer than one loop iteration.
- ``max_wait_us > 0``: the first submission arms a ``loop.call_later`` timer; the batch goes when
  it fires or as soon as ``max_batch`` rows are waiting, whichever comes first. asyncio's timers
  resolve to about a millisecond on Linux, so small waits round up towards that.

The forward pass runs inline on the loop: it takes tens of microseconds, less than a hop to a
thread and back would. A batcher belongs to the event loop it is first used on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from domain.bidding.model_shape import OFFER_SLOTS, VARIANT_SLOTS
from domain.bidding.ports import FloatMatrix, Scores
from inference.colanet import as_feature_batch
from inference.providers import Provider

logger = logging.getLogger(__name__)

BatchObserver = Callable[[int, float], None]
"""Told the rows and wall-clock seconds of every forward pass (the lead feeds Prometheus)."""


@dataclass(slots=True)
class _Waiting:
    features: FloatMatrix
    future: asyncio.Future[Scores]


class InferenceBatcher:
    """The bid pipeline's :class:`~domain.bidding.ports.Scorer`, batching over a provider."""

    def __init__(
        self,
        provider: Provider,
        max_batch: int,
        max_wait_us: int,
        on_batch: BatchObserver | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if max_wait_us < 0:
            raise ValueError(f"max_wait_us must not be negative, got {max_wait_us}")
        self._provider = provider
        # The provider refuses bigger batches, so its limit caps ours.
        self._max_batch = min(max_batch, provider.max_batch_size)
        self._max_wait_s = max_wait_us / 1_000_000
        self._on_batch = on_batch
        self._waiting: list[_Waiting] = []
        self._waiting_rows = 0
        self._flush_handle: asyncio.Handle | None = None

    @property
    def max_batch(self) -> int:
        """Rows per forward pass at most: the smaller of the configured and provider limits."""
        return self._max_batch

    async def score(self, features: FloatMatrix) -> Scores:
        # Checked per caller, before queueing: one malformed request must not fail the batch.
        batch = as_feature_batch(features)
        rows = batch.shape[0]
        if rows == 0:
            return Scores(
                offer=np.empty((0, OFFER_SLOTS), np.float32),
                variant=np.empty((0, VARIANT_SLOTS), np.float32),
            )
        if rows > self._max_batch:
            return self._run_alone(batch)

        loop = asyncio.get_running_loop()
        if self._waiting_rows + rows > self._max_batch:
            self._flush()
        future: asyncio.Future[Scores] = loop.create_future()
        self._waiting.append(_Waiting(batch, future))
        self._waiting_rows += rows
        if self._waiting_rows == self._max_batch:
            self._flush()
        elif self._flush_handle is None:
            self._flush_handle = (
                loop.call_later(self._max_wait_s, self._flush)
                if self._max_wait_s > 0
                else loop.call_soon(self._flush)
            )
        return await future

    def _run_alone(self, batch: FloatMatrix) -> Scores:
        """A request bigger than a batch: its own forward passes, ``max_batch`` rows each."""
        parts = [
            self._forward(batch[start : start + self._max_batch])
            for start in range(0, batch.shape[0], self._max_batch)
        ]
        return Scores(
            offer=np.concatenate([part.offer for part in parts]),
            variant=np.concatenate([part.variant for part in parts]),
        )

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        # Callers cancelled while waiting have nobody to read their rows: leave them out.
        live = [waiting for waiting in self._waiting if not waiting.future.done()]
        self._waiting = []
        self._waiting_rows = 0
        if not live:
            return
        batch = (
            live[0].features
            if len(live) == 1
            else np.concatenate([waiting.features for waiting in live])
        )
        try:
            scores = self._forward(batch)
        except Exception as error:
            for waiting in live:
                waiting.future.set_exception(error)
            return
        start = 0
        for waiting in live:
            end = start + waiting.features.shape[0]
            waiting.future.set_result(
                Scores(offer=scores.offer[start:end], variant=scores.variant[start:end])
            )
            start = end

    def _forward(self, batch: FloatMatrix) -> Scores:
        started = time.perf_counter()
        scores = self._provider.predict_batch(batch)
        elapsed = time.perf_counter() - started
        if self._on_batch is not None:
            try:
                self._on_batch(batch.shape[0], elapsed)
            except Exception:
                # Metrics are a side show; a failing observer must not fail the bids it watched.
                logger.exception("inference batch observer failed")
        return scores
