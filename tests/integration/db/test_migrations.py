from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic.autogenerate import produce_migrations, render_python_code
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from adapters.db import (
    CampaignRepository,
    Database,
    current_revision,
    downgrade,
    head_revision,
    metadata,
    pending_changes,
    upgrade,
)
from adapters.db.migrate import render_item


def test_upgrade_reaches_head_with_no_pending_changes(fresh_database_url: str) -> None:
    assert current_revision(fresh_database_url) is None

    upgrade(fresh_database_url)

    assert current_revision(fresh_database_url) == head_revision()
    assert pending_changes(fresh_database_url) == []


def test_pending_changes_lists_tables_when_database_is_not_migrated(
    fresh_database_url: str,
) -> None:
    changes = pending_changes(fresh_database_url)

    added = {change[1].name for change in changes if change[0] == "add_table"}
    assert {"tenants", "campaigns", "creatives", "user_profiles", "catalog_revision"} <= added


def test_upgrade_twice_changes_nothing(fresh_database_url: str) -> None:
    upgrade(fresh_database_url)
    upgrade(fresh_database_url)

    assert current_revision(fresh_database_url) == head_revision()


def test_concurrent_upgrades_both_succeed(fresh_database_url: str) -> None:
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = [pool.submit(upgrade, fresh_database_url) for _ in range(3)]
        for result in results:
            result.result(timeout=60)

    assert current_revision(fresh_database_url) == head_revision()


async def test_upgrade_seeds_catalog_revision_at_zero(fresh_database_url: str) -> None:
    upgrade(fresh_database_url)
    db = Database(fresh_database_url)
    try:
        assert await CampaignRepository(db.async_session).catalog_revision() == 0
    finally:
        await db.dispose()


def test_upgrade_creates_named_constraints(fresh_database_url: str) -> None:
    upgrade(fresh_database_url)
    db = Database(fresh_database_url)
    try:
        inspector = inspect(db.sync_engine)
        indexes = {index["name"] for index in inspector.get_indexes("campaigns")}
        foreign_keys = {fk["name"] for fk in inspector.get_foreign_keys("creatives")}
        uniques = {uq["name"] for uq in inspector.get_unique_constraints("creatives")}
    finally:
        db.sync_engine.dispose()
    assert {"ix_campaigns_status", "ix_campaigns_tenant_id"} <= indexes
    assert foreign_keys == {"fk_creatives_campaign_id_campaigns", "fk_creatives_tenant_id_tenants"}
    assert uniques == {"uq_creatives_campaign_id_position"}


def test_upgrade_leaves_sqlite_foreign_keys_enforced(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'campaign.db'}"
    upgrade(url)
    db = Database(url)
    try:
        with db.sync_engine.connect() as conn:
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        db.sync_engine.dispose()


def test_downgrade_to_base_drops_every_table(fresh_database_url: str) -> None:
    upgrade(fresh_database_url)

    downgrade(fresh_database_url, "base")

    assert current_revision(fresh_database_url) is None
    db = Database(fresh_database_url)
    try:
        assert set(inspect(db.sync_engine).get_table_names()) <= {"alembic_version"}
    finally:
        db.sync_engine.dispose()
    upgrade(fresh_database_url)
    assert pending_changes(fresh_database_url) == []


def test_autogenerate_writes_plain_sqlalchemy_types(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with db.sync_engine.connect() as conn:
            context = MigrationContext.configure(conn)
            operations = produce_migrations(context, metadata).upgrade_ops
            assert operations is not None
            code = render_python_code(operations, render_item=render_item)
    finally:
        db.sync_engine.dispose()
    assert "adapters" not in code
    assert "sqlmodel" not in code
    assert 'sa.Numeric(precision=18, scale=6).with_variant(sa.String(length=32), "sqlite")' in code
    assert "sa.DateTime(timezone=True)" in code
    assert 'sa.JSON().with_variant(postgresql.JSONB(), "postgresql")' in code
    assert "Text()" not in code.replace("sa.Text()", "")


def test_existing_api_keys_get_the_person_they_act_for(fresh_database_url: str) -> None:
    upgrade(fresh_database_url, "0006")
    db = Database(fresh_database_url)
    try:
        with db.sync_engine.begin() as conn:
            conn.execute(
                text("INSERT INTO tenants (id, name, created_at) VALUES ('t', 't', :at)"),
                {"at": "2026-11-01"},
            )
            made = (
                ("k-user", "user:u-1"),
                ("k-cli", "system:cli"),
                ("k-of-k-user", "api_key:k-user"),  # made by u-1's key: acts for u-1
                ("k-of-k-of-k-user", "api_key:k-of-k-user"),
                ("k-of-k-cli", "api_key:k-cli"),
            )
            for key_id, created_by in made:
                conn.execute(
                    text(
                        "INSERT INTO api_keys (id, tenant_id, label, role, secret_hash, "
                        "created_at, created_by) VALUES (:id, 't', 'l', 'manager', 'h', :at, :by)"
                    ),
                    {"id": key_id, "at": "2026-11-01", "by": created_by},
                )
        upgrade(fresh_database_url)
        with db.sync_engine.connect() as conn:
            owners = dict(conn.execute(text("SELECT id, owner_id FROM api_keys")).all())
    finally:
        db.sync_engine.dispose()
    # A user's key acts for that user; the CLI's for itself.
    assert owners == {
        "k-user": "u-1",
        "k-cli": "k-cli",
        "k-of-k-user": "u-1",
        "k-of-k-of-k-user": "u-1",
        "k-of-k-cli": "k-cli",
    }
