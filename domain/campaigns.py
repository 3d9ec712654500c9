"""Campaigns and their creatives, as the bid path and the lifecycle see them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator


class CampaignStatus(StrEnum):
    """The nine lifecycle stages. Only ``LIVE`` campaigns are bid on."""

    DRAFT = "draft"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    REJECTED = "rejected"
    SCHEDULED = "scheduled"
    LIVE = "live"
    PAUSED = "paused"
    COMPLETED = "completed"
    ARCHIVED = "archived"


class BidStrategy(StrEnum):
    """How a campaign turns a CoLaNet score into a price (CPM, in the campaign's currency).

    ``fixed_cpm`` always offers ``max_bid``; ``score_scaled`` offers ``max_bid`` times the boosted
    score, so weak matches bid low and fall under floors instead of winning bad impressions.
    """

    FIXED_CPM = "fixed_cpm"
    SCORE_SCALED = "score_scaled"


class CreativeFormat(StrEnum):
    BANNER = "banner"
    VIDEO = "video"
    AUDIO = "audio"
    NATIVE = "native"


class Targeting(BaseModel):
    """Who a campaign may reach. An empty list means no restriction on that axis."""

    model_config = ConfigDict(frozen=True)

    countries: list[str] = Field(default_factory=list, description="ISO 3166-1 alpha-3, as OpenRTB")
    device_types: list[int] = Field(default_factory=list, description="AdCOM device types")
    segments: list[str] = Field(default_factory=list, description="profile in one of these")
    interests: list[str] = Field(default_factory=list, description="profile shares one of these")

    @field_validator("countries")
    @classmethod
    def _upper_case_countries(cls, countries: list[str]) -> list[str]:
        return [country.upper() for country in countries]


class FrequencyCap(BaseModel):
    """Impressions one user may get from a campaign per clock hour and per UTC day."""

    model_config = ConfigDict(frozen=True)

    per_hour: int | None = Field(default=None, gt=0)
    per_day: int | None = Field(default=None, gt=0)

    @property
    def is_capped(self) -> bool:
        return self.per_hour is not None or self.per_day is not None


class Creative(BaseModel):
    """An offer's ad: markup template plus what exchanges need to vet it."""

    model_config = ConfigDict(frozen=True)

    id: str
    format: CreativeFormat
    w: int | None = None
    h: int | None = None
    duration_s: int | None = Field(default=None, description="video and audio length")
    mimes: list[str] = Field(default_factory=list, description="video and audio file types")
    adm: str = Field(description="markup template; ${CLICK_URL} and ${AUCTION_*} macros allowed")
    click_url: str | None = None
    adomain: list[str] = Field(default_factory=list)
    cat: list[str] = Field(default_factory=list, description="IAB content categories")
    variants: list[str] = Field(
        default_factory=list, description="DCO headline variants substituted for ${VARIANT}"
    )


class Campaign(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    tenant_id: str
    name: str
    status: CampaignStatus
    campaign_type: str = "standard"
    currency: str = "USD"
    budget: Decimal = Field(ge=0, description="total budget in currency units")
    daily_budget: Decimal | None = Field(default=None, ge=0)
    start_at: datetime | None = None
    end_at: datetime | None = None
    bid_floor: Decimal = Field(default=Decimal(0), ge=0, description="our own minimum CPM")
    max_bid: Decimal = Field(gt=0, description="highest CPM this campaign offers")
    bid_strategy: BidStrategy = BidStrategy.SCORE_SCALED
    targeting: Targeting = Field(default_factory=Targeting)
    frequency_cap: FrequencyCap = Field(default_factory=FrequencyCap)
    seat: str | None = Field(
        default=None, description="buyer seat at the exchange; tenant's if unset"
    )
    deal_ids: list[str] = Field(default_factory=list, description="PMP deals this campaign buys")
    creatives: list[Creative] = Field(default_factory=list)

    def is_biddable(self, now: datetime) -> bool:
        """Live and inside its flight dates."""
        if self.status is not CampaignStatus.LIVE:
            return False
        if self.start_at is not None and now < self.start_at:
            return False
        return not (self.end_at is not None and now >= self.end_at)
