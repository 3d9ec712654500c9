"""``campaign-express``: every process of the platform starts here."""

from __future__ import annotations

import os

# One BLAS thread per process: the fleet runs several agents per core, and a multi-threaded
# matmul on a 16x256 batch is slower than a single-threaded one (and oversubscribes the cores).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import asyncio
import logging
import sys
from collections.abc import Coroutine
from typing import Any

import click
from pydantic import ValidationError

from adapters.settings import Settings
from domain.platform import Role

DEMO_PROFILES = 100_000


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        raise click.ClickException(f"invalid settings:\n{error}") from error


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _run(main: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:  # not on Windows
        asyncio.run(main)
    else:
        uvloop.run(main)


def _run_on_temporal(main: Coroutine[Any, Any, None]) -> None:
    """``_run``, with Temporal's startup failures (no server, a dev server that would not
    start, search attributes we may not add) told as one clear line instead of a traceback."""
    from temporal.client import TemporalUnavailable
    from temporal.dev_server import DevServerError
    from temporal.search_attributes import SearchAttributesMissing

    try:
        _run(main)
    except (TemporalUnavailable, DevServerError, SearchAttributesMissing) as error:
        raise click.ClickException(str(error)) from error


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
def cli() -> None:
    """CampaignExpress: real-time offers over OpenRTB, journeys and approvals on Temporal.

    Settings come from CE_* environment variables; unset service URLs mean embedded defaults
    (SQLite, chdb and in-process bus and counters under CE_HOME).
    """


@cli.command()
@click.option("--demo/--no-demo", default=False, help="load the demo tenant first if none exists")
def up(demo: bool) -> None:
    """Run the whole platform in one process on embedded defaults."""
    from adapters.db import upgrade
    from workers.demo import demo_present, load_demo
    from workers.serve import serve_up

    settings = _settings()
    _configure_logging(settings)
    settings.home.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url_or_default)
    if demo and not demo_present(settings.database_url_or_default):
        click.echo(load_demo(settings.database_url_or_default, profiles=DEMO_PROFILES).describe())
    _run_on_temporal(serve_up(settings))


@cli.command()
def api() -> None:
    """Run the REST, gRPC and metrics servers (cluster mode)."""
    from workers.serve import serve_api

    settings = _settings()
    _configure_logging(settings)
    _run(serve_api(settings))


@cli.command()
def worker() -> None:
    """Run a Temporal worker for the platform's workflows and activities (cluster mode)."""
    from workers.serve import serve_worker

    settings = _settings()
    if settings.temporal_address is None:
        raise click.ClickException(
            "a worker joins a Temporal cluster: set CE_TEMPORAL_ADDRESS (host:port), and "
            "CE_TEMPORAL_NAMESPACE if not 'default'; `campaign-express up` runs its own "
            "Temporal instead"
        )
    _configure_logging(settings)
    _run_on_temporal(serve_worker(settings))


@cli.command()
@click.option("--agents", default=4, type=click.IntRange(min=1), help="bid agents in this process")
def bidder(agents: int) -> None:
    """Run a bid worker taking requests from NATS subject `bids` (queue group `bidders`)."""
    from workers.serve import serve_bidder

    settings = _settings()
    if settings.nats_url is None or settings.redis_url is None:
        raise click.ClickException(
            "a bidder needs CE_NATS_URL (where bids arrive) and CE_REDIS_URL (caps and budgets "
            "shared with the other bidders)"
        )
    _configure_logging(settings)
    _run(serve_bidder(settings, agents))


@cli.command("analytics-sink")
def analytics_sink() -> None:
    """Move analytics events from JetStream stream `analytics` into ClickHouse."""
    from workers.serve import serve_analytics_sink

    settings = _settings()
    if settings.nats_url is None:
        raise click.ClickException("the analytics sink reads JetStream: set CE_NATS_URL")
    _configure_logging(settings)
    _run(serve_analytics_sink(settings))


@cli.command()
def migrate() -> None:
    """Apply database migrations up to the newest."""
    from adapters.db import current_revision, upgrade

    settings = _settings()
    _configure_logging(settings)
    settings.home.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url_or_default)
    click.echo(f"database at revision {current_revision(settings.database_url_or_default)}")


@cli.command()
@click.option("--profiles", default=DEMO_PROFILES, type=click.IntRange(min=0))
def demo(profiles: int) -> None:
    """Load the demo tenant: live campaigns and customer profiles (replacing an earlier load)."""
    from workers.demo import load_demo

    settings = _settings()
    _configure_logging(settings)
    settings.home.mkdir(parents=True, exist_ok=True)
    click.echo(load_demo(settings.database_url_or_default, profiles=profiles).describe())


@cli.group()
def apikey() -> None:
    """Create and revoke API keys, the credentials of the REST API (/api/v1)."""


_ROLES = tuple(role.value for role in Role)
_CLI_ACTOR = "campaign-express apikey"


def _prepared_settings() -> Settings:
    settings = _settings()
    _configure_logging(settings)
    settings.home.mkdir(parents=True, exist_ok=True)
    return settings


@apikey.command("create")
@click.option("--tenant", required=True, help="tenant name; created if it does not exist")
@click.option("--role", required=True, type=click.Choice(_ROLES), help="what the key may do")
@click.option("--label", default=None, help="what the key is for  [default: cli <role> key]")
def apikey_create(tenant: str, role: str, label: str | None) -> None:
    """Create an API key. The key is the last line of the output, shown this once only."""
    from adapters.auth import create_api_key
    from adapters.db import ApiKeyRepository, AuditRepository, Database, TenantRepository, upgrade
    from adapters.system import SystemClock, new_id
    from domain.identity import Actor, new_audit_entry

    settings = _prepared_settings()
    upgrade(settings.database_url_or_default)
    actor = Actor(kind="system", id="cli", name=_CLI_ACTOR)

    async def create() -> tuple[str, str, str]:
        database = Database(settings.database_url_or_default)
        try:
            owner = await TenantRepository(database.async_session).ensure(tenant)
            now = SystemClock().now()
            key, token = await create_api_key(
                ApiKeyRepository(database.async_session),
                tenant_id=owner.id,
                label=label or f"cli {role} key",
                role=Role(role),
                created_by=actor,
                now=now,
            )
            await AuditRepository(database.async_session).append(
                new_audit_entry(
                    entry_id=new_id(),
                    tenant_id=owner.id,
                    at=now,
                    actor=actor,
                    action="api_key.create",
                    target_type="api_key",
                    target_id=key.id,
                    after=key,
                )
            )
            return owner.id, key.id, token
        finally:
            await database.dispose()

    tenant_id, key_id, token = asyncio.run(create())
    click.echo(f"tenant  {tenant} ({tenant_id})")
    click.echo(f"role    {role}")
    click.echo(f"key id  {key_id}")
    click.echo("Store the key now: only its hash is kept, it cannot be shown again.")
    click.echo(token)


@apikey.command("revoke")
@click.option("--tenant", required=True, help="the tenant the key belongs to")
@click.argument("key_id")
def apikey_revoke(tenant: str, key_id: str) -> None:
    """Revoke an API key by its id (the part after `ce_`, before the second `_`)."""
    from adapters.db import (
        ApiKeyRepository,
        AuditRepository,
        Database,
        TenantAccountRepository,
        upgrade,
    )
    from adapters.system import SystemClock, new_id
    from domain.identity import Actor, new_audit_entry

    settings = _prepared_settings()
    upgrade(settings.database_url_or_default)
    actor = Actor(kind="system", id="cli", name=_CLI_ACTOR)

    async def revoke() -> bool:
        database = Database(settings.database_url_or_default)
        try:
            owner = await TenantAccountRepository(database.async_session).find(tenant)
            if owner is None:
                return False
            now = SystemClock().now()
            revoked = await ApiKeyRepository(database.async_session).revoke(
                owner.id, key_id, now=now
            )
            if revoked is None:
                return False
            before, after = revoked
            if before != after:
                await AuditRepository(database.async_session).append(
                    new_audit_entry(
                        entry_id=new_id(),
                        tenant_id=owner.id,
                        at=now,
                        actor=actor,
                        action="api_key.revoke",
                        target_type="api_key",
                        target_id=key_id,
                        before=before,
                        after=after,
                    )
                )
            return True
        finally:
            await database.dispose()

    if not asyncio.run(revoke()):
        raise click.ClickException(f"tenant {tenant!r} has no API key {key_id!r}")
    click.echo(
        f"revoked {key_id}; running API processes refuse it within "
        f"{settings.auth.credential_cache_ttl_s:g} s"
    )


def main() -> None:
    cli()
