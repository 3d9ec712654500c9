"""The one place rows and domain models turn into each other.

Writes go out as plain column dicts (the repositories and the bulk demo loader both execute
Core statements with them); reads come back from the ORM rows or from Core rows of the same
tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from domain.campaigns import (
    BidStrategy,
    Campaign,
    CampaignStatus,
    Creative,
    CreativeFormat,
    FrequencyCap,
    Targeting,
)
from domain.identity import Actor, ApiKey, AuditEntry, User
from domain.platform import Role
from domain.profiles import Consent, LoyaltyTier, UserProfile
from domain.tenants import Tenant

Values = dict[str, Any]


class Row(Protocol):
    """A row read by column name: a SQLAlchemy ``RowMapping`` or a plain dict."""

    def __getitem__(self, key: str, /) -> Any: ...


def campaign_values(campaign: Campaign) -> Values:
    """The campaign's own columns; the writer adds created_at, updated_at and version."""
    return {
        "id": campaign.id,
        "tenant_id": campaign.tenant_id,
        "name": campaign.name,
        "campaign_type": campaign.campaign_type,
        "status": campaign.status.value,
        "currency": campaign.currency,
        "budget": campaign.budget,
        "daily_budget": campaign.daily_budget,
        "bid_floor": campaign.bid_floor,
        "max_bid": campaign.max_bid,
        "start_at": campaign.start_at,
        "end_at": campaign.end_at,
        "bid_strategy": campaign.bid_strategy.value,
        "targeting": campaign.targeting.model_dump(mode="json"),
        "frequency_cap_per_hour": campaign.frequency_cap.per_hour,
        "frequency_cap_per_day": campaign.frequency_cap.per_day,
        "seat": campaign.seat,
        "deal_ids": list(campaign.deal_ids),
    }


def creative_values(campaign: Campaign) -> list[Values]:
    """One row per creative, numbered in the campaign's order."""
    return [
        {
            "id": creative.id,
            "campaign_id": campaign.id,
            "tenant_id": campaign.tenant_id,
            "format": creative.format.value,
            "w": creative.w,
            "h": creative.h,
            "duration_s": creative.duration_s,
            "mimes": list(creative.mimes),
            "adm": creative.adm,
            "click_url": creative.click_url,
            "adomain": list(creative.adomain),
            "cat": list(creative.cat),
            "variants": list(creative.variants),
            "position": position,
        }
        for position, creative in enumerate(campaign.creatives)
    ]


def profile_values(profile: UserProfile, updated_at: datetime) -> Values:
    return {
        "tenant_id": profile.tenant_id,
        "user_id": profile.user_id,
        "interests": dict(profile.interests),
        "segments": list(profile.segments),
        "loyalty_tier": profile.loyalty_tier.value if profile.loyalty_tier else None,
        "consent": profile.consent.model_dump(mode="json"),
        "timezone": profile.timezone,
        "traits": dict(profile.traits),
        "updated_at": updated_at,
    }


def creative_from_row(row: Row) -> Creative:
    return Creative(
        id=row["id"],
        format=CreativeFormat(row["format"]),
        w=row["w"],
        h=row["h"],
        duration_s=row["duration_s"],
        mimes=row["mimes"],
        adm=row["adm"],
        click_url=row["click_url"],
        adomain=row["adomain"],
        cat=row["cat"],
        variants=row["variants"],
    )


def campaign_from_row(
    row: Row,
    creatives: Sequence[Row],
    *,
    default_seat: str | None = None,
) -> Campaign:
    """``creatives`` in position order; ``default_seat`` stands in when the campaign has none."""
    return Campaign(
        id=row["id"],
        tenant_id=row["tenant_id"],
        name=row["name"],
        status=CampaignStatus(row["status"]),
        campaign_type=row["campaign_type"],
        currency=row["currency"],
        budget=row["budget"],
        daily_budget=row["daily_budget"],
        start_at=row["start_at"],
        end_at=row["end_at"],
        bid_floor=row["bid_floor"],
        max_bid=row["max_bid"],
        bid_strategy=BidStrategy(row["bid_strategy"]),
        targeting=Targeting.model_validate(row["targeting"]),
        frequency_cap=FrequencyCap(
            per_hour=row["frequency_cap_per_hour"], per_day=row["frequency_cap_per_day"]
        ),
        seat=row["seat"] if row["seat"] is not None else default_seat,
        deal_ids=row["deal_ids"],
        creatives=[creative_from_row(creative) for creative in creatives],
    )


def profile_from_row(row: Row) -> UserProfile:
    tier = row["loyalty_tier"]
    return UserProfile(
        tenant_id=row["tenant_id"],
        user_id=row["user_id"],
        interests=row["interests"],
        segments=row["segments"],
        loyalty_tier=LoyaltyTier(tier) if tier is not None else None,
        consent=Consent.model_validate(row["consent"]),
        timezone=row["timezone"],
        traits=row["traits"] or {},
    )


def tenant_from_row(row: Row) -> Tenant:
    return Tenant(id=row["id"], name=row["name"], seat=row["seat"])


# --- the platform -------------------------------------------------------------------------------


def user_values(user: User, password_hash: str) -> Values:
    return {
        "id": user.id,
        "tenant_id": user.tenant_id,
        "email": user.email,
        "display_name": user.display_name,
        "role": user.role.value,
        "password_hash": password_hash,
        "disabled": user.disabled,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }


def user_from_row(row: Row) -> User:
    return User(
        id=row["id"],
        tenant_id=row["tenant_id"],
        email=row["email"],
        display_name=row["display_name"],
        role=Role(row["role"]),
        disabled=row["disabled"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def api_key_values(key: ApiKey, secret_hash: str) -> Values:
    return {
        "id": key.id,
        "tenant_id": key.tenant_id,
        "label": key.label,
        "role": key.role.value,
        "secret_hash": secret_hash,
        "created_at": key.created_at,
        "created_by": key.created_by,
        "owner_id": key.owner_id,
        "revoked_at": key.revoked_at,
        "last_used_at": key.last_used_at,
    }


def api_key_from_row(row: Row) -> ApiKey:
    return ApiKey(
        id=row["id"],
        tenant_id=row["tenant_id"],
        label=row["label"],
        role=Role(row["role"]),
        created_at=row["created_at"],
        created_by=row["created_by"],
        owner_id=row["owner_id"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
    )


def audit_entry_values(entry: AuditEntry) -> Values:
    return {
        "id": entry.id,
        "tenant_id": entry.tenant_id,
        "at": entry.at,
        "actor_kind": entry.actor.kind,
        "actor_id": entry.actor.id,
        "actor_name": entry.actor.name,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "before": entry.before,
        "after": entry.after,
    }


def audit_entry_from_row(row: Row) -> AuditEntry:
    return AuditEntry(
        id=row["id"],
        tenant_id=row["tenant_id"],
        at=row["at"],
        actor=Actor(kind=row["actor_kind"], id=row["actor_id"], name=row["actor_name"]),
        action=row["action"],
        target_type=row["target_type"],
        target_id=row["target_id"],
        before=row["before"],
        after=row["after"],
    )
