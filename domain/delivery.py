"""Intelligent delivery: whether a message may go now, later, or not at all.

Every send, from a journey or an activation, goes through ``plan``. All of it is in the
customer's own time zone (``zoneinfo``, so a daylight-saving change moves nothing):

* suppressed address (unsubscribe, bounce, spam report, SMS STOP): skip
* fatigue: ``fatigue_max`` messages in the last 7 days on any channel: skip
* frequency cap: ``daily_caps[channel]`` messages on the customer's calendar day: skip
* quiet hours: inside ``[quiet_start, quiet_end)`` local time: wait for ``quiet_end``
* send-time optimisation: wait for the customer's best hour (most opens), else the tenant's
  default hour, if it comes within ``sto_window``
Transactional messages skip the caps, the fatigue rule, quiet hours and optimisation; nothing
skips a suppression.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field

from domain.journeys import Channel, Template

WEEK = timedelta(days=7)
_UTC = ZoneInfo("UTC")


class DeliveryPolicy(BaseModel):
    """A tenant's rules (defaults below are the platform's)."""

    model_config = ConfigDict(frozen=True)

    quiet_start: time | None = time(21, 0)
    quiet_end: time | None = time(8, 0)
    daily_caps: dict[Channel, int] = Field(
        default_factory=lambda: {Channel.EMAIL: 2, Channel.SMS: 1, Channel.PUSH: 3}
    )
    fatigue_max: int | None = Field(default=10, gt=0, description="messages per 7 days")
    send_time_optimization: bool = False
    default_send_hour: int | None = Field(default=None, ge=0, le=23)
    sto_window: timedelta = Field(default=timedelta(hours=24))
    min_opens_for_sto: int = Field(default=3, gt=0)


class Verdict(StrEnum):
    SEND = "send"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Plan:
    verdict: Verdict
    send_at: datetime | None = None  # SEND: now or later (UTC)
    reason: str = ""  # why it waits or is skipped


@dataclass(frozen=True, slots=True)
class Sent:
    """One earlier message, as the rules need it."""

    channel: Channel
    at: datetime


def zone(name: str) -> ZoneInfo:
    """The customer's zone; an unknown name falls back to UTC rather than failing a send."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_day(moment: datetime, timezone: str) -> date:
    return moment.astimezone(zone(timezone)).date()


def _in_quiet_hours(local: time, start: time, end: time) -> bool:
    if start <= end:
        return start <= local < end
    return local >= start or local < end  # the window crosses midnight


def next_local(after: datetime, at: time, tz: ZoneInfo) -> datetime:
    """The first moment strictly after ``after`` when the local clock reaches ``at`` (in UTC).

    On the day the clocks skip ``at`` (spring forward) that is the moment they jump past it;
    on the day ``at`` comes twice (fall back), whichever of the two is the first after
    ``after``, so a customer woken by the second 02:10 still waits for the second 02:30.
    """
    start = after.astimezone(_UTC)
    day = start.astimezone(tz).date()
    for offset in range(3):
        wall = datetime.combine(day + timedelta(days=offset), at, tzinfo=tz)
        later = [
            moment
            for moment in (clock_reaches(wall.replace(fold=0)), clock_reaches(wall.replace(fold=1)))
            if moment > start
        ]
        if later:
            return min(later)
    raise AssertionError("unreachable: a wall time recurs within three days")


def clock_reaches(wall: datetime) -> datetime:
    """When the clock reaches ``wall``: the wall time itself or, if the clocks skip it, the
    instant they jump. Neither fold of a skipped time will do: fold=1 falls before the jump,
    while the clock still reads earlier, fold=0 as far past it as ``wall`` is into the gap."""
    moment = wall.astimezone(_UTC)
    if moment.astimezone(wall.tzinfo).replace(tzinfo=None) == wall.replace(tzinfo=None):
        return moment
    # zoneinfo does not expose its transitions, but they fall on whole seconds: bisect.
    low = math.floor(wall.replace(fold=1).astimezone(_UTC).timestamp())  # before the jump
    high = math.ceil(wall.replace(fold=0).astimezone(_UTC).timestamp())  # after it
    before = datetime.fromtimestamp(low, wall.tzinfo).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, wall.tzinfo).utcoffset() == before:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, _UTC)


def best_hour(opens: Sequence[datetime], timezone: str, minimum: int) -> int | None:
    """The local hour the customer opened messages at most often, once there are enough."""
    if len(opens) < minimum:
        return None
    tz = zone(timezone)
    hours = Counter(moment.astimezone(tz).hour for moment in opens)
    return min(hours.items(), key=lambda item: (-item[1], item[0]))[0]


def plan(
    *,
    policy: DeliveryPolicy,
    channel: Channel,
    now: datetime,
    timezone: str,
    suppressed: bool,
    transactional: bool,
    history: Sequence[Sent],
    opens: Sequence[datetime] = (),
) -> Plan:
    if suppressed:
        return Plan(Verdict.SKIP, reason="suppressed")
    if transactional:
        return Plan(Verdict.SEND, send_at=now)
    tz = zone(timezone)
    if policy.fatigue_max is not None:
        recent = sum(1 for sent in history if now - sent.at < WEEK)
        if recent >= policy.fatigue_max:
            return Plan(Verdict.SKIP, reason=f"fatigue: {recent} messages in 7 days")

    send_at = now
    reason = ""
    if policy.quiet_start is not None and policy.quiet_end is not None:
        local = now.astimezone(tz).time()
        if _in_quiet_hours(local, policy.quiet_start, policy.quiet_end):
            send_at = next_local(now, policy.quiet_end, tz)
            reason = "quiet hours"
    if policy.send_time_optimization:
        hour = best_hour(opens, timezone, policy.min_opens_for_sto)
        hour = hour if hour is not None else policy.default_send_hour
        if hour is not None:
            best = next_local(send_at - timedelta(microseconds=1), time(hour), tz)
            quiet_ok = (
                policy.quiet_start is None
                or policy.quiet_end is None
                or not (_in_quiet_hours(time(hour), policy.quiet_start, policy.quiet_end))
            )
            if best - now <= policy.sto_window and quiet_ok:
                send_at = best
                reason = "best time to send"

    cap = policy.daily_caps.get(channel)
    if cap is not None:
        day = send_at.astimezone(tz).date()
        same_day = sum(
            1
            for sent in history
            if sent.channel is channel and sent.at.astimezone(tz).date() == day
        )
        if same_day >= cap:
            return Plan(Verdict.SKIP, reason=f"daily cap: {same_day} {channel} messages on {day}")
    return Plan(Verdict.SEND, send_at=send_at, reason=reason)


# --- the store every send is checked against and recorded in (adapters implement it) ----------


@dataclass(frozen=True, slots=True)
class SendRecord:
    key: str
    status: str  # sending, sent, failed, skipped (then delivered, opened... from webhooks)
    vendor: str = ""
    vendor_message_id: str | None = None


class DeliveryStore(Protocol):
    async def policy(self, tenant_id: str) -> DeliveryPolicy: ...

    async def suppressed(
        self, tenant_id: str, channel: Channel, address: str, now: datetime
    ) -> bool: ...

    async def recent_sends(
        self, tenant_id: str, customer_id: str, since: datetime
    ) -> list[Sent]: ...

    async def opens(self, tenant_id: str, customer_id: str, since: datetime) -> list[datetime]: ...

    async def send_record(self, key: str) -> SendRecord | None: ...

    async def begin_send(self, key: str, details: dict[str, Any]) -> SendRecord:
        """Record the send as 'sending' under ``key``, or return the record already there."""
        ...

    async def finish_send(
        self, key: str, status: str, vendor: str, vendor_message_id: str | None
    ) -> None: ...

    async def suppress(
        self,
        tenant_id: str,
        channel: Channel,
        address: str,
        reason: str,
        expires_at: datetime | None = None,
    ) -> None: ...

    async def vendor_overrides(self, tenant_id: str) -> dict[str, Any]:
        """The tenant's own vendor accounts, overlaid on the platform's (empty: none)."""
        ...


# --- one message through the rules, as a workflow delivers it (workflows.delivery) ---------
# Here rather than in the workflow module: the sandbox rebuilds a workflow module's classes for
# every run, and these pass through it.


@dataclass(frozen=True)
class Message:
    tenant_id: str
    customer_id: str
    channel: Channel
    template: Template
    transactional: bool
    idempotency_key: str
    journey_id: str | None = None
    node_id: str | None = None
    context_event_id: str | None = None


@dataclass(frozen=True)
class Delivered:
    status: str  # sent, sent_earlier, skipped, failed
    detail: str = ""
    vendor_message_id: str | None = None

    def describe(self) -> str:
        if self.status == "sent_earlier":
            return f"sent earlier ({self.detail})"
        return f"{self.status}: {self.detail}" if self.detail else self.status
