"""Live campaigns indexed for the hot path, and the matching of one impression against them.

A catalog is immutable: a refresh builds a new one and swaps the reference, so a request in
flight always sees one consistent set of campaigns and nobody takes a lock.
"""

from __future__ import annotations

import bisect
import html
from collections import defaultdict
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from domain.bidding.features import OFFER_DIMS, Vector, offer_slot, offer_vector, variant_slot
from domain.campaigns import BidStrategy, Campaign, CampaignStatus, Creative, CreativeFormat
from domain.money import FxTable, to_micros
from domain.openrtb import BidRequest, Deal, Imp, MediaType

_MEDIA_TYPES = {
    CreativeFormat.BANNER: MediaType.BANNER,
    CreativeFormat.VIDEO: MediaType.VIDEO,
    CreativeFormat.AUDIO: MediaType.AUDIO,
    CreativeFormat.NATIVE: MediaType.NATIVE,
}
_DEFAULT_VIDEO_MIMES = ("video/mp4",)
_DEFAULT_AUDIO_MIMES = ("audio/mp4", "audio/mpeg")


@dataclass(frozen=True, slots=True)
class Offer:
    """One campaign x creative, with everything the hot path would otherwise recompute."""

    campaign: Campaign
    creative: Creative
    seat: str
    vector: Vector
    offer_slot: int
    variant_slots: NDArray[np.intp]  # which DCO-head output scores each creative variant
    media_type: MediaType
    categories: frozenset[str]  # the creative's IAB categories and their tier-1 parents
    adomains: frozenset[str]  # lower-cased
    mimes: frozenset[str]
    max_bid: float
    bid_floor: float
    budget_micros: int
    daily_budget_micros: int | None
    # Copied out of the campaign: the hot path reads them for every candidate.
    tenant_id: str
    campaign_id: str
    currency: str
    fixed_cpm: bool
    deal_only: bool
    context_targeted: bool  # countries or device types
    profile_targeted: bool  # segments or interests
    cap_per_hour: int | None
    cap_per_day: int | None
    # The creative's markup with its click URL filled in, and its DCO variants escaped for it:
    # the same for every bid, so done once here.
    markup: str
    markup_variants: tuple[str, ...]
    row: int = 0  # this offer's row in Catalog.offer_matrix


def _categories_with_parents(categories: Iterable[str]) -> frozenset[str]:
    found: set[str] = set()
    for category in categories:
        found.add(category)
        found.add(category.split("-", 1)[0])
    return frozenset(found)


def _read_only(array: NDArray[np.intp]) -> NDArray[np.intp]:
    array.flags.writeable = False  # shared by every bid on this offer
    return array


def _markup(creative: Creative) -> str:
    if creative.click_url is None:
        return creative.adm
    return creative.adm.replace("${CLICK_URL}", html.escape(creative.click_url))


def build_offer(campaign: Campaign, creative: Creative, default_seat: str) -> Offer:
    if creative.format is CreativeFormat.VIDEO:
        mimes = frozenset(creative.mimes or _DEFAULT_VIDEO_MIMES)
    elif creative.format is CreativeFormat.AUDIO:
        mimes = frozenset(creative.mimes or _DEFAULT_AUDIO_MIMES)
    else:
        mimes = frozenset(creative.mimes)
    return Offer(
        campaign=campaign,
        creative=creative,
        seat=campaign.seat or default_seat,
        vector=offer_vector(campaign, creative),
        offer_slot=offer_slot(campaign.id),
        variant_slots=_read_only(
            np.array(
                [variant_slot(creative.id, i) for i in range(len(creative.variants))],
                dtype=np.intp,
            )
        ),
        media_type=_MEDIA_TYPES[creative.format],
        categories=_categories_with_parents(creative.cat),
        adomains=frozenset(domain.lower() for domain in creative.adomain),
        mimes=mimes,
        max_bid=float(campaign.max_bid),
        bid_floor=float(campaign.bid_floor),
        budget_micros=to_micros(campaign.budget),
        daily_budget_micros=(
            to_micros(campaign.daily_budget) if campaign.daily_budget is not None else None
        ),
        tenant_id=campaign.tenant_id,
        campaign_id=campaign.id,
        currency=campaign.currency,
        fixed_cpm=campaign.bid_strategy is BidStrategy.FIXED_CPM,
        deal_only=bool(campaign.deal_ids),
        context_targeted=bool(campaign.targeting.countries or campaign.targeting.device_types),
        profile_targeted=bool(campaign.targeting.segments or campaign.targeting.interests),
        cap_per_hour=campaign.frequency_cap.per_hour,
        cap_per_day=campaign.frequency_cap.per_day,
        markup=_markup(creative),
        markup_variants=tuple(html.escape(variant) for variant in creative.variants),
    )


@dataclass(frozen=True, slots=True)
class Candidate:
    """An offer that may bid on an impression, priced in the response currency.

    Immutable and free of the request itself: identical impressions share candidate lists.
    """

    offer: Offer
    deal: Deal | None
    floor: float  # CPM in the response currency: the highest of imp or deal floor and our own
    fx: float  # response-currency units per unit of the campaign's currency
    w: int | None
    h: int | None


@dataclass(frozen=True, slots=True)
class Slate:
    """The candidates for one shape of impression, with what features and scoring read laid out
    as arrays.

    Built once per shape and catalog (see ``slate_for_imp``), so a request only indexes into it.
    """

    candidates: tuple[Candidate, ...]
    offer_block: NDArray[np.float32]  # (n, OFFER_DIMS): the offer part of each feature row
    offer_slots: NDArray[np.intp]  # which offer-head output scores each candidate
    valid_until: datetime | None  # the next flight start or end that could change the list
    tenants: tuple[str, ...]  # each candidate's tenant
    tenant_set: frozenset[str]

    def owners(self, picks: list[int] | slice) -> Sequence[str]:
        """The tenant of each picked candidate."""
        if isinstance(picks, slice):
            return self.tenants[picks]
        return [self.tenants[index] for index in picks]

    def sole_owner(self, picks: list[int] | slice) -> str | None:
        """The one tenant the picked candidates all belong to, if they do."""
        if len(self.tenant_set) == 1:
            return next(iter(self.tenant_set))
        owners = set(self.owners(picks))
        return owners.pop() if len(owners) == 1 else None

    @classmethod
    def of(
        cls, candidates: tuple[Candidate, ...], catalog: Catalog, valid_until: datetime | None
    ) -> Slate:
        offers = [candidate.offer for candidate in candidates]
        tenants = tuple(offer.tenant_id for offer in offers)
        arrays = (
            catalog.offer_matrix[[offer.row for offer in offers]]
            if offers
            else np.zeros((0, OFFER_DIMS), dtype=np.float32),
            np.array([offer.offer_slot for offer in offers], dtype=np.intp),
        )
        for array in arrays:
            array.flags.writeable = False  # shared by every request of this shape
        return cls(
            candidates,
            *arrays,
            valid_until=valid_until,
            tenants=tenants,
            tenant_set=frozenset(tenants),
        )


@dataclass(frozen=True, slots=True)
class Catalog:
    """Biddable offers indexed by what an impression asks for."""

    offers: tuple[Offer, ...]
    banners: dict[tuple[int, int], tuple[Offer, ...]]
    videos: tuple[Offer, ...]
    audios: tuple[Offer, ...]
    natives: tuple[Offer, ...]
    by_deal: dict[str, tuple[Offer, ...]]
    offer_matrix: NDArray[np.float32]
    flight_changes: tuple[datetime, ...]  # every start and end, sorted
    campaign_ids: frozenset[str] = field(default_factory=frozenset)
    revision: int = 0
    # Impressions repeat (same placement, same floor, same blocks): their candidate lists are
    # worked out once per catalog and reused until a flight date could change them.
    slates: dict[Hashable, Slate] = field(default_factory=dict)

    @classmethod
    def build(cls, campaigns: Iterable[Campaign], default_seat: str, revision: int = 0) -> Catalog:
        built: list[Offer] = []
        for campaign in campaigns:
            if campaign.status is not CampaignStatus.LIVE:
                continue
            built.extend(
                build_offer(campaign, creative, default_seat) for creative in campaign.creatives
            )
        # Highest price first, so truncating a long candidate list keeps the strongest bidders.
        built.sort(key=lambda offer: (-offer.max_bid, offer.campaign.id, offer.creative.id))
        offers = [replace(offer, row=row) for row, offer in enumerate(built)]
        banners: dict[tuple[int, int], list[Offer]] = defaultdict(list)
        by_format: dict[CreativeFormat, list[Offer]] = defaultdict(list)
        by_deal: dict[str, list[Offer]] = defaultdict(list)
        for offer in offers:
            creative = offer.creative
            if creative.format is CreativeFormat.BANNER:
                if creative.w is not None and creative.h is not None:
                    banners[(creative.w, creative.h)].append(offer)
            else:
                by_format[creative.format].append(offer)
            for deal_id in offer.campaign.deal_ids:
                by_deal[deal_id].append(offer)
        matrix = (
            np.stack([offer.vector for offer in offers])
            if offers
            else np.zeros((0, OFFER_DIMS), dtype=np.float32)
        )
        changes = {
            moment
            for offer in offers
            for moment in (offer.campaign.start_at, offer.campaign.end_at)
            if moment is not None
        }
        return cls(
            offers=tuple(offers),
            banners={size: tuple(group) for size, group in banners.items()},
            videos=tuple(by_format[CreativeFormat.VIDEO]),
            audios=tuple(by_format[CreativeFormat.AUDIO]),
            natives=tuple(by_format[CreativeFormat.NATIVE]),
            by_deal={deal_id: tuple(group) for deal_id, group in by_deal.items()},
            offer_matrix=matrix,
            flight_changes=tuple(sorted(changes)),
            campaign_ids=frozenset(offer.campaign.id for offer in offers),
            revision=revision,
        )

    def next_flight_change(self, now: datetime) -> datetime | None:
        index = bisect.bisect_right(self.flight_changes, now)
        return self.flight_changes[index] if index < len(self.flight_changes) else None

    @classmethod
    def empty(cls) -> Catalog:
        return cls.build((), default_seat="")

    def __len__(self) -> int:
        return len(self.campaign_ids)

    def offers_for(self, imp: Imp) -> Iterator[tuple[Offer, int | None, int | None]]:
        """Offers whose creative fits the impression, with the size they would fill."""
        if imp.banner is not None:
            for w, h in imp.banner.sizes():
                for offer in self.banners.get((w, h), ()):
                    yield offer, w, h
        if imp.video is not None:
            video = imp.video
            for offer in _playable(self.videos, video.mimes, video.minduration, video.maxduration):
                yield offer, offer.creative.w or video.w, offer.creative.h or video.h
        if imp.audio is not None:
            audio = imp.audio
            for offer in _playable(self.audios, audio.mimes, audio.minduration, audio.maxduration):
                yield offer, None, None
        if imp.native is not None:
            for offer in self.natives:
                yield offer, None, None


def _playable(
    offers: Iterable[Offer], mimes: list[str], shortest: int | None, longest: int | None
) -> Iterator[Offer]:
    """Video or audio offers in an accepted file type, within the slot's duration range."""
    wanted = frozenset(mimes)
    for offer in offers:
        if not offer.mimes & wanted:
            continue
        duration = offer.creative.duration_s
        if duration is not None and (
            (shortest is not None and duration < shortest)
            or (longest is not None and duration > longest)
        ):
            continue
        yield offer


@dataclass(frozen=True, slots=True)
class RequestFilter:
    """What the whole request rules out, computed once per request."""

    blocked_categories: frozenset[str]
    blocked_adomains: frozenset[str]
    allowed_seats: frozenset[str] | None
    blocked_seats: frozenset[str]
    country: str | None
    device_type: int | None
    permissive: bool  # no blocked categories, advertisers or seats: most requests

    @classmethod
    def of(cls, request: BidRequest) -> RequestFilter:
        device = request.device
        geo = device.geo if device is not None else None
        if geo is None and request.user is not None:
            geo = request.user.geo
        blocked_categories = frozenset(request.bcat or ())
        blocked_adomains = frozenset(domain.lower() for domain in request.badv or ())
        allowed_seats = frozenset(request.wseat) if request.wseat else None
        blocked_seats = frozenset(request.bseat or ())
        return cls(
            blocked_categories=blocked_categories,
            blocked_adomains=blocked_adomains,
            allowed_seats=allowed_seats,
            blocked_seats=blocked_seats,
            country=geo.country.upper() if geo is not None and geo.country else None,
            device_type=device.devicetype if device is not None else None,
            permissive=not (
                blocked_categories or blocked_adomains or allowed_seats or blocked_seats
            ),
        )

    def admits(self, offer: Offer) -> bool:
        if self.permissive and not offer.context_targeted:
            return True
        if offer.categories & self.blocked_categories or offer.adomains & self.blocked_adomains:
            return False
        if self.allowed_seats is not None and offer.seat not in self.allowed_seats:
            return False
        if offer.seat in self.blocked_seats:
            return False
        targeting = offer.campaign.targeting
        if targeting.countries and (
            self.country is None or self.country not in targeting.countries
        ):
            return False
        return not (
            targeting.device_types
            and (self.device_type is None or self.device_type not in targeting.device_types)
        )


def _deal_admits(deal: Deal, offer: Offer) -> bool:
    if deal.wseat and offer.seat not in deal.wseat:
        return False
    return not (deal.wadomain and not offer.adomains & {d.lower() for d in deal.wadomain})


SLATE_CACHE_SIZE = 20_000


def _imp_shape(imp: Imp) -> Hashable:
    """Everything about an impression that decides its candidates, as a hashable key."""
    banner = tuple(imp.banner.sizes()) if imp.banner is not None else None
    video = audio = pmp = None
    if imp.video is not None:
        v = imp.video
        video = (tuple(v.mimes), v.minduration, v.maxduration, v.w, v.h)
    if imp.audio is not None:
        a = imp.audio
        audio = (tuple(a.mimes), a.minduration, a.maxduration)
    if imp.pmp is not None:
        pmp = (
            imp.pmp.private_auction,
            tuple(
                (d.id, d.bidfloor, d.bidfloorcur, tuple(d.wseat or ()), tuple(d.wadomain or ()))
                for d in imp.pmp.deals or ()
            ),
        )
    return (banner, video, audio, imp.native is not None, pmp, imp.bidfloor, imp.bidfloorcur)


def slate_for_imp(
    catalog: Catalog,
    imp: Imp,
    rules: RequestFilter,
    currency: str,
    fx: FxTable,
    now: datetime,
) -> Slate:
    """The impression's candidates, from the catalog's cache when an identical one was seen."""
    key = (_imp_shape(imp), rules, currency)
    slate = catalog.slates.get(key)
    if slate is not None and (slate.valid_until is None or now < slate.valid_until):
        return slate
    candidates = tuple(candidates_for_imp(catalog, imp, rules, currency, fx, now))
    slate = Slate.of(candidates, catalog, catalog.next_flight_change(now))
    if len(catalog.slates) >= SLATE_CACHE_SIZE:
        catalog.slates.clear()  # crude but O(1); the working set refills in a moment
    catalog.slates[key] = slate
    return slate


def candidates_for_imp(
    catalog: Catalog,
    imp: Imp,
    rules: RequestFilter,
    currency: str,
    fx: FxTable,
    now: datetime,
) -> list[Candidate]:
    """Every offer that may bid on ``imp``: format, flight, request filters, deals, floors.

    A campaign that buys deals bids only through them; under ``private_auction`` only deal
    buyers bid at all. Floors convert into the response currency; an offer whose currency (or
    floor currency) has no rate is left out rather than priced wrongly.
    """
    deals = imp.pmp.deals if imp.pmp is not None and imp.pmp.deals else ()
    deal_offers: dict[str, Deal] = {}
    for offered_deal in deals:
        for offer in catalog.by_deal.get(offered_deal.id, ()):
            if offer.campaign_id not in deal_offers and _deal_admits(offered_deal, offer):
                deal_offers[offer.campaign_id] = offered_deal
    open_market = not (imp.pmp is not None and imp.pmp.private_auction == 1)

    imp_floor = fx.rate(imp.bidfloorcur, currency)
    rates: dict[str, float | None] = {}
    found: list[Candidate] = []
    for offer, w, h in catalog.offers_for(imp):
        deal = deal_offers.get(offer.campaign_id) if deal_offers else None
        if deal is None and (offer.deal_only or not open_market):
            continue
        campaign = offer.campaign
        if (campaign.start_at is not None and now < campaign.start_at) or (
            campaign.end_at is not None and now >= campaign.end_at
        ):
            continue
        if not rules.admits(offer):
            continue
        if offer.currency in rates:
            rate = rates[offer.currency]
        else:
            rate = rates[offer.currency] = fx.rate(offer.currency, currency)
        if rate is None:
            continue
        if deal is not None:
            deal_rate = fx.rate(deal.bidfloorcur, currency)
            if deal_rate is None:
                continue
            floor = deal.bidfloor * deal_rate
        else:
            if imp_floor is None:
                continue
            floor = imp.bidfloor * imp_floor
        found.append(
            Candidate(
                offer=offer,
                deal=deal,
                floor=max(floor, offer.bid_floor * rate),
                fx=rate,
                w=w,
                h=h,
            )
        )
    return found
