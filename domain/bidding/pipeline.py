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

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from domain.analytics import AnalyticsEvent, EventSink, EventType
from domain.bidding.catalog import Candidate, Catalog, RequestFilter, candidates_for_imp
from domain.bidding.features import (
    ANONYMOUS,
    UserFeatures,
    context_vector,
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
    boosted_score,
    day_fraction,
    offered_cpm,
    pacing_participation,
)
from domain.money import FxTable, cpm_to_impression_micros
from domain.openrtb import Bid, BidRequest, BidResponse, SeatBid

FloatVector = NDArray[np.float32]


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
class _Priced:
    candidate: Candidate
    price: float  # CPM, response currency
    row: int


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

    async def bid(self, request: BidRequest, deadline: float) -> BidOutcome:
        """Answer ``request``; ``deadline`` is on ``clock.monotonic()``.

        Raises DeadlineExceeded when the deadline passes before caps and budgets are taken.
        """
        user_id = request.buyer_user_id()
        self._emit(EventType.BID_REQUEST, user_id, request_id=request.id, imps=len(request.imp))
        outcome = await self._run(request, user_id, deadline)
        if outcome.no_bid is not None:
            self._emit(EventType.NO_BID, user_id, request_id=request.id, reason=outcome.no_bid)
        for bid in outcome.bids:
            self._emit(
                EventType.BID,
                user_id,
                campaign_id=bid.cid or "",
                offer_id=bid.crid or "",
                bid_price=bid.price,
                request_id=request.id,
                imp_id=bid.impid,
                bid_id=bid.id,
                deal_id=bid.dealid,
            )
        return outcome

    def no_bid_on_timeout(self, request: BidRequest) -> BidOutcome:
        """Record a request that ran out of time (the caller owns the clock that fired)."""
        self._emit(
            EventType.NO_BID, request.buyer_user_id(), request_id=request.id, reason=NoBid.TIMEOUT
        )
        return BidOutcome(response=None, no_bid=NoBid.TIMEOUT)

    async def _run(self, request: BidRequest, user_id: str | None, deadline: float) -> BidOutcome:
        now = self._clock.now()
        currency = self._fx.first_known(request.cur)
        if currency is None:
            return BidOutcome(response=None, no_bid=NoBid.UNSUPPORTED_CURRENCY)

        catalog = self._catalog()
        rules = RequestFilter.of(request)
        per_imp = [
            (imp, candidates_for_imp(catalog, imp, rules, currency, self._fx, now))
            for imp in request.imp
        ]
        found = sum(len(candidates) for _, candidates in per_imp)
        if found == 0:
            return BidOutcome(response=None, no_bid=NoBid.NO_MATCHING_CAMPAIGN)

        personal = request.personal_data_allowed()
        profiles: dict[str, UserFeatures] = {}
        if user_id is not None and personal:
            tenants = {c.offer.tenant_id for _, candidates in per_imp for c in candidates}
            profiles = await self._profiles.get_profiles(user_id, tenants)
        # Each imp's candidates are grouped by tenant: each tenant sees its own profile of the user.
        per_imp = [
            (
                imp,
                _grouped_by_tenant(
                    self._targeted(candidates, profiles)[: self._config.max_candidates]
                ),
            )
            for imp, candidates in per_imp
        ]
        rows = sum(len(candidates) for _, candidates in per_imp)
        if rows == 0:
            return BidOutcome(response=None, no_bid=NoBid.TARGETING, candidates=found)

        features = np.empty((rows, FEATURE_DIMS), dtype=np.float32)
        row = 0
        for imp, candidates in per_imp:
            if not candidates:
                continue
            floor_usd = imp.bidfloor * (self._fx.rate(imp.bidfloorcur, "USD") or 0.0)
            context = context_vector(request, imp, floor_usd, now)
            start = 0
            while start < len(candidates):
                tenant = candidates[start].offer.tenant_id
                end = start + 1
                while end < len(candidates) and candidates[end].offer.tenant_id == tenant:
                    end += 1
                feature_rows(
                    profiles.get(tenant, ANONYMOUS),
                    context,
                    np.stack([c.offer.vector for c in candidates[start:end]]),
                    features[row + start : row + end],
                )
                start = end
            row += len(candidates)
        scores = await self._scorer.score(features)

        elapsed = day_fraction(now)
        slates: list[list[_Priced]] = []
        below_floor = paced = 0
        row = 0
        for _, candidates in per_imp:
            priced: list[_Priced] = []
            for candidate in candidates:
                offer = candidate.offer
                user = profiles.get(offer.tenant_id, ANONYMOUS)
                tier = user.profile.loyalty_tier if user.profile is not None else None
                score = float(scores.offer[row, offer.offer_slot])
                cpm = (
                    offered_cpm(
                        offer.campaign.bid_strategy, offer.max_bid, boosted_score(score, tier)
                    )
                    * candidate.fx
                )
                participation = pacing_participation(
                    self._ledger.spend_view(offer.campaign.id).spent_today_micros,
                    offer.daily_budget_micros,
                    elapsed,
                )
                if cpm < candidate.floor or cpm <= 0:
                    below_floor += 1
                elif participation < 1.0 and self._random.random() >= participation:
                    paced += 1
                else:
                    priced.append(_Priced(candidate, round(cpm, 4), row))
                row += 1
            priced.sort(key=lambda p: -p.price)
            slates.append(priced)

        if not any(slates):
            reason = NoBid.BELOW_FLOOR if below_floor >= paced else NoBid.PACING
            return BidOutcome(response=None, no_bid=reason, candidates=rows)
        if self._clock.monotonic() >= deadline:
            raise DeadlineExceeded

        key = make_user_key(user_id) if user_id is not None and personal else None
        chosen = await self._ledger.reserve(
            key,
            now,
            [
                [
                    LedgerCandidate(
                        campaign_id=p.candidate.offer.campaign.id,
                        price_micros=cpm_to_impression_micros(p.price / p.candidate.fx),
                        cap_per_hour=p.candidate.offer.campaign.frequency_cap.per_hour,
                        cap_per_day=p.candidate.offer.campaign.frequency_cap.per_day,
                        budget_micros=p.candidate.offer.budget_micros,
                        daily_budget_micros=p.candidate.offer.daily_budget_micros,
                    )
                    for p in slate
                ]
                for slate in slates
            ],
        )
        bids_by_seat: dict[str, list[Bid]] = {}
        bids: list[Bid] = []
        for slate, index in zip(slates, chosen, strict=True):
            if index is None:
                continue
            winner = slate[index]
            bid = self._bid(winner, key, now, scores.variant[winner.row])
            bids.append(bid)
            bids_by_seat.setdefault(winner.candidate.offer.seat, []).append(bid)
        if not bids:
            return BidOutcome(response=None, no_bid=NoBid.CAPPED_OR_BUDGET, candidates=rows)
        response = BidResponse.model_construct(
            id=request.id,
            seatbid=[
                SeatBid.model_construct(seat=seat, bid=group)
                for seat, group in bids_by_seat.items()
            ],
            bidid=self._new_id(),
            cur=currency,
        )
        return BidOutcome(response=response, no_bid=None, candidates=rows, bids=bids)

    @staticmethod
    def _targeted(
        candidates: list[Candidate], profiles: dict[str, UserFeatures]
    ) -> list[Candidate]:
        """Drop candidates whose segment or interest targeting the user's profile misses."""
        kept: list[Candidate] = []
        for candidate in candidates:
            targeting = candidate.offer.campaign.targeting
            if targeting.segments or targeting.interests:
                user = profiles.get(candidate.offer.tenant_id)
                profile = user.profile if user is not None else None
                if profile is None:
                    continue
                if targeting.segments and not set(targeting.segments) & set(profile.segments):
                    continue
                if targeting.interests and not any(
                    i in profile.interests for i in targeting.interests
                ):
                    continue
            kept.append(candidate)
        return kept

    def _bid(self, priced: _Priced, key: str | None, now: datetime, variants: FloatVector) -> Bid:
        candidate = priced.candidate
        offer = candidate.offer
        creative = offer.creative
        bid_id = self._new_id()
        urls = self._signer.urls(
            bid_id=bid_id,
            campaign_id=offer.campaign.id,
            user_key=key,
            bid_time=now,
            bid_price_micros=cpm_to_impression_micros(priced.price / candidate.fx),
            fx=candidate.fx,
        )
        markup = creative.adm
        if creative.click_url is not None:
            markup = markup.replace("${CLICK_URL}", html.escape(creative.click_url))
        if creative.variants:
            best = max(
                range(len(creative.variants)),
                key=lambda i: float(variants[offer.variant_slots[i]]),
            )
            markup = markup.replace("${VARIANT}", html.escape(creative.variants[best]))
        return Bid.model_construct(
            id=bid_id,
            impid=candidate.imp.id,
            price=priced.price,
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

    def _emit(self, kind: EventType, user_id: str | None, **details: object) -> None:
        campaign_id = str(details.pop("campaign_id", ""))
        offer_id = str(details.pop("offer_id", ""))
        price = details.pop("bid_price", 0.0)
        self._events.emit(
            AnalyticsEvent(
                event_id=self._new_id(),
                timestamp=self._clock.now(),
                event_type=kind,
                user_id=user_id or "",
                campaign_id=campaign_id,
                offer_id=offer_id,
                bid_price=float(price) if isinstance(price, int | float) else 0.0,
                metadata={k: v for k, v in details.items() if v is not None},
                node_id=self._node_id,
            )
        )


def _grouped_by_tenant(candidates: list[Candidate]) -> list[Candidate]:
    """Reorder so each tenant's candidates are contiguous, keeping order within a tenant."""
    groups: dict[str, list[Candidate]] = {}
    for candidate in candidates:
        groups.setdefault(candidate.offer.tenant_id, []).append(candidate)
    if len(groups) == 1:
        return candidates
    return [candidate for group in groups.values() for candidate in group]
