"""Campaigns and creatives over REST.

``CampaignCreate`` is what a marketer posts; ``CampaignPublic`` what every read returns.
Validation happens here, at the edge, with errors naming the field: money is positive and
exact, dates carry a time zone and end after they start, a daily budget fits in the budget,
each creative has what its format needs.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Generic, Self, TypeVar

from pydantic import (
    AnyHttpUrl,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from domain.campaigns import BidStrategy, CampaignStatus, CreativeFormat, FrequencyCap, Targeting

Money = Annotated[Decimal, Field(gt=0, max_digits=18, decimal_places=6)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
CampaignType = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

MAX_MARKUP_CHARS = 100_000

T = TypeVar("T")


def field_error(model: BaseModel, field: str, message: str) -> ValidationError:
    """A cross-field check's failure located at ``field``: a plain ValueError in a model
    validator would point at the whole body, and clients mark the field the error names."""
    return ValidationError.from_exception_data(
        type(model).__name__,
        [
            InitErrorDetails(
                type=PydanticCustomError("value_error", message),
                loc=(field,),
                input=getattr(model, field),
            )
        ],
    )


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class CreativeBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: CreativeFormat
    w: int | None = Field(default=None, gt=0, le=4096)
    h: int | None = Field(default=None, gt=0, le=4096)
    duration_s: int | None = Field(default=None, gt=0, le=3600)
    mimes: list[str] = Field(default_factory=list, max_length=20)
    adm: str = Field(min_length=1, max_length=MAX_MARKUP_CHARS)
    click_url: AnyHttpUrl | None = None
    adomain: list[Annotated[str, StringConstraints(min_length=1, max_length=253)]] = Field(
        default_factory=list, max_length=10
    )
    cat: list[str] = Field(default_factory=list, max_length=20)
    variants: list[Annotated[str, StringConstraints(max_length=500)]] = Field(
        default_factory=list, max_length=20
    )

    @model_validator(mode="after")
    def _has_what_its_format_needs(self) -> Self:
        if self.format is CreativeFormat.BANNER and (self.w is None or self.h is None):
            raise field_error(self, "w" if self.w is None else "h", "a banner needs w and h")
        if self.format in (CreativeFormat.VIDEO, CreativeFormat.AUDIO) and self.duration_s is None:
            raise field_error(self, "duration_s", f"a {self.format} creative needs duration_s")
        return self


class CreativeCreate(CreativeBase):
    pass


class CreativePublic(CreativeBase):
    model_config = ConfigDict(extra="ignore")

    id: str
    click_url: str | None = None  # type: ignore[assignment]  # stored as given, already checked


class CampaignBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    campaign_type: CampaignType = "standard"
    currency: Currency = "USD"
    budget: Money
    daily_budget: Money | None = None
    start_at: AwareDatetime | None = None
    end_at: AwareDatetime | None = None
    bid_floor: Decimal = Field(default=Decimal(0), ge=0, max_digits=18, decimal_places=6)
    max_bid: Money | None = Field(
        default=None, description="highest CPM offered; defaults to twice the floor, at least 1"
    )
    bid_strategy: BidStrategy = BidStrategy.SCORE_SCALED
    targeting: Targeting = Field(default_factory=Targeting)
    frequency_cap: FrequencyCap = Field(default_factory=FrequencyCap)
    seat: Annotated[str, StringConstraints(max_length=200)] | None = None
    deal_ids: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=50
    )

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.daily_budget is not None and self.daily_budget > self.budget:
            raise field_error(self, "daily_budget", "daily_budget cannot exceed budget")
        if self.start_at and self.end_at and self.end_at <= self.start_at:
            raise field_error(self, "end_at", "end_at must be after start_at")
        if self.max_bid is not None and self.max_bid < self.bid_floor:
            raise field_error(self, "max_bid", "max_bid cannot be below bid_floor")
        return self

    def resolved_max_bid(self) -> Decimal:
        return self.max_bid if self.max_bid is not None else max(self.bid_floor * 2, Decimal(1))


class CampaignCreate(CampaignBase):
    creatives: list[CreativeCreate] = Field(default_factory=list, max_length=50)


class CampaignUpdate(BaseModel):
    """Any subset of the campaign's fields; ``creatives`` replaces the list when given."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    campaign_type: CampaignType | None = None
    currency: Currency | None = None
    budget: Money | None = None
    daily_budget: Money | None = None
    start_at: AwareDatetime | None = None
    end_at: AwareDatetime | None = None
    bid_floor: Decimal | None = Field(default=None, ge=0, max_digits=18, decimal_places=6)
    max_bid: Money | None = None
    bid_strategy: BidStrategy | None = None
    targeting: Targeting | None = None
    frequency_cap: FrequencyCap | None = None
    seat: Annotated[str, StringConstraints(max_length=200)] | None = None
    deal_ids: list[str] | None = None
    creatives: list[CreativeCreate] | None = None


class CampaignPublic(BaseModel):
    id: str
    name: str
    status: CampaignStatus
    campaign_type: str
    currency: str
    budget: Decimal
    daily_budget: Decimal | None
    start_at: datetime | None
    end_at: datetime | None
    bid_floor: Decimal
    max_bid: Decimal
    bid_strategy: BidStrategy
    targeting: Targeting
    frequency_cap: FrequencyCap
    seat: str | None
    deal_ids: list[str]
    creatives: list[CreativePublic]
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: int | None = None
