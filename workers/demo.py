"""Demo data: a tenant, a catalog of live campaigns across every format, and many profiles.

Enough for the IAB example bid requests to find bidders: a plain 300x250 request matches
well over a dozen open campaigns, the PMP example finds its Agency1 deal, the video and
mobile examples find VAST and 728x90 creatives that pass their blocked categories and
advertisers, and their user ids have profiles.

Loading is seeded (same seed, same rows, same ids) and replaces the demo tenant's
campaigns, creatives and profiles on every run, bumping the catalog revision once so every
bidder reloads.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from itertools import islice
from typing import Any

import orjson
from sqlalchemy import Connection, delete, insert, select

from adapters.db import statements
from adapters.db.convert import campaign_values, creative_values, profile_values, tenant_from_row
from adapters.db.engine import Database
from adapters.db.migrate import upgrade
from adapters.db.tables import (
    campaigns_table,
    creatives_table,
    tenants_table,
    user_profiles_table,
)
from domain.campaigns import (
    BidStrategy,
    Campaign,
    CampaignStatus,
    Creative,
    CreativeFormat,
    FrequencyCap,
    Targeting,
)
from domain.openrtb import DeviceType
from domain.profiles import Consent, LoyaltyTier, UserProfile
from domain.tenants import Tenant

DEMO_TENANT = "demo"
DEMO_SEAT = "campaign-express"
CHUNK_ROWS = 5_000

# User ids in the IAB OpenRTB 2.6 example requests (user.id or user.buyeruid).
IAB_EXAMPLE_USER_IDS = (
    "55816b39711f9b5acf3b90e313ed29e51665623f",
    "ffffffd5135596709273b3a1a07e466ea2bf4fff",
    "545678765467876567898765678987654",
)

INTERESTS = (
    "running", "cycling", "yoga", "fitness", "hiking", "camping", "beach-holidays",
    "city-breaks", "luxury-travel", "coffee", "cooking", "baking", "vegan-food", "fine-dining",
    "fashion", "sneakers", "beauty", "jewellery", "home-decor", "gardening", "diy", "dogs",
    "cats", "gaming", "esports", "smartphones", "laptops", "smart-home", "photography", "music",
    "concerts", "movies", "streaming", "books", "personal-finance", "investing", "autos",
    "electric-vehicles", "parenting", "football",
)  # fmt: skip

SEGMENTS = (
    "new-customer", "lapsed-customer", "high-value", "frequent-buyer", "cart-abandoner",
    "app-user", "newsletter-subscriber", "loyalty-member", "deal-seeker", "premium-shopper",
    "auto-intenders", "travel-intenders", "home-movers", "new-parents", "students",
    "commuters", "gamers", "fitness-enthusiasts", "pet-owners", "tech-early-adopters",
)  # fmt: skip

TIMEZONES = (
    "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
    "America/Toronto", "America/Sao_Paulo", "Europe/London", "Europe/Paris", "Europe/Berlin",
    "Europe/Madrid", "Asia/Kolkata", "Asia/Singapore", "Asia/Tokyo", "Australia/Sydney", "UTC",
)  # fmt: skip

_TIERS: tuple[tuple[LoyaltyTier | None, float], ...] = (
    (LoyaltyTier.GREEN, 0.60),
    (LoyaltyTier.GOLD, 0.25),
    (LoyaltyTier.RESERVE, 0.10),
    (None, 0.05),
)

# Flights started long ago and end far ahead, so the catalog stays live on any run date.
_FLIGHT_START = datetime(2025, 1, 1, tzinfo=UTC)
_FLIGHT_END = datetime(2099, 12, 31, tzinfo=UTC)
_FUTURE_START = datetime(2099, 1, 1, tzinfo=UTC)

_TOTAL_BUDGET = Decimal(50_000)
_DAILY_BUDGET = Decimal(5_000)
_CAP = FrequencyCap(per_hour=3, per_day=10)

_PHONES_AND_TABLETS = [
    int(t) for t in (DeviceType.MOBILE_TABLET, DeviceType.PHONE, DeviceType.TABLET)
]


@dataclass(frozen=True, slots=True)
class _Slot:
    """One creative of a campaign: a banner size, or a video/audio length, or native."""

    format: CreativeFormat
    w: int | None = None
    h: int | None = None
    duration_s: int | None = None


def _banner(w: int, h: int) -> _Slot:
    return _Slot(CreativeFormat.BANNER, w, h)


MEDIUM_RECTANGLE = _banner(300, 250)
LEADERBOARD = _banner(728, 90)
MOBILE_BANNER = _banner(320, 50)
SKYSCRAPER = _banner(160, 600)


_OPEN = Targeting()
_VIDEO_15 = _Slot(CreativeFormat.VIDEO, 640, 480, 15)
_VIDEO_30 = _Slot(CreativeFormat.VIDEO, 640, 480, 30)
_AUDIO_30 = _Slot(CreativeFormat.AUDIO, duration_s=30)
_NATIVE = _Slot(CreativeFormat.NATIVE)


@dataclass(frozen=True, slots=True)
class _Plan:
    brand: str
    theme: str
    cat: tuple[str, ...]
    slots: tuple[_Slot, ...]
    targeting: Targeting = _OPEN
    strategy: BidStrategy = BidStrategy.SCORE_SCALED
    capped: bool = False
    status: CampaignStatus = CampaignStatus.LIVE
    max_bid: Decimal | None = None  # None: drawn from the seeded range
    seat: str | None = None
    deal_ids: tuple[str, ...] = ()
    variants: tuple[str, ...] = ()


# IAB categories used here stay clear of the ones the IAB examples block (IAB25, IAB7-39,
# IAB8-18, IAB8-5, IAB9-9), and no advertiser domain is one they block.
_M, _L, _S, _K = MEDIUM_RECTANGLE, LEADERBOARD, MOBILE_BANNER, SKYSCRAPER
_PLANS: tuple[_Plan, ...] = (
    # Open, untargeted 300x250 campaigns: what a plain banner request finds.
    _Plan("Northwind Coffee", "Autumn Blend", ("IAB8-6",), (_M, _L),
          variants=("Autumn in a cup", "Try the Autumn Blend", "Roasted this week")),
    _Plan("Blue Harbor Travel", "City Breaks", ("IAB20",), (_M, _K)),
    _Plan("Peak Outfitters", "Trail Season", ("IAB17",), (_M,), capped=True),
    _Plan("Lumen Phones", "L9 Launch", ("IAB19",), (_M, _S), strategy=BidStrategy.FIXED_CPM,
          variants=("Meet the L9", "A camera that sees at night", "Two-day battery")),
    _Plan("Greenleaf Grocers", "Weekly Deals", ("IAB8-9", "IAB22"), (_M,)),
    _Plan("Atlas Bank", "Zero-Fee Account", ("IAB13",), (_M, _L)),
    _Plan("Kite Streaming", "Free Month", ("IAB1",), (_M, _S), capped=True),
    _Plan("Copperline Home", "Living Room Refresh", ("IAB10",), (_M,)),
    _Plan("Stride Athletics", "Marathon Shoes", ("IAB17", "IAB18"), (_M, _L),
          strategy=BidStrategy.FIXED_CPM),
    _Plan("Pawsome Pet Supply", "Puppy Starter Kit", ("IAB16",), (_M,)),
    _Plan("Orbit Games", "Season Pass", ("IAB9-30",), (_M, _K), capped=True),
    _Plan("Meridian University", "Online MBA", ("IAB5",), (_M,)),
    _Plan("Velvet Beauty", "Holiday Gift Sets", ("IAB18",), (_M, _S),
          variants=("Gifts that glow", "Sets from $25", "Wrapped and ready")),
    _Plan("Tidewater Insurance", "Quote in 3 Minutes", ("IAB13",), (_M,)),
    _Plan("Summit Motors", "EV Test Drive", ("IAB2",), (_M, _L), capped=True),
    _Plan("Cobalt Laptops", "Back to School", ("IAB19", "IAB5"), (_M,),
          strategy=BidStrategy.FIXED_CPM),
    _Plan("Harbor Music", "Concert Tickets", ("IAB1-6",), (_M, _K)),
    _Plan("Sunrise Bakery", "Fresh Sourdough", ("IAB8-9",), (_M, _L)),
    # Targeted 300x250 campaigns: they need a profile (or a device and geo) that fits.
    _Plan("Stride Athletics", "Runners Club", ("IAB17",), (_M,),
          targeting=Targeting(interests=["running", "fitness"], device_types=_PHONES_AND_TABLETS),
          capped=True),
    _Plan("Summit Motors", "Auto Intenders", ("IAB2",), (_M,),
          targeting=Targeting(segments=["auto-intenders"], countries=["USA", "CAN"]),
          capped=True),
    # The PMP example's deal: Agency1 buys it at a fixed price under its own seat.
    _Plan("Agency1", "PMP", ("IAB3",), (_M,), strategy=BidStrategy.FIXED_CPM,
          max_bid=Decimal("4.00"), seat="Agency1", deal_ids=("AB-Agency1-0001",)),
    # Other banner sizes, open or targeted.
    _Plan("Blue Harbor Travel", "Transatlantic Fares", ("IAB20",), (_L,),
          targeting=Targeting(countries=["USA", "GBR"]), capped=True),
    _Plan("Lumen Phones", "Trade-in Offer", ("IAB19",), (_L, _S),
          strategy=BidStrategy.FIXED_CPM, capped=True),
    _Plan("Kite Streaming", "Mobile Plan", ("IAB1",), (_S,),
          targeting=Targeting(device_types=_PHONES_AND_TABLETS)),
    _Plan("Greenleaf Grocers", "App Delivery", ("IAB22",), (_S,),
          targeting=Targeting(
              device_types=_PHONES_AND_TABLETS, interests=["cooking", "vegan-food"]
          )),
    _Plan("Atlas Bank", "Investing Made Simple", ("IAB13",), (_K,),
          targeting=Targeting(interests=["investing", "personal-finance"]), capped=True),
    # Video, native and audio.
    _Plan("Summit Motors", "EV Launch Film", ("IAB2",), (_VIDEO_30,),
          strategy=BidStrategy.FIXED_CPM, capped=True),
    _Plan("Kite Streaming", "Trailer", ("IAB1",), (_VIDEO_15,)),
    _Plan("Copperline Home", "Sponsored Story", ("IAB10",), (_NATIVE,)),
    _Plan("Harbor Music", "Podcast Spot", ("IAB1-6",), (_AUDIO_30,), capped=True),
    # Not live: the catalog holds them, bidders must not.
    _Plan("Orbit Games", "Spring Tournament", ("IAB9-30",), (_M,), status=CampaignStatus.SCHEDULED),
    _Plan("Velvet Beauty", "Summer Glow", ("IAB18",), (_M,), status=CampaignStatus.PAUSED),
    _Plan("Pawsome Pet Supply", "Cat Tower Sale", ("IAB16",), (_M,), status=CampaignStatus.DRAFT),
    _Plan("Tidewater Insurance", "Renewal Reminder", ("IAB13",), (_L,),
          status=CampaignStatus.COMPLETED),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class DemoSummary:
    tenant: Tenant
    campaigns_by_format: dict[str, int]  # "banner 300x250", "video", ...: campaigns with one
    campaigns: int
    creatives: int
    live_campaigns: int
    profiles: int
    tiers: dict[str, int]  # tier name or "none" -> profiles
    catalog_revision: int
    seconds: float

    def describe(self) -> str:
        lines = [
            f"tenant       {self.tenant.name} (id {self.tenant.id}, seat {self.tenant.seat})",
            f"campaigns    {self.campaigns} ({self.live_campaigns} live), "
            f"{self.creatives} creatives",
        ]
        lines += [
            f"  {name:<15}{count:>4}"
            for name, count in sorted(self.campaigns_by_format.items(), key=_format_sort_key)
        ]
        lines.append(f"profiles     {self.profiles:,}")
        lines += [
            f"  {tier:<15}{count:>9,}  {count / max(self.profiles, 1):6.1%}"
            for tier, count in sorted(self.tiers.items(), key=lambda item: -item[1])
        ]
        lines.append(f"catalog      revision {self.catalog_revision}")
        lines.append(f"took         {self.seconds:.1f} s")
        return "\n".join(lines)


def _format_sort_key(item: tuple[str, int]) -> tuple[int, str]:
    name = item[0]
    return (0 if name.startswith("banner") else 1, name)


def _new_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _slug(text: str) -> str:
    return "-".join(text.lower().replace("&", "and").split())


def _brand_domain(brand: str) -> str:
    brands = list(dict.fromkeys(plan.brand for plan in _PLANS))
    return f"brand-{brands.index(brand) + 1}.example"


def _banner_markup(plan: _Plan, slot: _Slot, domain: str) -> str:
    alt = "${VARIANT}" if plan.variants else f"{plan.brand}: {plan.theme}"
    image = f"https://{domain}/creatives/{_slug(plan.theme)}-{slot.w}x{slot.h}.png"
    return (
        f'<a href="${{CLICK_URL}}" target="_blank" rel="noopener">'
        f'<img src="{image}" width="{slot.w}" height="{slot.h}" alt="{alt}" '
        f'style="border:0;display:block"></a>'
    )


def _vast_markup(plan: _Plan, slot: _Slot, creative_id: str, domain: str) -> str:
    """A VAST 4.2 InLine ad: one linear creative, progressive MP4 or MP3."""
    minutes, seconds = divmod(slot.duration_s or 0, 60)
    if slot.format is CreativeFormat.VIDEO:
        media = (
            f'<MediaFile delivery="progressive" type="video/mp4" width="{slot.w}" '
            f'height="{slot.h}" bitrate="1200" scalable="true" maintainAspectRatio="true">'
            f"<![CDATA[https://{domain}/media/{_slug(plan.theme)}-{slot.duration_s}s.mp4]]>"
            "</MediaFile>"
        )
    else:
        media = (
            '<MediaFile delivery="progressive" type="audio/mpeg" bitrate="128">'
            f"<![CDATA[https://{domain}/media/{_slug(plan.theme)}-{slot.duration_s}s.mp3]]>"
            "</MediaFile>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<VAST version="4.2" xmlns="http://www.iab.com/VAST"><Ad id="{creative_id}"><InLine>'
        '<AdSystem version="1.0">CampaignExpress</AdSystem>'
        f"<AdTitle>{plan.brand}: {plan.theme}</AdTitle>"
        "<AdServingId>${AUCTION_ID}-${AUCTION_IMP_ID}</AdServingId>"
        f'<Impression id="{creative_id}-imp"><![CDATA[https://{domain}/px/impression'
        "?auction=${AUCTION_ID}&price=${AUCTION_PRICE}]]></Impression>"
        f'<Creatives><Creative id="{creative_id}" adId="{creative_id}">'
        f'<UniversalAdId idRegistry="campaign-express">{creative_id}</UniversalAdId>'
        f"<Linear><Duration>00:{minutes:02d}:{seconds:02d}.000</Duration>"
        f"<MediaFiles>{media}</MediaFiles>"
        '<VideoClicks><ClickThrough id="click"><![CDATA[${CLICK_URL}]]></ClickThrough>'
        "</VideoClicks></Linear></Creative></Creatives></InLine></Ad></VAST>"
    )


def _native_markup(plan: _Plan, domain: str) -> str:
    """An OpenRTB Native 1.2 response: title, main image, sponsor and body text."""
    markup: dict[str, Any] = {
        "ver": "1.2",
        "assets": [
            {"id": 1, "required": 1, "title": {"text": f"{plan.theme}: ideas for every room"}},
            {
                "id": 2,
                "required": 1,
                "img": {
                    "type": 3,
                    "url": f"https://{domain}/creatives/{_slug(plan.theme)}-1200x627.jpg",
                    "w": 1200,
                    "h": 627,
                },
            },
            {"id": 3, "data": {"type": 1, "value": plan.brand}},
            {"id": 4, "data": {"type": 2, "value": "Fresh looks for less, delivered free."}},
        ],
        "link": {"url": "${CLICK_URL}"},
        "eventtrackers": [
            {
                "event": 1,
                "method": 1,
                "url": f"https://{domain}/px/impression?auction=${{AUCTION_ID}}",
            }
        ],
    }
    return orjson.dumps(markup).decode()


def _creative(plan: _Plan, slot: _Slot, rng: random.Random) -> Creative:
    creative_id = _new_id(rng)
    domain = _brand_domain(plan.brand)
    if slot.format is CreativeFormat.BANNER:
        adm = _banner_markup(plan, slot, domain)
    elif slot.format is CreativeFormat.NATIVE:
        adm = _native_markup(plan, domain)
    else:
        adm = _vast_markup(plan, slot, creative_id, domain)
    mimes = {CreativeFormat.VIDEO: ["video/mp4"], CreativeFormat.AUDIO: ["audio/mpeg"]}
    return Creative(
        id=creative_id,
        format=slot.format,
        w=slot.w,
        h=slot.h,
        duration_s=slot.duration_s,
        mimes=mimes.get(slot.format, []),
        adm=adm,
        click_url=f"https://{domain}/{_slug(plan.theme)}?utm_source=campaign-express",
        adomain=[domain],
        cat=list(plan.cat),
        variants=list(plan.variants) if slot.format is CreativeFormat.BANNER else [],
    )


def demo_campaigns(tenant_id: str, seed: int = 7) -> list[Campaign]:
    """The demo catalog for ``tenant_id``; the same seed gives the same ids and prices."""
    rng = random.Random(seed)
    campaigns = []
    for plan in _PLANS:
        campaign_id = _new_id(rng)
        drawn_max_bid = Decimal(str(round(rng.uniform(1.0, 8.0), 2)))
        floor = Decimal(str(round(rng.uniform(0.0, 0.2), 2)))
        scheduled = plan.status is CampaignStatus.SCHEDULED
        campaigns.append(
            Campaign(
                id=campaign_id,
                tenant_id=tenant_id,
                name=f"{plan.brand} {plan.theme}",
                status=plan.status,
                currency="USD",
                budget=_TOTAL_BUDGET,
                daily_budget=_DAILY_BUDGET,
                start_at=_FUTURE_START if scheduled else _FLIGHT_START,
                end_at=_FLIGHT_END if rng.random() < 0.5 else None,
                bid_floor=floor,
                max_bid=plan.max_bid or drawn_max_bid,
                bid_strategy=plan.strategy,
                targeting=plan.targeting,
                frequency_cap=_CAP if plan.capped else FrequencyCap(),
                seat=plan.seat,
                deal_ids=list(plan.deal_ids),
                creatives=[_creative(plan, slot, rng) for slot in plan.slots],
            )
        )
    return campaigns


def _profile(tenant_id: str, user_id: str, rng: random.Random) -> UserProfile:
    interests = rng.sample(INTERESTS, rng.randint(3, 8))
    tiers, weights = zip(*_TIERS, strict=True)
    return UserProfile(
        tenant_id=tenant_id,
        user_id=user_id,
        interests={name: round(rng.random(), 3) for name in interests},
        segments=rng.sample(SEGMENTS, rng.randint(0, 4)),
        loyalty_tier=rng.choices(tiers, weights)[0],
        consent=Consent(
            personalized_ads=rng.random() < 0.9,
            email=rng.random() < 0.7,
            sms=rng.random() < 0.35,
            push=rng.random() < 0.5,
        ),
        timezone=rng.choice(TIMEZONES),
    )


def demo_profiles(tenant_id: str, count: int, seed: int = 7) -> Iterator[UserProfile]:
    """``count`` profiles: the IAB example users first, then user-000001, user-000002, ..."""
    rng = random.Random(seed)
    user_ids = list(IAB_EXAMPLE_USER_IDS[:count])
    user_ids += (f"user-{n:06d}" for n in range(1, count - len(user_ids) + 1))
    for user_id in user_ids:
        profile = _profile(tenant_id, user_id, rng)
        if user_id in IAB_EXAMPLE_USER_IDS:
            profile = _as_iab_example(profile)
        yield profile


def _as_iab_example(profile: UserProfile) -> UserProfile:
    """The example users agreed to personalised ads; the video example's is an auto intender,
    as its request's data segments say."""
    update: dict[str, Any] = {
        "consent": profile.consent.model_copy(update={"personalized_ads": True})
    }
    if profile.user_id == IAB_EXAMPLE_USER_IDS[2]:
        # Keeping within 8 interests and 4 segments, like every other profile.
        others = [segment for segment in profile.segments if segment != "auto-intenders"]
        update["segments"] = [*others[:3], "auto-intenders"]
        interests = {k: v for k, v in profile.interests.items() if k != "autos"}
        update["interests"] = {**dict(list(interests.items())[:7]), "autos": 0.9}
    return profile.model_copy(update=update)


def _chunks(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    while chunk := list(islice(rows, size)):
        yield chunk


def _ensure_tenant(conn: Connection, now: datetime) -> Tenant:
    dialect = conn.dialect.name
    conn.execute(
        statements.insert_tenant_if_missing(
            dialect, tenant_id=str(uuid.uuid4()), name=DEMO_TENANT, seat=DEMO_SEAT, created_at=now
        )
    )
    tenant = tenant_from_row(
        conn.execute(statements.select_tenant_by_name(DEMO_TENANT)).mappings().one()
    )
    if tenant.seat != DEMO_SEAT:
        conn.execute(statements.update_tenant_seat(tenant.id, DEMO_SEAT))
        tenant = tenant.model_copy(update={"seat": DEMO_SEAT})
    return tenant


def _replace_catalog(conn: Connection, campaigns: Sequence[Campaign], now: datetime) -> None:
    tenant_id = campaigns[0].tenant_id
    conn.execute(delete(creatives_table).where(creatives_table.c.tenant_id == tenant_id))
    conn.execute(delete(campaigns_table).where(campaigns_table.c.tenant_id == tenant_id))
    conn.execute(
        insert(campaigns_table),
        [
            {**campaign_values(c), "created_at": now, "updated_at": now, "version": 1}
            for c in campaigns
        ],
    )
    conn.execute(insert(creatives_table), [row for c in campaigns for row in creative_values(c)])


def demo_present(database_url: str) -> bool:
    """Whether the demo tenant exists and has campaigns (the schema must be migrated)."""
    database = Database(database_url)
    try:
        with database.sync_engine.connect() as conn:
            found = conn.execute(
                select(campaigns_table.c.id)
                .join(tenants_table, tenants_table.c.id == campaigns_table.c.tenant_id)
                .where(tenants_table.c.name == DEMO_TENANT)
                .limit(1)
            ).first()
    finally:
        database.sync_engine.dispose()
    return found is not None


def load_demo(database_url: str, *, profiles: int = 100_000, seed: int = 7) -> DemoSummary:
    """Migrate, then replace the demo tenant's catalog and profiles in one transaction."""
    if profiles < 0:
        raise ValueError("profiles must be >= 0")
    started = time.perf_counter()
    upgrade(database_url)
    database = Database(database_url)
    now = datetime.now(UTC)
    tiers: Counter[str] = Counter()
    try:
        with database.sync_engine.begin() as conn:
            # First, so this transaction holds the catalog lock before it reads anything.
            statements.check_bumped(conn.execute(statements.bump_catalog_revision()).rowcount)
            tenant = _ensure_tenant(conn, now)
            campaigns = demo_campaigns(tenant.id, seed)
            _replace_catalog(conn, campaigns, now)
            conn.execute(
                delete(user_profiles_table).where(user_profiles_table.c.tenant_id == tenant.id)
            )

            def profile_rows() -> Iterator[dict[str, Any]]:
                for profile in demo_profiles(tenant.id, profiles, seed):
                    tiers[profile.loyalty_tier.value if profile.loyalty_tier else "none"] += 1
                    yield profile_values(profile, now)

            for chunk in _chunks(profile_rows(), CHUNK_ROWS):
                conn.execute(insert(user_profiles_table), chunk)
            revision = conn.execute(statements.select_catalog_revision()).scalar_one()
    finally:
        database.sync_engine.dispose()

    by_format: Counter[str] = Counter()
    for campaign in campaigns:
        by_format.update({_format_name(creative) for creative in campaign.creatives})
    return DemoSummary(
        tenant=tenant,
        campaigns_by_format=dict(by_format),
        campaigns=len(campaigns),
        creatives=sum(len(c.creatives) for c in campaigns),
        live_campaigns=sum(c.status is CampaignStatus.LIVE for c in campaigns),
        profiles=profiles,
        tiers=dict(tiers),
        catalog_revision=revision,
        seconds=time.perf_counter() - started,
    )


def _format_name(creative: Creative) -> str:
    if creative.format is CreativeFormat.BANNER:
        return f"banner {creative.w}x{creative.h}"
    return creative.format.value
