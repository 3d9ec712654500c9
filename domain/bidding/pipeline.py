"""One OpenRTB request in, one response (or a reasoned no-bid) out.

    user id -> candidates per imp (format, flight, bcat/badv/seats, geo/device, deals, floors)
            -> profiles of the tenants still in play (L1 -> L2 -> database)
            -> profile targeting, consent -> at most ``max_candidates`` per imp
            -> 256-dim features -> CoLaNet (batched) -> loyalty boost -> price, floor, pacing
            -> ledger: caps and budgets taken atomically, best price first -> response

Caps and budgets are checked once, at the end, in the same atomic step that takes them: a check
earlier in the pipeline would be a second round trip and could still be beaten by a concurrent
request in another process. Analytics events go to a sink that never waits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import overload

import numpy as np
from numpy.typing import NDArray

from domain.analytics import AnalyticsEvent, EventSink, EventType
from domain.bidding.catalog import Candidate, Catalog, RequestFilter, Slate, slate_for_imp
from domain.bidding.features import (
    ANONYMOUS,
    ContextInputs,
    UserFeatures,
    context_inputs,
    context_vector_of,
    feature_rows,
)
from domain.bidding.ledger import user_key as make_user_key
from domain.bidding.model_shape import FEATURE_DIMS
from domain.bidding.notices import NoticeSigner
from domain.bidding.ports import (
    Clock,
    DeliveryLedger,
    IdSource,
    LedgerCandidate,
    ProfileStore,
    RandomSource,
    Scorer,
)
from domain.bidding.pricing import (
    day_fraction,
    loyalty_boost,
    offered_cpm,
    pacing_participation,
)
from domain.money import FxTable, cpm_to_impression_micros
from domain.openrtb import Bid, BidRequest, BidResponse, Imp, SeatBid

FloatVector = NDArray[np.float32]
# Distinct contexts (device type, time zone, placement kind, floor, consent, country) seen in
# one minute; the key holds the minute, so older entries only wait for a clear.
CONTEXT_CACHE_SIZE = 4096


class NoBid(StrEnum):
    """Why a request got no bid, furthest step reached first."""

    UNSUPPORTED_CURRENCY = "unsupported_currency"
    NO_MATCHING_CAMPAIGN = "no_matching_campaign"
    TARGETING = "targeting"
    BELOW_FLOOR = "below_floor"
    PACING = "pacing"
    CAPPED_OR_BUDGET = "capped_or_budget"
    TIMEOUT = "timeout"
    UNAVAILABLE = "dependency_unavailable"


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    max_candidates: int
    default_seat: str


@dataclass(slots=True)
class BidOutcome:
    response: BidResponse | None
    no_bid: NoBid | None
    candidates: int = 0
    bids: list[Bid] = field(default_factory=list)


@dataclass(slots=True)
class _Ranked(Sequence[LedgerCandidate]):
    """An imp's offers that may bid, best price first, as the ledger reads them.

    An offer is a (price, index) pair into the imp's picks; each LedgerCandidate is built when
    the ledger reads it, because the in-process ledger stops at the first that fits, usually
    the first: building one object per candidate up front was ~9 % of a bid's CPU.
    """

    imp_id: str
    slate: Slate
    positions: Sequence[int]  # slate positions of the picked candidates
    first_row: int  # the imp's first row in the feature matrix and the scores
    # (CPM in the response currency, index into positions); rounded only when read, as a
    # bid or a ledger candidate: rounding all 16 was ~4 % of a bid.
    offers: list[tuple[float, int]]

    def candidate(self, rank: int) -> Candidate:
        return self.slate.candidates[self.positions[self.offers[rank][1]]]

    def price(self, rank: int) -> float:
        """The CPM bid, in the response currency, to the precision the response carries."""
        return round(self.offers[rank][0], 4)

    def price_micros(self, rank: int) -> int:
        """One impression at ``price(rank)``, in micro-units of the campaign's currency."""
        return cpm_to_impression_micros(self.price(rank) / self.candidate(rank).fx)

    def row(self, rank: int) -> int:
        return self.first_row + self.offers[rank][1]

    def __len__(self) -> int:
        return len(self.offers)

    def __iter__(self) -> Iterator[LedgerCandidate]:
        # Sequence's own __iter__ indexes until IndexError: slower, and the ledger iterates.
        for rank in range(len(self.offers)):
            yield self._ledger_candidate(rank)

    @overload
    def __getitem__(self, index: int) -> LedgerCandidate: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[LedgerCandidate]: ...

    def __getitem__(self, index: int | slice) -> LedgerCandidate | Sequence[LedgerCandidate]:
        if isinstance(index, slice):
            return [self._ledger_candidate(rank) for rank in range(len(self.offers))[index]]
        return self._ledger_candidate(range(len(self.offers))[index])

    def _ledger_candidate(self, rank: int) -> LedgerCandidate:
        candidate = self.candidate(rank)
        offer = candidate.offer
        return LedgerCandidate(
            campaign_id=offer.campaign_id,
            price_micros=self.price_micros(rank),
            cap_per_hour=offer.cap_per_hour,
            cap_per_day=offer.cap_per_day,
            budget_micros=offer.budget_micros,
            daily_budget_micros=offer.daily_budget_micros,
        )


def _positions(picks: list[int] | slice) -> Sequence[int]:
    """The slate positions ``picks`` selects."""
    return range(picks.start, picks.stop) if isinstance(picks, slice) else picks


def _descending_price(offer: tuple[float, int]) -> float:
    return -offer[0]


class DeadlineExceeded(Exception):
    """The pipeline gave up before taking caps and budgets: answering no-bid is safe."""


class BidPipeline:
    def __init__(
        self,
        *,
        catalog: Callable[[], Catalog],
        profiles: ProfileStore,
        ledger: DeliveryLedger,
        scorer: Scorer,
        events: EventSink,
        signer: NoticeSigner,
        fx: FxTable,
        clock: Clock,
        random: RandomSource,
        new_id: IdSource,
        config: PipelineConfig,
        node_id: str = "",
    ) -> None:
        self._catalog = catalog
        self._profiles = profiles
        self._ledger = ledger
        self._scorer = scorer
        self._events = events
        self._signer = signer
        self._fx = fx
        self._clock = clock
        self._random = random
        self._new_id = new_id
        self._config = config
        self._node_id = node_id
        self._contexts: dict[ContextInputs, FloatVector] = {}

    async def bid(self, request: BidRequest, deadline: float) -> BidOutcome:
        """Answer ``request``; ``deadline`` is on ``clock.monotonic()``.

        Raises DeadlineExceeded when the deadline passes before caps and budgets are taken.

        Each request leaves one analytics event per bid placed, or one no-bid event with its
        reason: the request itself is the ``request_id`` they carry. A separate event per request
        doubled what ClickHouse ingests for every bid without telling anything new.
        """
        user_id = request.buyer_user_id()
        now = self._clock.now()  # the bid's time: its notices' and its events' alike
        outcome = await self._run(request, user_id, deadline, now)
        if outcome.no_bid is not None:
            self._emit(
                EventType.NO_BID,
                now,
                user_id,
                request_id=request.id,
                reason=outcome.no_bid,
                candidates=outcome.candidates,
            )
        for bid in outcome.bids:
            self._emit(
                EventType.BID,
                now,
                user_id,
                campaign_id=bid.cid or "",
                offer_id=bid.crid or "",
                bid_price=bid.price,
                request_id=request.id,
                imp_id=bid.impid,
                bid_id=bid.id,
                deal_id=bid.dealid,
                candidates=outcome.candidates,
            )
        return outcome

    def no_bid_on_timeout(self, request: BidRequest) -> BidOutcome:
        """Record a request that ran out of time (the caller owns the clock that fired)."""
        self._emit(
            EventType.NO_BID,
            self._clock.now(),
            request.buyer_user_id(),
            request_id=request.id,
            reason=NoBid.TIMEOUT,
        )
        return BidOutcome(response=None, no_bid=NoBid.TIMEOUT)

    async def _run(
        self, request: BidRequest, user_id: str | None, deadline: float, now: datetime
    ) -> BidOutcome:
        currency = self._fx.first_known(request.cur)
        if currency is None:
            return BidOutcome(response=None, no_bid=NoBid.UNSUPPORTED_CURRENCY)

        catalog = self._catalog()
        rules = RequestFilter.of(request)
        slates = [
            (imp, slate_for_imp(catalog, imp, rules, currency, self._fx, now))
            for imp in request.imp
        ]
        found = sum(len(slate.candidates) for _, slate in slates)
        if found == 0:
            return BidOutcome(response=None, no_bid=NoBid.NO_MATCHING_CAMPAIGN)

        personal = request.personal_data_allowed()
        profiles: dict[str, UserFeatures] = {}
        if user_id is not None and personal:
            in_play = frozenset().union(*(slate.tenant_set for _, slate in slates))
            profiles = await self._profiles.get_profiles(user_id, in_play)

        limit = self._config.max_candidates
        # Each imp with its slate, the picked candidates and their one tenant (None: several).
        per_imp: list[tuple[Imp, Slate, list[int] | slice, str | None]] = []
        rows = 0
        for imp, slate in slates:
            kept = self._targeted(slate.candidates, profiles)[:limit]
            # A prefix (the common case) indexes the slate's arrays without copying them.
            picks: list[int] | slice = (
                slice(0, len(kept)) if kept and kept[-1] == len(kept) - 1 else kept
            )
            per_imp.append((imp, slate, picks, slate.sole_owner(picks)))
            rows += len(kept)
        if rows == 0:
            return BidOutcome(response=None, no_bid=NoBid.TARGETING, candidates=found)

        features = np.empty((rows, FEATURE_DIMS), dtype=np.float32)
        row = 0
        for imp, slate, picks, sole in per_imp:
            block = slate.offer_block[picks]
            count = block.shape[0]
            if count == 0:
                continue
            floor_usd = imp.bidfloor * (self._fx.rate(imp.bidfloorcur, "USD") or 0.0)
            context = self._context(context_inputs(request, imp, floor_usd, now))
            out = features[row : row + count]
            if sole is not None:
                feature_rows(profiles.get(sole, ANONYMOUS), context, block, out)
            else:  # each tenant's rows see that tenant's profile of the user
                tenants = slate.owners(picks)
                for tenant in set(tenants):
                    mine = [i for i, owner in enumerate(tenants) if owner == tenant]
                    part = np.empty((len(mine), FEATURE_DIMS), dtype=np.float32)
                    feature_rows(profiles.get(tenant, ANONYMOUS), context, block[mine], part)
                    out[mine] = part
            row += count
        scores = await self._scorer.score(features)

        elapsed = day_fraction(now)
        boosts = {tenant: loyalty_boost(user.tier) for tenant, user in profiles.items()}
        ranked: list[_Ranked] = []
        below_floor = paced = 0
        row = 0
        spend_view = self._ledger.spend_view
        # Per candidate in plain Python: at 16 candidates an imp, each numpy call costs more
        # than the arithmetic it would vectorise (py-spy of bench/bid.py (b)).
        for imp, slate, picks, sole in per_imp:
            positions = _positions(picks)
            count = len(positions)
            offered = scores.offer[np.arange(row, row + count), slate.offer_slots[picks]].tolist()
            sole_boost = boosts.get(sole, 1.0) if sole is not None else None
            eligible: list[tuple[float, int]] = []
            for index, score in enumerate(offered):
                candidate = slate.candidates[positions[index]]
                offer = candidate.offer
                boost = sole_boost if sole_boost is not None else boosts.get(offer.tenant_id, 1.0)
                cpm = offered_cpm(offer.fixed_cpm, offer.max_bid, score * boost) * candidate.fx
                if cpm > 0 and cpm >= candidate.floor:
                    eligible.append((cpm, index))
            below_floor += count - len(eligible)
            eligible.sort(key=_descending_price)  # stable: equal prices keep catalog order
            offers: list[tuple[float, int]] = []
            for cpm, index in eligible:
                offer = slate.candidates[positions[index]].offer
                daily_budget = offer.daily_budget_micros
                if daily_budget is not None:
                    spent_today = spend_view(offer.campaign_id).spent_today_micros
                    if spent_today and self._paced_out(spent_today, daily_budget, elapsed):
                        paced += 1
                        continue
                offers.append((cpm, index))
            ranked.append(_Ranked(imp.id, slate, positions, row, offers))
            row += count

        if not any(ranked):
            reason = NoBid.BELOW_FLOOR if below_floor >= paced else NoBid.PACING
            return BidOutcome(response=None, no_bid=reason, candidates=rows)
        if self._clock.monotonic() >= deadline:
            raise DeadlineExceeded

        key = make_user_key(user_id) if user_id is not None and personal else None
        chosen = await self._ledger.reserve(key, now, ranked)
        bids_by_seat: dict[str, list[Bid]] = {}
        bids: list[Bid] = []
        for imp_offers, rank in zip(ranked, chosen, strict=True):
            if rank is None:
                continue
            bid = self._bid(imp_offers, rank, key, now, scores.variant[imp_offers.row(rank)])
            bids.append(bid)
            bids_by_seat.setdefault(imp_offers.candidate(rank).offer.seat, []).append(bid)
        if not bids:
            return BidOutcome(response=None, no_bid=NoBid.CAPPED_OR_BUDGET, candidates=rows)
        response = BidResponse(
            id=request.id,
            seatbid=[SeatBid(seat=seat, bid=group) for seat, group in bids_by_seat.items()],
            bidid=self._new_id(),
            cur=currency,
        )
        return BidOutcome(response=response, no_bid=None, candidates=rows, bids=bids)

    def _paced_out(self, spent_today: int, daily_budget: int, elapsed: float) -> bool:
        """Skip this bid to spread the campaign's daily budget over the day?"""
        participation = pacing_participation(spent_today, daily_budget, elapsed)
        return participation < 1.0 and self._random.random() >= participation

    def _context(self, inputs: ContextInputs) -> FloatVector:
        context = self._contexts.get(inputs)
        if context is None:
            if len(self._contexts) >= CONTEXT_CACHE_SIZE:
                self._contexts.clear()  # the working set refills within a minute
            context = self._contexts[inputs] = context_vector_of(inputs)
        return context

    @staticmethod
    def _targeted(candidates: Sequence[Candidate], profiles: dict[str, UserFeatures]) -> list[int]:
        """Indexes of the candidates whose segment or interest targeting the profile meets."""
        kept: list[int] = []
        for index, candidate in enumerate(candidates):
            if candidate.offer.profile_targeted:
                user = profiles.get(candidate.offer.tenant_id)
                if user is None or not user.known:
                    continue
                targeting = candidate.offer.campaign.targeting
                if targeting.segments and not set(targeting.segments).intersection(user.segments):
                    continue
                if targeting.interests and not set(targeting.interests).intersection(
                    user.interest_names
                ):
                    continue
            kept.append(index)
        return kept

    def _bid(
        self, offers: _Ranked, rank: int, key: str | None, now: datetime, variants: FloatVector
    ) -> Bid:
        candidate = offers.candidate(rank)
        price = offers.price(rank)
        offer = candidate.offer
        creative = offer.creative
        bid_id = self._new_id()
        urls = self._signer.urls(
            bid_id=bid_id,
            campaign_id=offer.campaign.id,
            user_key=key,
            bid_time=now,
            bid_price_micros=offers.price_micros(rank),
            fx=candidate.fx,
        )
        markup = offer.markup
        if offer.markup_variants:
            best = int(variants[offer.variant_slots].argmax())  # the first best, on ties
            markup = markup.replace("${VARIANT}", offer.markup_variants[best])
        return Bid(
            id=bid_id,
            impid=offers.imp_id,
            price=price,
            adm=markup,
            nurl=urls.nurl,
            burl=urls.burl,
            lurl=urls.lurl,
            adomain=list(creative.adomain) or None,
            cid=offer.campaign.id,
            crid=creative.id,
            cat=list(creative.cat) or None,
            dealid=candidate.deal.id if candidate.deal is not None else None,
            w=candidate.w,
            h=candidate.h,
            mtype=offer.media_type,
        )

    def _emit(self, kind: EventType, at: datetime, user_id: str | None, **details: object) -> None:
        campaign_id = str(details.pop("campaign_id", ""))
        offer_id = str(details.pop("offer_id", ""))
        price = details.pop("bid_price", 0.0)
        self._events.emit(
            AnalyticsEvent(
                event_id=self._new_id(),
                timestamp=at,
                event_type=kind,
                user_id=user_id or "",
                campaign_id=campaign_id,
                offer_id=offer_id,
                bid_price=float(price) if isinstance(price, int | float) else 0.0,
                metadata={k: v for k, v in details.items() if v is not None},
                node_id=self._node_id,
            )
        )
