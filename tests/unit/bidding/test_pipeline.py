"""The bid pipeline end to end in one process: catalog, profiles, CoLaNet, ledger, response."""

from __future__ import annotations

import html
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from domain.analytics import EventType
from domain.bidding.features import offer_slot, variant_slot
from domain.bidding.pipeline import BidOutcome, DeadlineExceeded, NoBid
from domain.campaigns import (
    BidStrategy,
    CampaignStatus,
    CreativeFormat,
    FrequencyCap,
    Targeting,
)
from domain.openrtb import MediaType, bid_request_from
from domain.profiles import LoyaltyTier
from tests.factories import banner_request, make_campaign, make_creative, make_profile
from tests.support.bidding import PipelineKit, build_pipeline
from tests.support.openrtb_schema import schema_errors


async def bid(kit: PipelineKit, **request: Any) -> BidOutcome:
    return await kit.pipeline.bid(
        bid_request_from(banner_request(**request)), deadline=kit.clock.mono + 1
    )


def body(outcome: BidOutcome) -> dict[str, Any]:
    assert outcome.response is not None, outcome.no_bid
    parsed: dict[str, Any] = orjson.loads(outcome.response.to_json())
    return parsed


async def test_banner_request_gets_a_schema_valid_bid(tmp_path: Path) -> None:
    campaign = make_campaign(max_bid=Decimal(4))
    kit = build_pipeline([campaign], tmp_path)

    outcome = await bid(kit)

    response = body(outcome)
    assert schema_errors(response) == []
    (seat,) = response["seatbid"]
    (offer,) = seat["bid"]
    assert seat["seat"] == "ce-seat"
    assert offer["impid"] == "1"
    assert offer["price"] == 4.0
    assert offer["cid"] == campaign.id
    assert offer["crid"] == campaign.creatives[0].id
    assert offer["mtype"] == MediaType.BANNER
    assert (offer["w"], offer["h"]) == (300, 250)
    assert offer["adomain"] == ["brand.example"]
    assert "https://brand.example/landing?src=ce&amp;id=1" in offer["adm"]
    assert response["cur"] == "USD"


async def test_notice_urls_carry_signed_bid_and_macros(tmp_path: Path) -> None:
    kit = build_pipeline([make_campaign(max_bid=Decimal(4))], tmp_path)
    offer = body(await bid(kit))["seatbid"][0]["bid"][0]

    for url, path in ((offer["nurl"], "win"), (offer["burl"], "billing"), (offer["lurl"], "loss")):
        parts = urlsplit(url)
        assert parts.path == f"/v1/notice/{path}"
        assert "${AUCTION_PRICE}" in url
        params = {key: values[0] for key, values in parse_qs(parts.query).items()}
        notice = kit.signer.verify(path, params | {"p": "3.5"})
        assert notice.bid_id == offer["id"]
        assert notice.bid_price_micros == 4_000
    assert "${AUCTION_LOSS}" in offer["lurl"]


async def test_blocked_category_and_advertiser_are_not_offered(tmp_path: Path) -> None:
    blocked_cat = make_campaign(creatives=[make_creative(cat=["IAB25-3"])])
    blocked_adv = make_campaign(creatives=[make_creative(adomain=["Apple.com"])])
    allowed = make_campaign(max_bid=Decimal(1))
    kit = build_pipeline([blocked_cat, blocked_adv, allowed], tmp_path)

    outcome = await bid(kit, bcat=["IAB25"], badv=["apple.com"])

    assert body(outcome)["seatbid"][0]["bid"][0]["cid"] == allowed.id
    assert kit.scorer.rows == [1]


async def test_floor_above_every_price_is_a_no_bid(tmp_path: Path) -> None:
    kit = build_pipeline([make_campaign(max_bid=Decimal(2))], tmp_path)
    imp = {"id": "1", "banner": {"w": 300, "h": 250}, "bidfloor": 3.0}

    outcome = await bid(kit, imp=[imp])

    assert outcome.response is None
    assert outcome.no_bid is NoBid.BELOW_FLOOR
    (no_bid,) = kit.sink.of_type(EventType.NO_BID)
    assert no_bid.metadata["reason"] == NoBid.BELOW_FLOOR


async def test_size_nobody_fills_is_no_matching_campaign(tmp_path: Path) -> None:
    kit = build_pipeline([make_campaign()], tmp_path)
    outcome = await bid(kit, imp=[{"id": "1", "banner": {"w": 970, "h": 250}}])
    assert outcome.no_bid is NoBid.NO_MATCHING_CAMPAIGN
    assert kit.scorer.rows == []


async def test_banner_format_list_is_matched(tmp_path: Path) -> None:
    campaign = make_campaign(creatives=[make_creative(w=728, h=90)])
    kit = build_pipeline([campaign], tmp_path)
    imp = {"id": "1", "banner": {"format": [{"w": 300, "h": 250}, {"w": 728, "h": 90}]}}
    offer = body(await bid(kit, imp=[imp]))["seatbid"][0]["bid"][0]
    assert (offer["w"], offer["h"]) == (728, 90)


async def test_private_auction_admits_only_the_deal_buyer(tmp_path: Path) -> None:
    deal_buyer = make_campaign(deal_ids=["DEAL-1"], seat="Agency1", max_bid=Decimal(4))
    open_market = make_campaign(max_bid=Decimal(8))
    kit = build_pipeline([deal_buyer, open_market], tmp_path)
    imp = {
        "id": "1",
        "banner": {"w": 300, "h": 250},
        "pmp": {
            "private_auction": 1,
            "deals": [{"id": "DEAL-1", "bidfloor": 2.5, "wseat": ["Agency1"]}],
        },
    }

    response = body(await bid(kit, imp=[imp]))

    (seat,) = response["seatbid"]
    assert seat["seat"] == "Agency1"
    assert seat["bid"][0]["dealid"] == "DEAL-1"
    assert seat["bid"][0]["cid"] == deal_buyer.id
    assert schema_errors(response) == []


async def test_deal_with_another_seat_is_not_ours(tmp_path: Path) -> None:
    deal_buyer = make_campaign(deal_ids=["DEAL-1"], seat="Agency9")
    kit = build_pipeline([deal_buyer], tmp_path)
    imp = {
        "id": "1",
        "banner": {"w": 300, "h": 250},
        "pmp": {"private_auction": 1, "deals": [{"id": "DEAL-1", "wseat": ["Agency1"]}]},
    }
    assert (await bid(kit, imp=[imp])).no_bid is NoBid.NO_MATCHING_CAMPAIGN


async def test_deal_campaign_stays_out_of_the_open_auction(tmp_path: Path) -> None:
    kit = build_pipeline([make_campaign(deal_ids=["DEAL-1"])], tmp_path)
    assert (await bid(kit)).no_bid is NoBid.NO_MATCHING_CAMPAIGN


async def test_response_currency_is_the_first_one_we_price_in(tmp_path: Path) -> None:
    kit = build_pipeline([make_campaign(max_bid=Decimal("5.4"), currency="USD")], tmp_path)
    imp = {"id": "1", "banner": {"w": 300, "h": 250}, "bidfloor": 1.0, "bidfloorcur": "EUR"}

    response = body(await bid(kit, imp=[imp], cur=["XYZ", "EUR"]))

    assert response["cur"] == "EUR"
    assert response["seatbid"][0]["bid"][0]["price"] == pytest.approx(5.4 / 1.08, abs=1e-4)


async def test_unknown_currencies_only_is_a_no_bid(tmp_path: Path) -> None:
    kit = build_pipeline([make_campaign()], tmp_path)
    assert (await bid(kit, cur=["XYZ"])).no_bid is NoBid.UNSUPPORTED_CURRENCY


async def test_hourly_cap_stops_bidding_for_that_user(tmp_path: Path) -> None:
    capped = make_campaign(frequency_cap=FrequencyCap(per_hour=2))
    kit = build_pipeline([capped], tmp_path)

    outcomes = [await bid(kit) for _ in range(3)]

    assert [o.response is not None for o in outcomes] == [True, True, False]
    assert outcomes[2].no_bid is NoBid.CAPPED_OR_BUDGET
    other_user = await bid(kit, user={"id": "user-2"})
    assert other_user.response is not None


async def test_capped_campaign_skips_users_without_an_id(tmp_path: Path) -> None:
    capped = make_campaign(frequency_cap=FrequencyCap(per_day=5), max_bid=Decimal(9))
    uncapped = make_campaign(max_bid=Decimal(1))
    kit = build_pipeline([capped, uncapped], tmp_path)

    response = body(await bid(kit, user=None))

    assert response["seatbid"][0]["bid"][0]["cid"] == uncapped.id


@pytest.mark.parametrize(
    ("tier", "boost"),
    [(None, 1.0), (LoyaltyTier.GREEN, 1.0), (LoyaltyTier.GOLD, 1.15), (LoyaltyTier.RESERVE, 1.3)],
)
async def test_loyalty_tier_boosts_a_score_scaled_price(
    tmp_path: Path, tier: LoyaltyTier | None, boost: float
) -> None:
    campaign = make_campaign(bid_strategy=BidStrategy.SCORE_SCALED, max_bid=Decimal(3))
    kit = build_pipeline([campaign], tmp_path, profiles=[make_profile(loyalty_tier=tier)])
    imp = {"id": "1", "banner": {"w": 300, "h": 250}}

    price = body(await bid(kit, imp=[imp]))["seatbid"][0]["bid"][0]["price"]

    assert kit.scorer.last is not None
    score = float(kit.scorer.last.offer[0, offer_slot(campaign.id)])
    assert price == pytest.approx(round(3 * min(score * boost, 1.0), 4))


async def test_segment_targeting_needs_the_profile(tmp_path: Path) -> None:
    targeted = make_campaign(targeting=Targeting(segments=["high-value"]))
    profiles = [make_profile("vip", segments=["high-value"]), make_profile("regular")]
    kit = build_pipeline([targeted], tmp_path, profiles=profiles)

    assert (await bid(kit, user={"id": "vip"})).response is not None
    assert (await bid(kit, user={"id": "regular"})).no_bid is NoBid.TARGETING
    assert (await bid(kit, user={"id": "stranger"})).no_bid is NoBid.TARGETING


async def test_coppa_request_never_reads_profiles(tmp_path: Path) -> None:
    targeted = make_campaign(targeting=Targeting(segments=["high-value"]))
    open_campaign = make_campaign(max_bid=Decimal(1))
    kit = build_pipeline(
        [targeted, open_campaign], tmp_path, profiles=[make_profile("vip", segments=["high-value"])]
    )

    response = body(await bid(kit, user={"id": "vip"}, regs={"coppa": 1}))

    assert response["seatbid"][0]["bid"][0]["cid"] == open_campaign.id
    assert kit.profiles.lookups == 0


async def test_gdpr_without_consent_string_bids_anonymously(tmp_path: Path) -> None:
    kit = build_pipeline([make_campaign()], tmp_path, profiles=[make_profile()])
    outcome = await bid(kit, regs={"ext": {"gdpr": 1}})
    assert outcome.response is not None
    assert kit.profiles.lookups == 0


async def test_country_and_device_targeting(tmp_path: Path) -> None:
    france_desktop = make_campaign(targeting=Targeting(countries=["fra"], device_types=[2]))
    kit = build_pipeline([france_desktop], tmp_path)

    assert (await bid(kit)).response is not None
    assert (await bid(kit, device={"devicetype": 4, "geo": {"country": "FRA"}})).response is None
    assert (await bid(kit, device={"devicetype": 2, "geo": {"country": "DEU"}})).response is None


async def test_candidates_are_capped_per_imp(tmp_path: Path) -> None:
    campaigns = [make_campaign(max_bid=Decimal(1 + i)) for i in range(10)]
    kit = build_pipeline(campaigns, tmp_path, max_candidates=4)

    outcome = await bid(kit)

    assert kit.scorer.rows == [4]
    # The strongest offers survive the cut: fixed CPM bids at max_bid, so the best is 10.
    assert body(outcome)["seatbid"][0]["bid"][0]["price"] == 10.0


async def test_each_imp_gets_its_best_bid(tmp_path: Path) -> None:
    banner = make_campaign(max_bid=Decimal(3))
    leaderboard = make_campaign(creatives=[make_creative(w=728, h=90)], max_bid=Decimal(2))
    kit = build_pipeline([banner, leaderboard], tmp_path)
    imps = [
        {"id": "a", "banner": {"w": 300, "h": 250}},
        {"id": "b", "banner": {"w": 728, "h": 90}},
    ]

    bids = body(await bid(kit, imp=imps))["seatbid"][0]["bid"]

    assert {(b["impid"], b["cid"]) for b in bids} == {("a", banner.id), ("b", leaderboard.id)}


async def test_an_imp_nobody_fills_does_not_cost_the_other_its_bid(tmp_path: Path) -> None:
    campaign = make_campaign()
    kit = build_pipeline([campaign], tmp_path)
    imps = [
        {"id": "a", "banner": {"w": 300, "h": 250}},
        {"id": "b", "banner": {"w": 970, "h": 250}},
    ]

    bids = body(await bid(kit, imp=imps))["seatbid"][0]["bid"]

    assert [(b["impid"], b["cid"]) for b in bids] == [("a", campaign.id)]


async def test_video_imp_is_matched_on_mime_and_duration(tmp_path: Path) -> None:
    vast = '<VAST version="4.0"><Ad id="1"><InLine></InLine></Ad></VAST>'
    short = make_campaign(
        creatives=[
            make_creative(
                format=CreativeFormat.VIDEO,
                duration_s=15,
                mimes=["video/mp4"],
                adm=vast,
                w=640,
                h=480,
            )
        ]
    )
    long = make_campaign(
        creatives=[
            make_creative(format=CreativeFormat.VIDEO, duration_s=60, mimes=["video/mp4"], adm=vast)
        ]
    )
    kit = build_pipeline([short, long], tmp_path)
    imp = {"id": "1", "video": {"mimes": ["video/mp4"], "minduration": 5, "maxduration": 30}}

    response = body(await bid(kit, imp=[imp]))

    (offer,) = response["seatbid"][0]["bid"]
    assert offer["cid"] == short.id
    assert offer["mtype"] == MediaType.VIDEO
    assert schema_errors(response) == []


async def test_paused_and_expired_campaigns_do_not_bid(tmp_path: Path) -> None:
    paused = make_campaign(status=CampaignStatus.PAUSED)
    kit = build_pipeline([paused], tmp_path)
    assert (await bid(kit)).no_bid is NoBid.NO_MATCHING_CAMPAIGN


async def test_events_record_request_and_bid(tmp_path: Path) -> None:
    campaign = make_campaign()
    kit = build_pipeline([campaign], tmp_path)

    await bid(kit)

    (bid_event,) = kit.sink.of_type(EventType.BID)
    assert kit.sink.of_type(EventType.NO_BID) == []
    assert bid_event.metadata["request_id"] == "req-1"
    assert bid_event.metadata["candidates"] == 1
    assert bid_event.campaign_id == campaign.id
    assert bid_event.bid_price == 5.0
    assert bid_event.user_id == "user-1"
    assert bid_event.node_id == "test-node"


async def test_deadline_passed_before_the_ledger_raises(tmp_path: Path) -> None:
    kit = build_pipeline([make_campaign()], tmp_path)
    request = bid_request_from(banner_request())
    with pytest.raises(DeadlineExceeded):
        await kit.pipeline.bid(request, deadline=kit.clock.mono)


async def test_dco_fills_in_the_variant_the_model_scores_highest(tmp_path: Path) -> None:
    variants = ["Spring <sale>", "Free shipping", "New & improved", "Last chance"]
    creative = make_creative(adm="<div>${VARIANT}</div>", variants=variants)
    kit = build_pipeline([make_campaign(creatives=[creative])], tmp_path)

    (offer,) = body(await bid(kit))["seatbid"][0]["bid"]

    assert kit.scorer.last is not None
    scores = kit.scorer.last.variant[0]  # the one candidate's row
    best = max(range(len(variants)), key=lambda i: scores[variant_slot(creative.id, i)])
    assert offer["adm"] == f"<div>{html.escape(variants[best])}</div>"
