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
import logging
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from importlib import resources

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


def _optional(value: int | None) -> str:
    return "" if value is None else str(value)


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
        gets its own (``snapshot_guard``) so a slow refresh never opens the bid path's breaker."""
        self._redis = redis
        self._window = window_minutes
        self._guard = guard
        self._snapshot_guard = snapshot_guard or guard
        self._prefix = prefix
        self._script = redis.register_script(_SCRIPT)
        self._spend: dict[str, SpendView] = {}
        self._refresher: asyncio.Task[None] | None = None
        self._queued: list[_QueuedReservation] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def reserve(
        self, user_key: str | None, now: datetime, slates: Sequence[Sequence[LedgerCandidate]]
    ) -> list[int | None]:
        """Queued for the next round trip, which carries every reservation queued in this
        event-loop tick: the script takes them in order, each as atomically as alone."""
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
        if not self._queued:
            loop.call_soon(self._send_queued)
        self._queued.append((request, answer))
        return await answer

    def _send_queued(self) -> None:
        batch, self._queued = self._queued, []
        task = asyncio.create_task(self._reserve_batch(batch), name="ledger-reserve")
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _reserve_batch(self, batch: list[_QueuedReservation]) -> None:
        """One script call for the batch; every caller gets its answer or the call's error.

        Runs on its own task, so a caller giving up (its bid's deadline) neither cancels the
        others' round trip nor counts against the breaker."""
        requests = b"[" + b",".join(request for request, _ in batch) + b"]"
        args: list[str | int | bytes] = [self._prefix, "reserve", self._window, requests]
        try:
            answers = await self._guard.call(lambda: self._script(keys=[], args=args))
        except asyncio.CancelledError:  # shutting down
            for _, answer in batch:
                answer.cancel()
            raise
        except Exception as error:  # DependencyUnavailable, mostly: each bid answers no-bid
            for _, answer in batch:
                if not answer.done():
                    answer.set_exception(error)
            return
        for (_, answer), taken in zip(batch, answers, strict=True):
            if not answer.done():  # its caller gave up
                answer.set_result([index - 1 if index else None for index in taken])

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
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
        # Reservations already sent: their bids are waiting for the answers.
        await asyncio.gather(*self._sending, return_exceptions=True)
