from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

from domain.campaigns import BidStrategy, Campaign, CampaignStatus, CreativeFormat, Targeting
from workers.demo import (
    IAB_EXAMPLE_USER_IDS,
    INTERESTS,
    SEGMENTS,
    TIMEZONES,
    demo_campaigns,
    demo_profiles,
)

# What the IAB OpenRTB 2.6 mobile example blocks.
BLOCKED_CATEGORIES = {"IAB25", "IAB7-39", "IAB8-18", "IAB8-5", "IAB9-9"}
BLOCKED_ADVERTISERS = {"apple.com", "go-text.me", "heywire.com"}
VAST = "{http://www.iab.com/VAST}"
NOW = datetime.now(UTC)


def has_banner(campaign: Campaign, w: int, h: int) -> bool:
    return any(
        c.format is CreativeFormat.BANNER and (c.w, c.h) == (w, h) for c in campaign.creatives
    )


def live(campaigns: list[Campaign]) -> list[Campaign]:
    return [c for c in campaigns if c.status is CampaignStatus.LIVE]


def test_demo_catalog_is_mostly_live_in_usd_within_price_ranges() -> None:
    campaigns = demo_campaigns("t")

    assert len(live(campaigns)) >= 24
    assert all(c.is_biddable(NOW) for c in live(campaigns))
    assert not any(c.is_biddable(NOW) for c in campaigns if c.status is not CampaignStatus.LIVE)
    assert {c.currency for c in campaigns} == {"USD"}
    assert all(Decimal(1) <= c.max_bid <= Decimal(8) for c in campaigns)
    assert all(Decimal(0) <= c.bid_floor <= Decimal("0.2") for c in campaigns)
    assert all(c.budget >= 10 * (c.daily_budget or 0) > 0 for c in campaigns)


def test_demo_catalog_mixes_strategies_and_caps() -> None:
    campaigns = demo_campaigns("t")
    strategies = Counter(c.bid_strategy for c in campaigns)
    capped = sum(c.frequency_cap.is_capped for c in campaigns)

    assert strategies[BidStrategy.SCORE_SCALED] > strategies[BidStrategy.FIXED_CPM] > 0
    assert len(campaigns) // 4 <= capped <= len(campaigns) // 2


def test_demo_catalog_has_many_open_medium_rectangles() -> None:
    campaigns = live(demo_campaigns("t"))
    open_ones = [
        c
        for c in campaigns
        if has_banner(c, 300, 250) and c.targeting == Targeting() and not c.deal_ids
    ]

    assert sum(has_banner(c, 300, 250) for c in campaigns) >= 18
    assert len(open_ones) >= 16


def test_demo_catalog_covers_other_sizes_and_formats() -> None:
    campaigns = live(demo_campaigns("t"))
    formats = Counter(cr.format for c in campaigns for cr in c.creatives)

    for w, h in ((728, 90), (320, 50), (160, 600)):
        assert sum(has_banner(c, w, h) for c in campaigns) >= 3
    assert formats[CreativeFormat.VIDEO] == 2
    assert formats[CreativeFormat.NATIVE] == 1
    assert formats[CreativeFormat.AUDIO] == 1


def test_demo_videos_are_vast4_inline_with_mp4() -> None:
    videos = [
        cr for c in demo_campaigns("t") for cr in c.creatives if cr.format is CreativeFormat.VIDEO
    ]

    assert sorted(v.duration_s or 0 for v in videos) == [15, 30]
    for video in videos:
        assert (video.w, video.h, video.mimes) == (640, 480, ["video/mp4"])
        root = ET.fromstring(video.adm.encode())
        assert root.tag == f"{VAST}VAST"
        assert root.attrib["version"].startswith("4")
        inline = root.find(f"{VAST}Ad/{VAST}InLine")
        assert inline is not None
        for required in ("AdSystem", "AdTitle", "Impression", "AdServingId", "Creatives"):
            assert inline.find(f"{VAST}{required}") is not None, required
        media = inline.find(f".//{VAST}MediaFile")
        assert media is not None
        assert media.attrib["type"] == "video/mp4"
        assert "${CLICK_URL}" in video.adm


def test_demo_native_markup_is_native_1_2_json() -> None:
    [native] = [
        cr for c in demo_campaigns("t") for cr in c.creatives if cr.format is CreativeFormat.NATIVE
    ]

    markup = json.loads(native.adm)

    assert markup["ver"] == "1.2"
    assert markup["link"]["url"] == "${CLICK_URL}"
    assert {"title", "img"} <= {key for asset in markup["assets"] for key in asset}


def test_demo_banners_link_through_click_macro() -> None:
    banners = [
        cr for c in demo_campaigns("t") for cr in c.creatives if cr.format is CreativeFormat.BANNER
    ]

    for banner in banners:
        assert banner.adm.startswith('<a href="${CLICK_URL}"')
        assert f'width="{banner.w}" height="{banner.h}"' in banner.adm


def test_demo_creatives_pass_the_mobile_example_blocklists() -> None:
    campaigns = demo_campaigns("t")
    creatives = [cr for c in campaigns for cr in c.creatives]
    leaderboards = [c for c in live(campaigns) if has_banner(c, 728, 90)]

    assert all(cr.click_url and cr.click_url.startswith("https://") for cr in creatives)
    assert all(cr.adomain and not set(cr.adomain) & BLOCKED_ADVERTISERS for cr in creatives)
    assert all(cr.cat and not set(cr.cat) & BLOCKED_CATEGORIES for cr in creatives)
    assert len(leaderboards) >= 4


def test_demo_has_the_agency1_deal() -> None:
    [pmp] = [c for c in demo_campaigns("t") if c.deal_ids]

    assert pmp.name == "Agency1 PMP"
    assert (pmp.seat, pmp.deal_ids) == ("Agency1", ["AB-Agency1-0001"])
    assert (pmp.max_bid, pmp.bid_strategy) == (Decimal(4), BidStrategy.FIXED_CPM)
    assert has_banner(pmp, 300, 250)


def test_demo_targeting_speaks_the_profiles_vocabulary() -> None:
    targeted = [c.targeting for c in demo_campaigns("t") if c.targeting != Targeting()]

    assert any(t.interests for t in targeted)
    assert any(t.segments for t in targeted)
    assert any(t.countries for t in targeted)
    assert any(t.device_types for t in targeted)
    assert {i for t in targeted for i in t.interests} <= set(INTERESTS)
    assert {s for t in targeted for s in t.segments} <= set(SEGMENTS)


def test_demo_is_the_same_for_the_same_seed() -> None:
    assert demo_campaigns("t", seed=7) == demo_campaigns("t", seed=7)
    assert list(demo_profiles("t", 50, seed=7)) == list(demo_profiles("t", 50, seed=7))
    assert demo_campaigns("t", seed=7) != demo_campaigns("t", seed=8)


def test_demo_profiles_start_with_iab_example_users_then_numbered_ones() -> None:
    profiles = list(demo_profiles("t", 10))

    assert [p.user_id for p in profiles] == [
        *IAB_EXAMPLE_USER_IDS,
        *(f"user-{n:06d}" for n in range(1, 8)),
    ]
    assert all(p.consent.personalized_ads for p in profiles[:3])
    assert "auto-intenders" in profiles[2].segments


def test_demo_profiles_follow_the_described_shape() -> None:
    profiles = list(demo_profiles("t", 20_000))
    tiers = Counter(p.loyalty_tier.value if p.loyalty_tier else "none" for p in profiles)
    share = {tier: count / len(profiles) for tier, count in tiers.items()}

    assert len({p.user_id for p in profiles}) == 20_000
    assert all(3 <= len(p.interests) <= 8 for p in profiles)
    assert all(0 <= v <= 1 for p in profiles for v in p.interests.values())
    assert all(set(p.interests) <= set(INTERESTS) for p in profiles)
    assert all(0 <= len(p.segments) <= 4 and set(p.segments) <= set(SEGMENTS) for p in profiles)
    assert {p.timezone for p in profiles} <= set(TIMEZONES)
    assert abs(share["green"] - 0.60) < 0.02
    assert abs(share["gold"] - 0.25) < 0.02
    assert abs(share["reserve"] - 0.10) < 0.02
    assert abs(share["none"] - 0.05) < 0.02
    assert abs(sum(p.consent.personalized_ads for p in profiles) / 20_000 - 0.9) < 0.02
