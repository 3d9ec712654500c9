"""The delivery ledger's rules, and their in-process implementation for embedded mode.

Rules (the Redis implementation in ``adapters/cache/ledger.lua`` keeps exactly these):

* Taking a candidate counts one impression against the user's caps for the campaign, in the
  clock hour and the UTC day of the bid.
* It reserves the bid's price against the campaign's budgets, in the minute of the bid. A
  candidate fits if spent + reserved (last ``window`` minutes) + price stays within the total
  budget, and spent today + reserved + price within the daily budget.
* A win or billing notice books the clearing price as spend and frees the reservation; a loss
  frees the reservation and gives the impression back to the caps. Whichever settles a bid
  first wins; each (bid id, notice kind) counts once.
* A reservation whose notice never comes lapses with its minute after ``window`` minutes.
* A notice whose spend takes the campaign past its total budget, or its daily budget on the
  bid's day, is reported over budget (the spend is booked all the same: the impression was
  bought). Budgets are the ones the campaign's latest reservation was checked against, taken
  or not.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from domain.bidding.ports import (
    LedgerCandidate,
    NoticeKind,
    NoticeOutcome,
    SettledNotice,
    SpendView,
)

# Notices older than NOTICE_MAX_AGE are refused. The ledger remembers settled notices for
# NOTICE_MEMORY, a day longer, so it can always tell a replay from a first delivery and still
# holds the budgets a late notice is judged against, whatever the skew between clocks.
NOTICE_MAX_AGE = timedelta(days=1)
NOTICE_MEMORY = NOTICE_MAX_AGE + timedelta(days=1)
_NOTHING_SPENT = SpendView()


def user_key(user_id: str) -> str:
    """A short stable pseudonym for a user: caps and notice URLs never carry the raw id."""
    return hashlib.blake2b(user_id.encode(), digest_size=10).hexdigest()


def hour_bucket(moment: datetime) -> str:
    return f"{moment.year:04d}{moment.month:02d}{moment.day:02d}{moment.hour:02d}"


def day_bucket(moment: datetime) -> str:
    return f"{moment.year:04d}{moment.month:02d}{moment.day:02d}"


def minute_bucket(moment: datetime) -> int:
    return int(moment.timestamp() // 60)


class InMemoryLedger:
    """One process's ledger: exact because the event loop runs one reservation at a time."""

    def __init__(self, window_minutes: int) -> None:
        self._window = window_minutes
        self._caps: dict[tuple[str, str, str], int] = defaultdict(int)
        self._spent: dict[str, int] = defaultdict(int)
        self._spent_daily: dict[tuple[str, str], int] = defaultdict(int)
        self._reserved: dict[tuple[str, int], int] = defaultdict(int)
        self._notices: dict[tuple[str, str], datetime] = {}
        self._settled: dict[str, datetime] = {}
        self._today = ""
        self._this_hour = ""
        # Per minute of bids: the buckets' names, and each campaign's reservations in the
        # window. Working them out again for every bid was half of a reservation's cost.
        self._minute = -1
        self._buckets = ("", "")
        self._window_sums: dict[str, int] = {}
        # Per campaign, (budget, daily budget) as its latest reservation was checked against
        # (taken or not), and when: a late notice's spend is judged against them.
        self._budgets: dict[str, tuple[int, int | None, datetime]] = {}

    def _forget_old(self, now: datetime) -> None:
        hour = hour_bucket(now)
        if hour == self._this_hour:
            return
        self._this_hour = hour
        self._today = day_bucket(now)
        keep_hour, keep_day = hour, self._today
        self._caps = defaultdict(
            int,
            {
                key: count
                for key, count in self._caps.items()
                if key[2] in (f"h{keep_hour}", f"d{keep_day}")
            },
        )
        oldest = now - NOTICE_MEMORY
        # A notice may come as late as NOTICE_MEMORY allows: its bid's day must still add up.
        notice_days = {day_bucket(now - timedelta(days=d)) for d in range(NOTICE_MEMORY.days + 1)}
        self._spent_daily = defaultdict(
            int, {key: value for key, value in self._spent_daily.items() if key[1] in notice_days}
        )
        self._budgets = {key: value for key, value in self._budgets.items() if value[2] >= oldest}
        self._notices = {key: at for key, at in self._notices.items() if at >= oldest}
        self._settled = {key: at for key, at in self._settled.items() if at >= oldest}
        first_minute = minute_bucket(now) - self._window + 1
        self._reserved = defaultdict(
            int, {key: value for key, value in self._reserved.items() if key[1] >= first_minute}
        )

    def _reserved_for(self, campaign_id: str, now_minute: int) -> int:
        """Reserved in the window ending at ``now_minute``, the minute ``_bucket_names`` saw."""
        total = self._window_sums.get(campaign_id)
        if total is None:
            total = self._window_sums[campaign_id] = sum(
                self._reserved.get((campaign_id, minute), 0)
                for minute in range(now_minute - self._window + 1, now_minute + 1)
            )
        return total

    def _bucket_names(self, now: datetime, minute: int) -> tuple[str, str]:
        """The hour and day cap buckets of ``now``, worked out once a minute."""
        if minute != self._minute:
            self._forget_old(now)
            self._minute = minute
            self._window_sums = {}
            self._buckets = (f"h{hour_bucket(now)}", f"d{day_bucket(now)}")
        return self._buckets

    async def reserve(
        self, user_key: str | None, now: datetime, slates: Sequence[Sequence[LedgerCandidate]]
    ) -> list[int | None]:
        minute = minute_bucket(now)
        hour, day = self._bucket_names(now, minute)
        chosen: list[int | None] = []
        for slate in slates:
            taken: int | None = None
            for index, candidate in enumerate(slate):
                campaign = candidate.campaign_id
                capped = candidate.cap_per_hour is not None or candidate.cap_per_day is not None
                if capped:
                    if user_key is None:
                        continue
                    if candidate.cap_per_hour is not None and (
                        self._caps.get((campaign, user_key, hour), 0) >= candidate.cap_per_hour
                    ):
                        continue
                    if candidate.cap_per_day is not None and (
                        self._caps.get((campaign, user_key, day), 0) >= candidate.cap_per_day
                    ):
                        continue
                reserved = self._reserved_for(campaign, minute)
                committed = reserved + candidate.price_micros
                # Checked budgets are remembered whether they fit or not: a budget lowered
                # below what is spent refuses every bid, and late notices must be judged
                # against it, not the budget of the last bid that fitted.
                self._budgets[campaign] = (
                    candidate.budget_micros,
                    candidate.daily_budget_micros,
                    now,
                )
                if self._spent.get(campaign, 0) + committed > candidate.budget_micros:
                    continue
                if candidate.daily_budget_micros is not None and (
                    self._spent_daily.get((campaign, day[1:]), 0) + committed
                    > candidate.daily_budget_micros
                ):
                    continue
                if user_key is not None:
                    self._caps[(campaign, user_key, hour)] += 1
                    self._caps[(campaign, user_key, day)] += 1
                self._reserved[(campaign, minute)] += candidate.price_micros
                self._window_sums[campaign] = committed
                taken = index
                break
            chosen.append(taken)
        return chosen

    async def settle(self, notice: SettledNotice) -> NoticeOutcome:
        now = notice.bid_time
        if (notice.bid_id, notice.kind) in self._notices:
            return NoticeOutcome(first_of_its_kind=False, spend_recorded_micros=0)
        self._notices[(notice.bid_id, notice.kind)] = now
        if notice.bid_id in self._settled:
            return NoticeOutcome(first_of_its_kind=True, spend_recorded_micros=0)
        self._settled[notice.bid_id] = now
        campaign = notice.campaign_id
        reservation = (campaign, minute_bucket(notice.bid_time))
        if reservation in self._reserved:
            self._reserved[reservation] = max(
                0, self._reserved[reservation] - notice.bid_price_micros
            )
            self._window_sums.pop(campaign, None)
        if notice.kind == NoticeKind.LOSS:
            if notice.user_key is not None:
                for bucket in (f"h{hour_bucket(now)}", f"d{day_bucket(now)}"):
                    key = (campaign, notice.user_key, bucket)
                    if self._caps.get(key, 0) > 0:
                        self._caps[key] -= 1
            return NoticeOutcome(first_of_its_kind=True, spend_recorded_micros=0)
        amount = notice.clearing_price_micros or 0
        day = (campaign, day_bucket(notice.bid_time))
        self._spent[campaign] += amount
        self._spent_daily[day] += amount
        limits = self._budgets.get(campaign)
        over = (
            amount > 0
            and limits is not None
            and (
                self._spent[campaign] > limits[0]
                or (limits[1] is not None and self._spent_daily[day] > limits[1])
            )
        )
        return NoticeOutcome(first_of_its_kind=True, spend_recorded_micros=amount, over_budget=over)

    def spend_view(self, campaign_id: str) -> SpendView:
        spent = self._spent.get(campaign_id)
        if not spent:
            return _NOTHING_SPENT
        return SpendView(
            spent_micros=spent,
            spent_today_micros=self._spent_daily.get((campaign_id, self._today), 0),
        )
