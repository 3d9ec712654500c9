"""The relational schema, as SQLModel tables.

Every table subclasses ``TableBase``, whose metadata carries the naming convention, so Alembic
gives constraints and indexes the same names on SQLite and PostgreSQL. A new table must
subclass it too, or migrations will not see it.

Domain models never leave this package as rows: ``convert`` maps between the two.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Index,
    Integer,
    MetaData,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from adapters.db.types import JsonDocument, Money, UtcDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

ID_LENGTH = 36  # str(uuid4())
NAME_LENGTH = 200
CODE_LENGTH = 32  # enum values: statuses, strategies, formats, tiers


class TableBase(SQLModel, registry=registry(metadata=metadata)):
    """Base of every table: our own metadata, apart from SQLModel's global one."""


def _money(*, nullable: bool) -> Any:
    return Field(sa_column=Column(Money(), nullable=nullable))


def _timestamp(*, nullable: bool) -> Any:
    return Field(sa_column=Column(UtcDateTime(), nullable=nullable))


def _json() -> Any:
    return Field(sa_column=Column(JsonDocument(), nullable=False))


class TenantRow(TableBase, table=True):
    __tablename__ = "tenants"

    id: str = Field(primary_key=True, max_length=ID_LENGTH)
    name: str = Field(max_length=NAME_LENGTH, unique=True)
    seat: str | None = Field(default=None, max_length=NAME_LENGTH)
    created_at: datetime = _timestamp(nullable=False)


class CampaignRow(TableBase, table=True):
    __tablename__ = "campaigns"

    id: str = Field(primary_key=True, max_length=ID_LENGTH)
    tenant_id: str = Field(foreign_key="tenants.id", index=True, max_length=ID_LENGTH)
    name: str = Field(max_length=NAME_LENGTH)
    campaign_type: str = Field(max_length=CODE_LENGTH)
    status: str = Field(index=True, max_length=CODE_LENGTH)
    currency: str = Field(min_length=3, max_length=3)
    budget: Decimal = _money(nullable=False)
    daily_budget: Decimal | None = _money(nullable=True)
    bid_floor: Decimal = _money(nullable=False)
    max_bid: Decimal = _money(nullable=False)
    start_at: datetime | None = _timestamp(nullable=True)
    end_at: datetime | None = _timestamp(nullable=True)
    bid_strategy: str = Field(max_length=CODE_LENGTH)
    targeting: dict[str, Any] = _json()
    frequency_cap_per_hour: int | None = None
    frequency_cap_per_day: int | None = None
    seat: str | None = Field(default=None, max_length=NAME_LENGTH)
    deal_ids: list[str] = _json()
    created_at: datetime = _timestamp(nullable=False)
    updated_at: datetime = _timestamp(nullable=False)
    # Incremented by every write, so an editor holding an older number can tell the row
    # changed under it (optimistic concurrency).
    version: int = 1


class CreativeRow(TableBase, table=True):
    __tablename__ = "creatives"
    __table_args__ = (UniqueConstraint("campaign_id", "position"),)

    id: str = Field(primary_key=True, max_length=ID_LENGTH)
    # The unique (campaign_id, position) index also serves lookups by campaign.
    campaign_id: str = Field(foreign_key="campaigns.id", ondelete="CASCADE", max_length=ID_LENGTH)
    tenant_id: str = Field(foreign_key="tenants.id", max_length=ID_LENGTH)
    format: str = Field(max_length=CODE_LENGTH)
    w: int | None = None
    h: int | None = None
    duration_s: int | None = None
    mimes: list[str] = _json()
    adm: str = Field(sa_column=Column(Text(), nullable=False))
    click_url: str | None = Field(default=None, max_length=2048)
    adomain: list[str] = _json()
    cat: list[str] = _json()
    variants: list[str] = _json()
    # The campaign's creatives come back in the order they were saved.
    position: int


class UserProfileRow(TableBase, table=True):
    __tablename__ = "user_profiles"

    tenant_id: str = Field(
        primary_key=True, foreign_key="tenants.id", ondelete="CASCADE", max_length=ID_LENGTH
    )
    # Exchanges send their own buyer uids (hashes, long digit strings), not our UUIDs.
    user_id: str = Field(primary_key=True, max_length=255)
    interests: dict[str, float] = _json()
    segments: list[str] = _json()
    loyalty_tier: str | None = Field(default=None, max_length=CODE_LENGTH)
    consent: dict[str, bool] = _json()
    timezone: str = Field(max_length=64)
    # Contact details and whatever else ingested events set (email, phone, first_name, push
    # tokens...): read by activities, never put into a workflow's history.
    traits: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JsonDocument(), nullable=False, server_default="{}"),
    )
    updated_at: datetime = _timestamp(nullable=False)


CATALOG_REVISION_ID = 1


class CatalogRevisionRow(TableBase, table=True):
    """One row whose counter moves with every campaign or creative write.

    Bidders in any process poll this single cheap SELECT and reload the catalog only when
    the number changed.
    """

    __tablename__ = "catalog_revision"
    __table_args__ = (CheckConstraint(f"id = {CATALOG_REVISION_ID}", name="single_row"),)

    id: int = Field(
        default=CATALOG_REVISION_ID,
        sa_column=Column(Integer(), primary_key=True, autoincrement=False),
    )
    revision: int = Field(sa_column=Column(BigInteger(), nullable=False))


# Core handles on the same tables, for statements that need no ORM objects.
tenants_table = metadata.tables["tenants"]
campaigns_table = metadata.tables["campaigns"]
creatives_table = metadata.tables["creatives"]
user_profiles_table = metadata.tables["user_profiles"]
catalog_revision_table = metadata.tables["catalog_revision"]


# --- the platform: users, API keys, audit log ---------------------------------------------------

EMAIL_LENGTH = 320
REFERENCE_LENGTH = 300  # "<kind>:<id>" of an actor, or an id of any other object
SHA256_HEX_LENGTH = 64


class UserRow(TableBase, table=True):
    """People who sign in. Not customers: those are ``user_profiles``."""

    __tablename__ = "users"
    # Also the index for listing a tenant's users.
    __table_args__ = (UniqueConstraint("tenant_id", "email"),)

    id: str = Field(primary_key=True, max_length=ID_LENGTH)
    tenant_id: str = Field(foreign_key="tenants.id", ondelete="CASCADE", max_length=ID_LENGTH)
    email: str = Field(max_length=EMAIL_LENGTH)
    display_name: str = Field(max_length=NAME_LENGTH)
    role: str = Field(max_length=CODE_LENGTH)
    # "scrypt$<n>$<r>$<p>$<salt>$<hash>": the parameters travel with each hash.
    password_hash: str = Field(max_length=255)
    disabled: bool = False
    created_at: datetime = _timestamp(nullable=False)
    updated_at: datetime = _timestamp(nullable=False)


class ApiKeyRow(TableBase, table=True):
    """An API key without its secret: only the secret's SHA-256 is kept."""

    __tablename__ = "api_keys"

    # The key id is part of the key itself (ce_<id>_<secret>), so a request finds its row
    # by primary key before comparing hashes.
    id: str = Field(primary_key=True, max_length=ID_LENGTH)
    tenant_id: str = Field(
        foreign_key="tenants.id", ondelete="CASCADE", index=True, max_length=ID_LENGTH
    )
    label: str = Field(max_length=NAME_LENGTH)
    role: str = Field(max_length=CODE_LENGTH)
    secret_hash: str = Field(max_length=SHA256_HEX_LENGTH)
    created_at: datetime = _timestamp(nullable=False)
    created_by: str = Field(max_length=REFERENCE_LENGTH)
    owner_id: str = Field(max_length=REFERENCE_LENGTH)
    revoked_at: datetime | None = _timestamp(nullable=True)
    last_used_at: datetime | None = _timestamp(nullable=True)


class AuditEntryRow(TableBase, table=True):
    """One write through the API (or the CLI): who, what, when, and the object before/after."""

    __tablename__ = "audit_log"
    # Entries are read per tenant, newest first.
    __table_args__ = (Index("ix_audit_log_tenant_id_at", "tenant_id", "at"),)

    id: str = Field(primary_key=True, max_length=ID_LENGTH)
    tenant_id: str = Field(foreign_key="tenants.id", ondelete="CASCADE", max_length=ID_LENGTH)
    at: datetime = _timestamp(nullable=False)
    actor_kind: str = Field(max_length=CODE_LENGTH)
    actor_id: str = Field(max_length=REFERENCE_LENGTH)
    actor_name: str = Field(max_length=EMAIL_LENGTH)
    action: str = Field(max_length=NAME_LENGTH)
    target_type: str = Field(max_length=CODE_LENGTH * 2)
    target_id: str = Field(max_length=REFERENCE_LENGTH)
    before: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JsonDocument(), nullable=True)
    )
    after: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JsonDocument(), nullable=True)
    )


users_table = metadata.tables["users"]
api_keys_table = metadata.tables["api_keys"]
audit_log_table = metadata.tables["audit_log"]


class LifecycleEventRow(TableBase, table=True):
    """A campaign's decision history: transitions, votes, reminders, escalations.

    Append-only, written by the lifecycle workflow's activities; ``idempotency_key`` makes a
    retried activity a no-op.
    """

    __tablename__ = "lifecycle_events"

    id: str = Field(primary_key=True, max_length=ID_LENGTH)
    tenant_id: str = Field(foreign_key="tenants.id", ondelete="CASCADE", max_length=ID_LENGTH)
    campaign_id: str = Field(
        foreign_key="campaigns.id", ondelete="CASCADE", index=True, max_length=ID_LENGTH
    )
    kind: str = Field(max_length=CODE_LENGTH)  # transition, vote, reminder, escalation
    submission_id: str = Field(default="", max_length=64)  # the workflow run of a submission
    actor_id: str = Field(default="", max_length=255)
    payload: dict[str, Any] = _json()
    at: datetime = _timestamp(nullable=False)
    idempotency_key: str = Field(max_length=255, unique=True)


class ApprovalRuleRow(TableBase, table=True):
    """A tenant's approval rule for one campaign type (``*``: the tenant's default)."""

    __tablename__ = "approval_rules"

    tenant_id: str = Field(
        primary_key=True, foreign_key="tenants.id", ondelete="CASCADE", max_length=ID_LENGTH
    )
    campaign_type: str = Field(primary_key=True, max_length=CODE_LENGTH)
    rule: dict[str, Any] = _json()
    updated_at: datetime = _timestamp(nullable=False)


class BrandGuidelinesRow(TableBase, table=True):
    """A tenant's brand guidelines: one document, replaced whole."""

    __tablename__ = "brand_guidelines"

    tenant_id: str = Field(
        primary_key=True, foreign_key="tenants.id", ondelete="CASCADE", max_length=ID_LENGTH
    )
    document: dict[str, Any] = _json()
    updated_at: datetime = _timestamp(nullable=False)


class BrandAssetRow(TableBase, table=True):
    """A logo, image, video, font or document the brand may use, by reference."""

    __tablename__ = "brand_assets"

    id: str = Field(primary_key=True, max_length=ID_LENGTH)
    tenant_id: str = Field(
        foreign_key="tenants.id", ondelete="CASCADE", index=True, max_length=ID_LENGTH
    )
    name: str = Field(max_length=NAME_LENGTH)
    kind: str = Field(max_length=CODE_LENGTH)
    url: str = Field(max_length=2048)
    tags: list[str] = _json()
    usage_rights_until: datetime | None = _timestamp(nullable=True)
    created_at: datetime = _timestamp(nullable=False)


class CalendarEntryRow(TableBase, table=True):
    """An event or milestone on the campaign calendar, on its own or tied to a campaign."""

    __tablename__ = "calendar_entries"
    __table_args__ = (Index("ix_calendar_entries_tenant_id_starts_at", "tenant_id", "starts_at"),)

    id: str = Field(primary_key=True, max_length=ID_LENGTH)
    tenant_id: str = Field(foreign_key="tenants.id", ondelete="CASCADE", max_length=ID_LENGTH)
    campaign_id: str | None = Field(
        default=None, foreign_key="campaigns.id", ondelete="CASCADE", max_length=ID_LENGTH
    )
    kind: str = Field(max_length=CODE_LENGTH)  # event or milestone
    title: str = Field(max_length=NAME_LENGTH)
    starts_at: datetime = _timestamp(nullable=False)
    ends_at: datetime | None = _timestamp(nullable=True)
    notes: str = Field(default="", sa_column=Column(Text(), nullable=False, server_default=""))
    created_at: datetime = _timestamp(nullable=False)


lifecycle_events_table = metadata.tables["lifecycle_events"]
approval_rules_table = metadata.tables["approval_rules"]
brand_guidelines_table = metadata.tables["brand_guidelines"]
brand_assets_table = metadata.tables["brand_assets"]
calendar_entries_table = metadata.tables["calendar_entries"]


# --- journeys, events and messages (issue 4) -----------------------------------------------------


class JourneyRow(TableBase, table=True):
    """A journey and its working draft; published versions are in ``journey_versions``."""

    __tablename__ = "journeys"

    id: str = Field(primary_key=True, max_length=ID_LENGTH)
    tenant_id: str = Field(
        foreign_key="tenants.id", ondelete="CASCADE", index=True, max_length=ID_LENGTH
    )
    name: str = Field(max_length=NAME_LENGTH)
    status: str = Field(max_length=CODE_LENGTH)  # draft, published, paused, archived
    draft: dict[str, Any] = _json()
    published_version: int | None = None
    created_at: datetime = _timestamp(nullable=False)
    updated_at: datetime = _timestamp(nullable=False)


class JourneyVersionRow(TableBase, table=True):
    """A published definition, immutable: customers inside finish on the version they entered."""

    __tablename__ = "journey_versions"

    journey_id: str = Field(
        primary_key=True, foreign_key="journeys.id", ondelete="CASCADE", max_length=ID_LENGTH
    )
    version: int = Field(primary_key=True)
    definition: dict[str, Any] = _json()
    published_at: datetime = _timestamp(nullable=False)
    published_by: str = Field(max_length=REFERENCE_LENGTH)


class JourneyEntryRow(TableBase, table=True):
    """One customer's pass through a journey: entry rules count these."""

    __tablename__ = "journey_entries"
    __table_args__ = (
        Index("ix_journey_entries_journey_customer", "journey_id", "customer_id", "entered_at"),
    )

    id: str = Field(primary_key=True, max_length=ID_LENGTH)
    tenant_id: str = Field(foreign_key="tenants.id", ondelete="CASCADE", max_length=ID_LENGTH)
    journey_id: str = Field(foreign_key="journeys.id", ondelete="CASCADE", max_length=ID_LENGTH)
    customer_id: str = Field(max_length=255)
    version: int
    entry_number: int
    trigger_event_id: str | None = Field(default=None, max_length=255)
    entered_at: datetime = _timestamp(nullable=False)
    exited_at: datetime | None = _timestamp(nullable=True)
    exit_reason: str | None = Field(default=None, max_length=NAME_LENGTH)


class CustomerEventRow(TableBase, table=True):
    """An ingested event, once per (tenant, event id): journeys fetch payloads from here.

    ``processed_at`` stays null until the trigger evaluator has applied the event's traits and
    entered or signalled its journeys: without NATS the unprocessed rows are the event queue,
    and with it a redelivered message finds the event already processed.
    """

    __tablename__ = "customer_events"
    __table_args__ = (
        Index("ix_customer_events_customer", "tenant_id", "customer_id", "occurred_at"),
        Index("ix_customer_events_pending", "processed_at", "priority", "received_at"),
    )

    tenant_id: str = Field(
        primary_key=True, foreign_key="tenants.id", ondelete="CASCADE", max_length=ID_LENGTH
    )
    event_id: str = Field(primary_key=True, max_length=255)
    customer_id: str = Field(max_length=255)
    name: str = Field(max_length=100)
    source: str = Field(max_length=CODE_LENGTH)
    priority: int = 0
    occurred_at: datetime = _timestamp(nullable=False)
    received_at: datetime = _timestamp(nullable=False)
    properties: dict[str, Any] = _json()
    traits: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JsonDocument(), nullable=False, server_default="{}"),
    )
    processed_at: datetime | None = _timestamp(nullable=True)


class MessageSendRow(TableBase, table=True):
    """A message, recorded before it leaves: the idempotency key makes every send happen once.

    Frequency caps, fatigue and send-time optimisation read these (sends per local day, per
    week, and when opens happened).
    """

    __tablename__ = "message_sends"
    __table_args__ = (
        Index("ix_message_sends_customer", "tenant_id", "customer_id", "channel", "sent_at"),
        Index("ix_message_sends_vendor_message", "vendor", "vendor_message_id"),
    )

    idempotency_key: str = Field(primary_key=True, max_length=REFERENCE_LENGTH)
    tenant_id: str = Field(foreign_key="tenants.id", ondelete="CASCADE", max_length=ID_LENGTH)
    customer_id: str = Field(max_length=255)
    channel: str = Field(max_length=CODE_LENGTH)
    journey_id: str | None = Field(default=None, max_length=ID_LENGTH)
    node_id: str | None = Field(default=None, max_length=64)
    workflow_id: str | None = Field(default=None, max_length=REFERENCE_LENGTH)
    vendor: str = Field(max_length=CODE_LENGTH)
    vendor_message_id: str | None = Field(default=None, max_length=255)
    status: str = Field(max_length=CODE_LENGTH)  # sending, sent, failed, delivered, opened, ...
    transactional: bool = False
    local_day: str = Field(max_length=10)  # the customer's calendar day when it was sent
    sent_at: datetime = _timestamp(nullable=False)
    opened_at: datetime | None = _timestamp(nullable=True)


class SuppressionRow(TableBase, table=True):
    """An address a channel must not send to: for good, or until ``expires_at``."""

    __tablename__ = "suppressions"

    tenant_id: str = Field(
        primary_key=True, foreign_key="tenants.id", ondelete="CASCADE", max_length=ID_LENGTH
    )
    channel: str = Field(primary_key=True, max_length=CODE_LENGTH)
    address: str = Field(primary_key=True, max_length=320)
    reason: str = Field(max_length=CODE_LENGTH)
    created_at: datetime = _timestamp(nullable=False)
    expires_at: datetime | None = _timestamp(nullable=True)


class WebhookDeliveryRow(TableBase, table=True):
    """A vendor webhook event already applied: redeliveries are answered and ignored."""

    __tablename__ = "webhook_deliveries"

    vendor: str = Field(primary_key=True, max_length=CODE_LENGTH)
    event_id: str = Field(primary_key=True, max_length=255)
    received_at: datetime = _timestamp(nullable=False)


class InboxMessageRow(TableBase, table=True):
    """An in-app message, stored for the customer's app to fetch: storing it is its delivery.

    ``send_key`` is the send's idempotency key, once per tenant, so a retried send stores
    nothing more. Expired and dismissed messages stay (the send's record points at them) but
    are no longer listed.
    """

    __tablename__ = "inbox_messages"
    __table_args__ = (
        UniqueConstraint("tenant_id", "send_key"),
        Index("ix_inbox_messages_customer", "tenant_id", "customer_id", "created_at"),
    )

    tenant_id: str = Field(
        primary_key=True, foreign_key="tenants.id", ondelete="CASCADE", max_length=ID_LENGTH
    )
    id: str = Field(primary_key=True, max_length=ID_LENGTH)
    customer_id: str = Field(max_length=255)
    send_key: str = Field(max_length=REFERENCE_LENGTH)
    title: str = Field(max_length=500)
    body: str = Field(sa_column=Column(Text(), nullable=False))
    data: dict[str, Any] = _json()
    created_at: datetime = _timestamp(nullable=False)
    expires_at: datetime | None = _timestamp(nullable=True)
    read_at: datetime | None = _timestamp(nullable=True)
    dismissed_at: datetime | None = _timestamp(nullable=True)


class TenantChannelSettingsRow(TableBase, table=True):
    """A tenant's delivery policy and its own vendor accounts (overriding the platform's)."""

    __tablename__ = "tenant_channel_settings"

    tenant_id: str = Field(
        primary_key=True, foreign_key="tenants.id", ondelete="CASCADE", max_length=ID_LENGTH
    )
    delivery: dict[str, Any] = _json()
    vendors: dict[str, Any] = _json()
    updated_at: datetime = _timestamp(nullable=False)


journeys_table = metadata.tables["journeys"]
journey_versions_table = metadata.tables["journey_versions"]
journey_entries_table = metadata.tables["journey_entries"]
customer_events_table = metadata.tables["customer_events"]
message_sends_table = metadata.tables["message_sends"]
suppressions_table = metadata.tables["suppressions"]
webhook_deliveries_table = metadata.tables["webhook_deliveries"]
tenant_channel_settings_table = metadata.tables["tenant_channel_settings"]
inbox_messages_table = metadata.tables["inbox_messages"]
