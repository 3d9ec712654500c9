"""The relational store: SQLite embedded, PostgreSQL in a cluster.

``Database`` builds the engines from one URL, ``upgrade`` migrates the schema to head, and the
repositories read and write domain models in one transaction per call::

    upgrade(settings.database_url_or_default)
    db = Database(settings.database_url_or_default)
    campaigns = CampaignRepository(db.async_session)
    live = await campaigns.list_live()
"""

from adapters.db.engine import Backend, Database, UnsupportedDatabaseURLError, resolve_urls
from adapters.db.migrate import (
    MigrationError,
    current_revision,
    downgrade,
    head_revision,
    pending_changes,
    upgrade,
)
from adapters.db.platform import (
    KEEP,
    ApiKeyRepository,
    AuditRepository,
    ConcurrentUpdateError,
    EmailTakenError,
    TenantAccountRepository,
    TenantNameTakenError,
    UserRepository,
)
from adapters.db.repositories import (
    CampaignChangedError,
    CampaignNotFoundError,
    CampaignRepository,
    ProfileRepository,
    TenantRepository,
)
from adapters.db.statements import SchemaNotMigratedError
from adapters.db.tables import (
    CampaignRow,
    CatalogRevisionRow,
    CreativeRow,
    TenantRow,
    UserProfileRow,
    metadata,
)

__all__ = [
    "KEEP",
    "ApiKeyRepository",
    "AuditRepository",
    "Backend",
    "CampaignChangedError",
    "CampaignNotFoundError",
    "CampaignRepository",
    "CampaignRow",
    "CatalogRevisionRow",
    "ConcurrentUpdateError",
    "CreativeRow",
    "Database",
    "EmailTakenError",
    "MigrationError",
    "ProfileRepository",
    "SchemaNotMigratedError",
    "TenantAccountRepository",
    "TenantNameTakenError",
    "TenantRepository",
    "TenantRow",
    "UnsupportedDatabaseURLError",
    "UserProfileRow",
    "UserRepository",
    "current_revision",
    "downgrade",
    "head_revision",
    "metadata",
    "pending_changes",
    "resolve_urls",
    "upgrade",
]
