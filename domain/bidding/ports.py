"""What the bid pipeline needs from the outside world, as protocols.

Adapters implement them against Redis, the database and the inference providers; tests and the
embedded mode use the in-process implementations in this package. The pipeline never knows which.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol

import numpy as np
from numpy.typing import NDArray

from domain.bidding.features import UserFeatures
from domain.profiles import UserProfile

FloatMatrix = NDArray[np.float32]


class Clock(Protocol):
    def now(self) -> datetime:
        """Wall-clock time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards; deadlines use it."""
        ...


class RandomSource(Protocol):
    def random(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Scores:
    """CoLaNet's two heads for a batch of feature rows."""

    offer: FloatMatrix  # (n, OFFER_SLOTS), each in [0, 1]
    variant: FloatMatrix  # (n, VARIANT_SLOTS), each in [0, 1]


class Scorer(Protocol):
    async def score(self, features: FloatMatrix) -> Scores:
        """Score ``features`` of shape (n, FEATURE_DIMS), float32. Rows come back in order."""
        ...


class ProfileSource(Protocol):
    """Where profiles live for good (the database)."""

    async def load_profiles(
        self, user_id: str, tenant_ids: Collection[str]
    ) -> dict[str, UserProfile]:
        """The user's profile in each tenant that has one, keyed by tenant id."""
        ...


class ProfileStore(Protocol):
    """Profiles for the hot path, cached with their feature blocks.

    Unavailable caches degrade to the next tier, they do not fail the bid.
    """

    async def get_profiles(
        self, user_id: str, tenant_ids: Collection[str]
    ) -> dict[str, UserFeatures]:
        """The user's features in each tenant that knows them, keyed by tenant id."""
        ...


class IdSource(Protocol):
    def __call__(self) -> str:
        """A new unique id (bid ids, event ids)."""
        ...


class LedgerCandidate(NamedTuple):
    """One offer in an impression's ranked slate, with the limits the ledger must hold.

    A tuple, not a frozen dataclass: the Redis ledger reads a whole slate, 16 of these a bid,
    and a frozen dataclass's ``__init__`` costs three times a tuple's.
    """

    campaign_id: str
    price_micros: int  # what one impression would cost at this bid, in micro-units of currency
    cap_per_hour: int | None
    cap_per_day: int | None
    budget_micros: int
    daily_budget_micros: int | None


@dataclass(frozen=True, slots=True)
class SpendView:
    """A campaign's spend as last seen; pacing reads it, the ledger enforces the hard limits."""

    spent_micros: int = 0
    spent_today_micros: int = 0


class DeliveryLedger(Protocol):
    """Frequency caps and budgets, held exactly under concurrency across processes."""

    async def reserve(
        self, user_key: str | None, now: datetime, slates: Sequence[Sequence[LedgerCandidate]]
    ) -> list[int | None]:
        """For each slate (best first) take the first candidate within caps and budget.

        Taking one counts an impression against the user's caps and reserves its price against
        the campaign's budgets until its notice arrives. Returns the chosen index per slate.
        ``user_key`` None means an unidentified user: only uncapped candidates can be taken.
        """
        ...

    async def settle(self, notice: SettledNotice) -> NoticeOutcome:
        """Apply a win, billing or loss notice once per (bid id, notice type)."""
        ...

    def spend_view(self, campaign_id: str) -> SpendView:
        """Recent spend, from memory: never waits on I/O."""
        ...


class NoticeKind:
    WIN = "win"
    BILLING = "billing"
    LOSS = "loss"


@dataclass(frozen=True, slots=True)
class SettledNotice:
    """A verified notice, ready for the ledger."""

    kind: str  # NoticeKind
    bid_id: str
    campaign_id: str
    user_key: str | None
    bid_time: datetime
    bid_price_micros: int
    clearing_price_micros: int | None  # win and billing
    loss_reason: int | None  # loss


@dataclass(frozen=True, slots=True)
class NoticeOutcome:
    first_of_its_kind: bool  # False: a duplicate (bid id, type); nothing changed
    spend_recorded_micros: int  # 0 unless this notice booked the spend
    # The spend it booked took the campaign past a budget (total or the bid's day), as the
    # campaign's last reservation knew them: a notice that outlived its reservation.
    over_budget: bool = False
