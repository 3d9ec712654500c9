"""Test-side implementations of the bid pipeline's ports, and a pipeline built from them.

Like httpx's test transport: real implementations of the protocol, small enough to read. The
ledger and the scorer are the production ones (in-process ledger, CoLaNet via the batcher).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from domain.analytics import AnalyticsEvent, EventType
from domain.bidding.catalog import Catalog
from domain.bidding.features import UserFeatures
from domain.bidding.ledger import InMemoryLedger
from domain.bidding.notices import NoticeSigner
from domain.bidding.pipeline import BidPipeline, PipelineConfig
from domain.bidding.ports import DeliveryLedger, FloatMatrix, Scorer, Scores
from domain.campaigns import Campaign
from domain.money import FxTable
from domain.profiles import UserProfile
from inference.batcher import InferenceBatcher
from inference.providers import make_provider

NOTICE_KEY = b"test-notice-key-0123456789"
BASE_URL = "http://127.0.0.1:8080"
FX = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27}


class FixedClock:
    def __init__(self, now: datetime = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)) -> None:
        self.current = now
        self.mono = 1_000.0

    def now(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        return self.mono


class StaticProfiles:
    """Profiles from a dict: the database and caches are tested on their own."""

    def __init__(self, profiles: Iterable[UserProfile] = ()) -> None:
        self._profiles = {(p.tenant_id, p.user_id): UserFeatures.of(p) for p in profiles}
        self.lookups = 0

    async def get_profiles(
        self, user_id: str, tenant_ids: Collection[str]
    ) -> dict[str, UserFeatures]:
        self.lookups += 1
        return {
            tenant: self._profiles[(tenant, user_id)]
            for tenant in tenant_ids
            if (tenant, user_id) in self._profiles
        }


@dataclass
class RecordingSink:
    events: list[AnalyticsEvent] = field(default_factory=list)

    def emit(self, event: AnalyticsEvent) -> None:
        self.events.append(event)

    def of_type(self, kind: EventType) -> list[AnalyticsEvent]:
        return [event for event in self.events if event.event_type is kind]


class RowCountingScorer:
    """The production scorer, counting the feature rows it is asked to score."""

    def __init__(self, inner: Scorer) -> None:
        self._inner = inner
        self.rows: list[int] = []
        self.last: Scores | None = None

    async def score(self, features: FloatMatrix) -> Scores:
        self.rows.append(features.shape[0])
        self.last = await self._inner.score(features)
        return self.last


@dataclass
class PipelineKit:
    pipeline: BidPipeline
    clock: FixedClock
    ledger: DeliveryLedger
    sink: RecordingSink
    scorer: RowCountingScorer
    profiles: StaticProfiles
    signer: NoticeSigner


def build_pipeline(
    campaigns: Iterable[Campaign],
    models_dir: Path,
    *,
    profiles: Iterable[UserProfile] = (),
    max_candidates: int = 16,
    seed: int = 1,
) -> PipelineKit:
    clock = FixedClock()
    ledger = InMemoryLedger(window_minutes=10)
    sink = RecordingSink()
    scorer = RowCountingScorer(
        InferenceBatcher(make_provider("numpy", models_dir), max_batch=64, max_wait_us=0)
    )
    store = StaticProfiles(profiles)
    signer = NoticeSigner(NOTICE_KEY, BASE_URL)
    catalog = Catalog.build(list(campaigns), default_seat="ce-seat")
    counter = itertools.count(1)
    pipeline = BidPipeline(
        catalog=lambda: catalog,
        profiles=store,
        ledger=ledger,
        scorer=scorer,
        events=sink,
        signer=signer,
        fx=FxTable(FX),
        clock=clock,
        random=random.Random(seed),
        new_id=lambda: f"id-{next(counter)}",
        config=PipelineConfig(max_candidates=max_candidates, default_seat="ce-seat"),
        node_id="test-node",
    )
    return PipelineKit(pipeline, clock, ledger, sink, scorer, store, signer)
