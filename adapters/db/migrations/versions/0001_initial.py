"""Tenants, campaigns, creatives, user profiles and the catalog revision.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _money() -> sa.types.TypeEngine[Any]:
    # Exact text on SQLite, which would otherwise keep amounts as doubles.
    return sa.Numeric(precision=18, scale=6).with_variant(sa.String(length=32), "sqlite")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    catalog_revision = op.create_table(
        "catalog_revision",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_catalog_revision_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_revision")),
    )
    # The one row every catalog write bumps; it must exist before the first write.
    op.bulk_insert(catalog_revision, [{"id": 1, "revision": 0}])

    op.create_table(
        "tenants",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("seat", sa.String(length=200), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("name", name=op.f("uq_tenants_name")),
    )

    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("campaign_type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("budget", _money(), nullable=False),
        sa.Column("daily_budget", _money(), nullable=True),
        sa.Column("bid_floor", _money(), nullable=False),
        sa.Column("max_bid", _money(), nullable=False),
        sa.Column("start_at", _timestamp(), nullable=True),
        sa.Column("end_at", _timestamp(), nullable=True),
        sa.Column("bid_strategy", sa.String(length=32), nullable=False),
        sa.Column("targeting", _json(), nullable=False),
        sa.Column("frequency_cap_per_hour", sa.Integer(), nullable=True),
        sa.Column("frequency_cap_per_day", sa.Integer(), nullable=True),
        sa.Column("seat", sa.String(length=200), nullable=True),
        sa.Column("deal_ids", _json(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_campaigns_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    op.create_index(op.f("ix_campaigns_status"), "campaigns", ["status"])
    op.create_index(op.f("ix_campaigns_tenant_id"), "campaigns", ["tenant_id"])

    op.create_table(
        "creatives",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("campaign_id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("w", sa.Integer(), nullable=True),
        sa.Column("h", sa.Integer(), nullable=True),
        sa.Column("duration_s", sa.Integer(), nullable=True),
        sa.Column("mimes", _json(), nullable=False),
        sa.Column("adm", sa.Text(), nullable=False),
        sa.Column("click_url", sa.String(length=2048), nullable=True),
        sa.Column("adomain", _json(), nullable=False),
        sa.Column("cat", _json(), nullable=False),
        sa.Column("variants", _json(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_creatives_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_creatives_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_creatives")),
        sa.UniqueConstraint(
            "campaign_id", "position", name=op.f("uq_creatives_campaign_id_position")
        ),
    )

    op.create_table(
        "user_profiles",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("interests", _json(), nullable=False),
        sa.Column("segments", _json(), nullable=False),
        sa.Column("loyalty_tier", sa.String(length=32), nullable=True),
        sa.Column("consent", _json(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_user_profiles_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", name=op.f("pk_user_profiles")),
    )


def downgrade() -> None:
    op.drop_table("user_profiles")
    op.drop_table("creatives")
    op.drop_index(op.f("ix_campaigns_tenant_id"), table_name="campaigns")
    op.drop_index(op.f("ix_campaigns_status"), table_name="campaigns")
    op.drop_table("campaigns")
    op.drop_table("tenants")
    op.drop_table("catalog_revision")
