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
    _run(serve_up(settings))


@cli.command()
def api() -> None:
    """Run the REST, gRPC and metrics servers (cluster mode)."""
    from workers.serve import serve_api

    settings = _settings()
    _configure_logging(settings)
    _run(serve_api(settings))


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


def main() -> None:
    cli()
