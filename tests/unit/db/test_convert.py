from __future__ import annotations

from datetime import UTC, datetime

from adapters.db.convert import (
    campaign_from_row,
    campaign_values,
    creative_values,
    profile_from_row,
    profile_values,
)
from adapters.db.tables import campaigns_table, creatives_table, user_profiles_table
from domain.profiles import Consent
from tests.integration.db.factories import make_campaign, make_profile

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_campaign_values_and_back_give_the_same_campaign() -> None:
    campaign = make_campaign("tenant-1")

    rebuilt = campaign_from_row(campaign_values(campaign), creative_values(campaign))

    assert rebuilt == campaign


def test_campaign_values_name_only_real_columns() -> None:
    campaign = make_campaign("tenant-1")
    writer_columns = {"created_at", "updated_at", "version"}

    assert set(campaign_values(campaign)) | writer_columns == set(campaigns_table.c.keys())
    assert {key for row in creative_values(campaign) for key in row} == set(
        creatives_table.c.keys()
    )


def test_creative_values_number_creatives_in_order() -> None:
    campaign = make_campaign("tenant-1")

    rows = creative_values(campaign)

    assert [(row["id"], row["position"]) for row in rows] == [
        (creative.id, position) for position, creative in enumerate(campaign.creatives)
    ]
    assert {row["tenant_id"] for row in rows} == {"tenant-1"}


def test_campaign_from_row_uses_default_seat_only_when_campaign_has_none() -> None:
    own = make_campaign("t", seat="Agency1")
    none = make_campaign("t", seat=None)

    assert campaign_from_row(campaign_values(own), [], default_seat="t-seat").seat == "Agency1"
    assert campaign_from_row(campaign_values(none), [], default_seat="t-seat").seat == "t-seat"


def test_profile_values_and_back_give_the_same_profile() -> None:
    profile = make_profile("t", "u", loyalty_tier=None, consent=Consent())

    row = profile_values(profile, NOW)

    assert profile_from_row(row) == profile
    assert set(row) == set(user_profiles_table.c.keys())
