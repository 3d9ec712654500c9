"""Builders for domain objects with sensible defaults; tests override what they are about."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from domain.campaigns import BidStrategy, Campaign, CampaignStatus, Creative, CreativeFormat
from domain.profiles import Consent, LoyaltyTier, UserProfile

_ids = itertools.count(1)

TENANT = "tenant-a"


def make_creative(**overrides: Any) -> Creative:
    number = next(_ids)
    values: dict[str, Any] = {
        "id": f"creative-{number}",
        "format": CreativeFormat.BANNER,
        "w": 300,
        "h": 250,
        "adm": '<a href="${CLICK_URL}"><img src="https://cdn.example/ad.png"></a>',
        "click_url": "https://brand.example/landing?src=ce&id=1",
        "adomain": ["brand.example"],
        "cat": ["IAB3-1"],
    }
    values.update(overrides)
    return Creative(**values)


def make_campaign(**overrides: Any) -> Campaign:
    number = next(_ids)
    values: dict[str, Any] = {
        "id": f"campaign-{number}",
        "tenant_id": TENANT,
        "name": f"Campaign {number}",
        "status": CampaignStatus.LIVE,
        "budget": Decimal(10_000),
        "daily_budget": None,
        "max_bid": Decimal(5),
        "bid_strategy": BidStrategy.FIXED_CPM,
    }
    if "creatives" not in overrides:
        values["creatives"] = [make_creative()]
    values.update(overrides)
    return Campaign(**values)


def make_profile(user_id: str = "user-1", **overrides: Any) -> UserProfile:
    values: dict[str, Any] = {
        "tenant_id": TENANT,
        "user_id": user_id,
        "interests": {"running": 0.9, "coffee": 0.4},
        "segments": ["loyalty-member"],
        "loyalty_tier": LoyaltyTier.GREEN,
        "consent": Consent(personalized_ads=True, email=True),
        "timezone": "Europe/Paris",
    }
    values.update(overrides)
    return UserProfile(**values)


def banner_request(**overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "id": "req-1",
        "imp": [{"id": "1", "banner": {"w": 300, "h": 250}, "bidfloor": 0.5}],
        "site": {"id": "site-1", "domain": "news.example", "page": "https://news.example/a"},
        "device": {"devicetype": 2, "geo": {"country": "FRA"}},
        "user": {"id": "user-1"},
        "tmax": 100,
    }
    request.update(overrides)
    return request
