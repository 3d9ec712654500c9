"""Domain objects with every field set to something a round trip could get wrong."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from domain.campaigns import (
    BidStrategy,
    Campaign,
    CampaignStatus,
    Creative,
    CreativeFormat,
    FrequencyCap,
    Targeting,
)
from domain.profiles import Consent, LoyaltyTier, UserProfile


def new_id() -> str:
    return str(uuid.uuid4())


def make_creatives() -> list[Creative]:
    return [
        Creative(
            id=new_id(),
            format=CreativeFormat.BANNER,
            w=300,
            h=250,
            adm='<a href="${CLICK_URL}"><img src="https://b.example/a.png" alt="${VARIANT}"></a>',
            click_url="https://brand.example/landing?q=1&r=ü",
            adomain=["brand.example"],
            cat=["IAB19", "IAB3-1"],
            variants=["Fast", "Faster", "Fastest — ever"],
        ),
        Creative(
            id=new_id(),
            format=CreativeFormat.VIDEO,
            w=640,
            h=480,
            duration_s=15,
            mimes=["video/mp4", "video/webm"],
            adm='<VAST version="4.2"></VAST>',
            click_url="https://brand.example/video",
            adomain=["brand.example"],
        ),
        Creative(id=new_id(), format=CreativeFormat.NATIVE, adm='{"ver":"1.2"}'),
    ]


def make_campaign(tenant_id: str, **overrides: Any) -> Campaign:
    fields: dict[str, Any] = {
        "id": new_id(),
        "tenant_id": tenant_id,
        "name": "Autumn launch",
        "status": CampaignStatus.LIVE,
        "campaign_type": "acquisition",
        "currency": "EUR",
        "budget": Decimal("987654321012.123456"),
        "daily_budget": Decimal("5000.5"),
        "start_at": datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2))),
        "end_at": datetime(2027, 1, 1, tzinfo=UTC),
        "bid_floor": Decimal("0.000001"),
        "max_bid": Decimal("7.25"),
        "bid_strategy": BidStrategy.FIXED_CPM,
        "targeting": Targeting(
            countries=["USA", "GBR"],
            device_types=[1, 4],
            segments=["high-value"],
            interests=["running", "coffee"],
        ),
        "frequency_cap": FrequencyCap(per_hour=3, per_day=10),
        "seat": "seat-7",
        "deal_ids": ["AB-Agency1-0001", "XY-2"],
        "creatives": make_creatives(),
    }
    fields.update(overrides)
    return Campaign(**fields)


def make_profile(tenant_id: str, user_id: str, **overrides: Any) -> UserProfile:
    fields: dict[str, Any] = {
        "tenant_id": tenant_id,
        "user_id": user_id,
        "interests": {"running": 0.8125, "coffee": 0.1, "books": 1.0},
        "segments": ["high-value", "app-user"],
        "loyalty_tier": LoyaltyTier.GOLD,
        "consent": Consent(personalized_ads=True, email=True),
        "timezone": "Europe/Paris",
    }
    fields.update(overrides)
    return UserProfile(**fields)
