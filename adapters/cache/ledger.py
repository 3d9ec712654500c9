"""The delivery ledger in Redis: exact across every bidder process.

The rules live in ``domain.bidding.ledger`` (and its in-process twin for embedded mode); the
script in ``ledger.lua`` applies them atomically. The reservations of the bids a process has in
flight in one event-loop tick go in one script call (bids move through the pipeline together,
released by the inference batcher), as the inference batcher does for CoLaNet passes. Pacing
reads a spend snapshot that a background task refreshes every second, so it never adds a round
trip to a bid.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import datetime
from importlib import resources
from typing import Any

import orjson
import redis.asyncio as aioredis

from adapters.resilience import Guard
from domain.bidding.ledger import NOTICE_MEMORY, day_bucket, hour_bucket, minute_bucket
from domain.bidding.ports import LedgerCandidate, NoticeOutcome, SettledNotice, SpendView
from domain.errors import DependencyUnavailable

log = logging.getLogger(__name__)

_SCRIPT = resources.files(__package__).joinpath("ledger.lua").read_text()
PREFIX = "ce:"


# A reservation's part of the script's JSON argument, and where its answer goes.
_QueuedReservation = tuple[bytes, "asyncio.Future[list[int | None]]"]
# What one reservation took: minute, hour, day, user key, campaign, price (micros).
_TakenReservation = tuple[int, str, str, str, str, int]
# Reservations in one script call at most: Redis runs a script alone, and one call timing out
# no-bids all of its bids.
MAX_RESERVATIONS_PER_CALL = 64


def _optional(value: int | None) -> str:
    return "" if value is None else str(value)


def _taken(request: bytes, taken: Sequence[int]) -> list[_TakenReservation]:
    """What the script took for ``request`` (as reserve encoded it), given its answer."""
    minute, hour, day, user, slates = orjson.loads(request)
    return [
        (minute, hour, day, user, slates[slate][index - 1][0], slates[slate][index - 1][1])
        for slate, index in enumerate(taken)
        if index
    ]


class RedisLedger:
    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        window_minutes: int,
        guard: Guard,
        snapshot_guard: Guard | None = None,
        prefix: str = PREFIX,
    ) -> None:
        """``guard`` protects the bid path's calls; the spend snapshot, which can wait longer,
        gets its own (``snapshot_guard``) so a slow refresh never opens the bid path's breaker.

        ``guard`` must not retry: a reservation that timed out may have been taken, and taking
        a whole batch of them twice is worse than a no-bid."""
        if guard.attempts > 1:
            raise ValueError("the ledger's guard must make one attempt: reserve is not idempotent")
        self._redis = redis
        self._window = window_minutes
        self._guard = guard
        self._snapshot_guard = snapshot_guard or guard
        self._prefix = prefix
        self._script = redis.register_script(_SCRIPT)
        self._spend: dict[str, SpendView] = {}
        self._refresher: asyncio.Task[None] | None = None
        self._queued: list[_QueuedReservation] = []
        self._flush_loop: asyncio.AbstractEventLoop | None = None  # where a send is scheduled
        self._sending: set[asyncio.Task[None]] = set()
        self._stopped = False

    async def reserve(
        self, user_key: str | None, now: datetime, slates: Sequence[Sequence[LedgerCandidate]]
    ) -> list[int | None]:
        """Queued for the next script call, which carries every reservation queued until the
        event loop gets to it: the script takes them in order, the whole call atomically."""
        if self._stopped:
            raise DependencyUnavailable(self._guard.dependency, "ledger stopped")
        request = orjson.dumps(
            (
                minute_bucket(now),
                hour_bucket(now),
                day_bucket(now),
                user_key or "",
                [
                    [
                        (
                            candidate.campaign_id,
                            candidate.price_micros,
                            candidate.cap_per_hour,
                            candidate.cap_per_day,
                            candidate.budget_micros,
                            candidate.daily_budget_micros,
                        )
                        for candidate in slate
                    ]
                    for slate in slates
                ],
            )
        )
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[list[int | None]] = loop.create_future()
        self._queued.append((request, answer))
        if self._flush_loop is not loop:
            self._flush_loop = loop
            # A context of its own: the sending task is nobody's bid.
            loop.call_soon(self._send_queued, context=contextvars.Context())
        return await answer

    def _send_queued(self) -> None:
        self._flush_loop = None
        queued, self._queued = self._queued, []
        for start in range(0, len(queued), MAX_RESERVATIONS_PER_CALL):
            batch = queued[start : start + MAX_RESERVATIONS_PER_CALL]
            task = asyncio.create_task(self._reserve_batch(batch), name="ledger-reserve")
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _reserve_batch(self, batch: list[_QueuedReservation]) -> None:
        """One script call for the batch; every caller still waiting gets its answer or a
        DependencyUnavailable of its own.

        Runs on its own task, so a caller giving up (its bid's deadline) does not cancel the
        others' call. A caller gone before the call starts is left out of it; what the call
        took for one gone while it ran is given back (no bid went out), in a call of its own."""
        sent: list[_QueuedReservation] = []

        def call() -> Awaitable[Any]:
            # Built when the guard starts the call, so callers gone by then are left out.
            sent.extend(queued for queued in batch if not queued[1].done())
            requests = b"[" + b",".join(request for request, _ in sent) + b"]"
            args: list[str | int | bytes] = [self._prefix, "reserve", self._window, requests]
            return self._script(keys=[], args=args)

        if all(answer.done() for _, answer in batch):
            return
        try:
            answers = await self._guard.call(call)
            if len(answers) != len(sent):
                raise DependencyUnavailable(self._guard.dependency, "ledger answered short")
        except asyncio.CancelledError:  # the process is shutting down
            self._fail(batch, "shutting down")
            raise
        except Exception as error:  # DependencyUnavailable, mostly: each bid answers no-bid
            # Its reason, not its text: that already reads "<dependency> unavailable: ...".
            reason = error.reason if isinstance(error, DependencyUnavailable) else repr(error)
            self._fail(batch, reason, error)
            return
        unused: list[_TakenReservation] = []
        for (request, answer), taken in zip(sent, answers, strict=True):
            if not answer.done():
                answer.set_result([index - 1 if index else None for index in taken])
            elif any(taken):  # its caller gave up meanwhile
                unused.extend(_taken(request, taken))
        if unused:
            await self._release(unused)

    async def _release(self, unused: list[_TakenReservation]) -> None:
        args: list[str | int | bytes] = [self._prefix, "release", orjson.dumps(unused)]
        try:
            await self._guard.call(lambda: self._script(keys=[], args=args))
        except DependencyUnavailable as error:
            log.warning(
                "%d reservations of bids that gave up not given back (they lapse with the "
                "window): %s",
                len(unused),
                error,
            )

    def _fail(
        self, batch: list[_QueuedReservation], reason: str, cause: Exception | None = None
    ) -> None:
        for _, answer in batch:
            if not answer.done():
                failure = DependencyUnavailable(self._guard.dependency, reason)
                failure.__cause__ = cause
                answer.set_exception(failure)

    async def settle(self, notice: SettledNotice) -> NoticeOutcome:
        moment = notice.bid_time
        args: list[str | int] = [
            self._prefix,
            "settle",
            notice.kind,
            notice.bid_id,
            notice.campaign_id,
            notice.user_key or "",
            minute_bucket(moment),
            hour_bucket(moment),
            day_bucket(moment),
            notice.bid_price_micros,
            _optional(notice.clearing_price_micros),
            int(NOTICE_MEMORY.total_seconds()),
        ]
        first, amount, over = await self._guard.call(lambda: self._script(keys=[], args=args))
        return NoticeOutcome(
            first_of_its_kind=bool(first), spend_recorded_micros=int(amount), over_budget=bool(over)
        )

    def spend_view(self, campaign_id: str) -> SpendView:
        return self._spend.get(campaign_id, SpendView())

    async def refresh_spend(self, campaign_ids: Collection[str], now: datetime) -> None:
        ids = list(campaign_ids)
        if not ids:
            self._spend = {}
            return
        today = day_bucket(now)
        keys = [f"{self._prefix}spent:{c}" for c in ids]
        keys += [f"{self._prefix}spent:{c}:d{today}" for c in ids]
        values = await self._snapshot_guard.call(lambda: self._redis.mget(keys))
        totals, daily = values[: len(ids)], values[len(ids) :]
        self._spend = {
            campaign: SpendView(int(total or 0), int(today_spent or 0))
            for campaign, total, today_spent in zip(ids, totals, daily, strict=True)
        }

    def start(
        self,
        campaign_ids: Callable[[], Collection[str]],
        now: Callable[[], datetime],
        interval_s: float = 1.0,
    ) -> None:
        async def loop() -> None:
            while True:
                try:
                    await self.refresh_spend(campaign_ids(), now())
                except DependencyUnavailable as error:
                    log.warning("spend snapshot not refreshed: %s", error)
                await asyncio.sleep(interval_s)

        self._refresher = asyncio.create_task(loop(), name="ledger-spend-refresh")

    async def stop(self) -> None:
        """Refuse new reservations and answer the ones queued or under way (their bids wait
        for them) while the Redis client is still open."""
        self._stopped = True
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
        if self._queued:
            self._send_queued()
        while self._sending:
            await asyncio.gather(*list(self._sending), return_exceptions=True)
