"""The composition root: builds each process's parts from settings, once, and closes them.

Every command (``up``, ``api``, ``bidder``, ...) asks the runtime for what it needs; each part
is built on first request, shared after that, and closed in reverse order on exit. Unset
service URLs pick the embedded part (SQLite, in-process ledger and bus, chdb).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import redis.asyncio as aioredis
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from temporalio.client import Client as TemporalClient

from activities.campaigns import CampaignActivities
from activities.journey_audience import AudienceActivities
from activities.journey_entry import JourneyStarter
from activities.journeys import JourneyActivities
from adapters import metrics
from adapters.analytics import AnalyticsBatcher, JetStreamEventPublisher, open_store
from adapters.auth import Authenticator, PasswordSignIn, TokenCodec
from adapters.bid_transport import BidTransport, InProcessBids, NatsBids
from adapters.bus.campaign_changes import (
    CampaignChanges,
    InProcessCampaignChanges,
    NatsCampaignChanges,
)
from adapters.bus.events import (
    EventQueue,
    JetStreamConfig,
    JetStreamEventQueue,
    StoredEventQueue,
)
from adapters.bus.nats_client import connect_nats
from adapters.cache.ledger import RedisLedger
from adapters.cache.profiles import TieredProfileStore
from adapters.cache.redis_client import connect_redis, redis_guard
from adapters.catalog import CatalogHolder
from adapters.channels import ChannelSenders
from adapters.db import Backend, CampaignRepository, Database, ProfileRepository, upgrade
from adapters.db.brand import BrandRepository, CalendarRepository
from adapters.db.delivery import DeliveryRepository
from adapters.db.inbox import InboxRepository
from adapters.db.journeys import (
    CustomerEventRepository,
    CustomerProfiles,
    CustomerRecords,
    EntryRepository,
    JourneyRepository,
)
from adapters.db.lifecycle import LifecycleRepository
from adapters.db.platform import (
    ApiKeyRepository,
    AuditRepository,
    TenantAccountRepository,
    UserRepository,
)
from adapters.db.webhooks import WebhookRepository
from adapters.resilience import Guard
from adapters.settings import Settings
from adapters.system import SystemClock, new_id, system_random
from adapters.throttle import InProcessThrottle, RedisThrottle, Throttle
from api.deps import AuthServices
from api.journeys import JourneyServices
from api.lifecycle import CampaignServices
from api.main import ApiServices
from api.routes.activations import ActivationServices
from api.routes.bid import BidIntake
from api.routes.brand import BrandServices
from api.routes.health import DependencyCheck
from api.routes.inbox import InboxServices
from api.routes.ingest import IngestServices
from api.webhooks import WebhookServices
from domain.analytics import EventSink
from domain.bidding.ledger import InMemoryLedger
from domain.bidding.notices import NoticeSigner
from domain.bidding.pipeline import BidPipeline, PipelineConfig
from domain.bidding.ports import DeliveryLedger, Scorer
from domain.bidding.settlement import NoticeDesk
from domain.money import FxTable
from inference.batcher import InferenceBatcher
from inference.providers import make_provider
from temporal import search_attributes
from temporal.client import connect as connect_temporal
from temporal.client import tls_config
from temporal.dev_server import DevServer, DevServerConfig
from workers.budget_watch import BudgetWatch
from workers.triggers import EvaluatorConfig, TriggerEvaluator

log = logging.getLogger(__name__)

T = TypeVar("T")

# A profile read on an L1 and L2 miss. Bids stop waiting at their own deadline; the read goes
# on to fill the cache, and only a database this slow counts as failing.
DATABASE_LOOKUP_TIMEOUT_S = 1.0
# The spend snapshot pacing reads is refreshed in the background: it may wait longer.
SNAPSHOT_TIMEOUT_S = 1.0
TEMPORAL_HEALTH_TIMEOUT_S = 1.0
THROTTLE_REDIS_TIMEOUT_S = 0.5
THROTTLE_REDIS_POOL = 8


class Role(StrEnum):
    """Which process this is; decides where analytics go and what is checked for readiness."""

    EMBEDDED = "up"
    API = "api"
    BIDDER = "bidder"
    ANALYTICS_SINK = "analytics-sink"
    WORKER = "worker"


class Runtime:
    def __init__(self, settings: Settings, role: Role) -> None:
        self.settings = settings
        self.role = role
        self.clock = SystemClock()
        self._stack = AsyncExitStack()
        self._parts: dict[str, object] = {}
        self.checks: list[DependencyCheck] = []

    async def __aenter__(self) -> Runtime:
        self.settings.home.mkdir(parents=True, exist_ok=True)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    def on_close(self, callback: Callable[[], Awaitable[object]]) -> None:
        """Run ``callback`` on exit, before everything opened earlier is closed."""
        self._stack.push_async_callback(callback)

    async def _once(self, name: str, build: Callable[[], Awaitable[T]]) -> T:
        if name not in self._parts:
            self._parts[name] = await build()
        part: T = self._parts[name]  # type: ignore[assignment]
        return part

    # --- stores and services ------------------------------------------------------------------

    async def database(self) -> Database:
        async def build() -> Database:
            url = self.settings.database_url_or_default
            if self.role is Role.EMBEDDED:
                upgrade(url)  # cluster mode migrates once, in its own `migrate` step
            database = Database(url)
            self._stack.push_async_callback(database.dispose)
            revision = CampaignRepository(database.async_session).catalog_revision
            self.checks.append(DependencyCheck("database", revision))
            return database

        return await self._once("database", build)

    async def _throttle_redis(self) -> aioredis.Redis | None:
        """A small pool of its own: REST traffic must not queue the bids for Redis
        connections, nor wait with the bid path's 50 ms timeouts."""

        async def build() -> aioredis.Redis | None:
            return self._redis_client(THROTTLE_REDIS_POOL, THROTTLE_REDIS_TIMEOUT_S)

        return await self._once("throttle_redis", build)

    async def redis(self) -> aioredis.Redis | None:
        async def build() -> aioredis.Redis | None:
            cache = self.settings.cache
            client = self._redis_client(cache.redis_pool_size, cache.redis_timeout_ms / 1000)
            if client is not None:
                self.checks.append(DependencyCheck("redis", client.ping))
            return client

        return await self._once("redis", build)

    def _redis_client(self, pool_size: int, timeout_s: float) -> aioredis.Redis | None:
        """A client of CE_REDIS_URL with a pool of its own, closed with the runtime."""
        if self.settings.redis_url is None:
            return None
        client = connect_redis(self.settings.redis_url, pool_size=pool_size, timeout_s=timeout_s)
        self._stack.push_async_callback(client.aclose)
        return client

    async def nats(self) -> NatsClient | None:
        async def build() -> NatsClient | None:
            if self.settings.nats_url is None:
                return None
            nc = await connect_nats(self.settings.nats_url, f"{self.role}@{self.settings.node_id}")
            self._stack.push_async_callback(nc.drain)

            async def probe() -> None:
                await nc.flush(timeout=1)

            self.checks.append(DependencyCheck("nats", probe))
            return nc

        return await self._once("nats", build)

    async def jetstream(self) -> JetStreamContext:
        nc = await self.nats()
        if nc is None:
            raise RuntimeError("JetStream needs CE_NATS_URL")
        return nc.jetstream()

    async def campaign_changes(self) -> CampaignChanges:
        async def build() -> CampaignChanges:
            nc = await self.nats()
            return InProcessCampaignChanges() if nc is None else NatsCampaignChanges(nc)

        return await self._once("campaign_changes", build)

    # --- Temporal -----------------------------------------------------------------------------

    async def temporal_dev_server(self) -> DevServer | None:
        """The embedded dev server: ``up`` without CE_TEMPORAL_ADDRESS starts one (or finds the
        one already serving this CE_HOME); every other case has none."""

        async def build() -> DevServer | None:
            settings = self.settings
            if settings.temporal_address is not None or self.role is not Role.EMBEDDED:
                return None
            server = DevServer(
                DevServerConfig(
                    home=settings.home,
                    port=settings.temporal.port,
                    ui_port=settings.temporal.ui_port,
                    http_port=settings.temporal.http_port,
                    metrics_port=settings.temporal.metrics_port,
                    namespace=settings.temporal_namespace,
                )
            )
            # Registered before the client and the worker: closed after them.
            self._stack.push_async_callback(server.stop)
            await server.start()
            return server

        return await self._once("temporal_dev_server", build)

    async def temporal_client(self) -> TemporalClient:
        """The client for starting workflows and sending them signals and updates, with the
        platform's search attributes registered on its namespace."""

        async def build() -> TemporalClient:
            settings = self.settings
            dev_server = await self.temporal_dev_server()
            if dev_server is not None:
                client = dev_server.client
            elif settings.temporal_address is None:
                raise RuntimeError(
                    f"campaign-express {self.role} needs a Temporal cluster: set "
                    "CE_TEMPORAL_ADDRESS (host:port)"
                )
            else:
                options = settings.temporal
                tls = None
                if options.uses_tls:
                    tls = tls_config(
                        ca_cert=options.tls_ca_cert,
                        client_cert=options.tls_client_cert,
                        client_key=options.tls_client_key,
                        server_name=options.tls_server_name,
                    )
                client = await connect_temporal(
                    settings.temporal_address,
                    settings.temporal_namespace,
                    tls=tls,
                    api_key=options.api_key.get_secret_value() if options.api_key else None,
                    wait_s=options.connect_wait_s,
                )
                await search_attributes.register(client, settings.temporal_namespace)

            async def probe() -> None:
                await client.service_client.check_health(
                    timeout=timedelta(seconds=TEMPORAL_HEALTH_TIMEOUT_S)
                )

            self.checks.append(DependencyCheck("temporal", probe))
            return client

        return await self._once("temporal_client", build)

    async def temporal_activities(self) -> list[Callable[..., Any]]:
        """Every activity the platform's workers run, built over this process's adapters
        (bound methods of activity classes, as the Temporal samples do)."""
        database = await self.database()
        campaigns = CampaignActivities(
            LifecycleRepository(database.async_session), await self.campaign_changes()
        )
        audiences = AudienceActivities(
            JourneyRepository(database.async_session),
            CustomerProfiles(database.async_session),
            await self.journey_starter(),
            self.clock,
        )
        journeys = JourneyActivities(
            CustomerRecords(database.async_session),
            DeliveryRepository(database.async_session),
            await self.channel_senders(),
        )
        return [*campaigns.all(), audiences.enter_page, *journeys.all()]

    async def channel_senders(self) -> ChannelSenders:
        """The platform's vendor accounts (settings), with tenants' own overlaid per send;
        in-app messages into the inboxes in the database."""

        async def build() -> ChannelSenders:
            database = await self.database()
            senders = ChannelSenders.from_settings(
                self.settings, inbox=InboxRepository(database.async_session)
            )
            self._stack.push_async_callback(senders.aclose)
            return senders

        return await self._once("channel_senders", build)

    async def budget_watch(self) -> BudgetWatch | None:
        """Signals lifecycles whose budget is spent. It reads spend from the ledger, so it runs
        where the ledger is shared: embedded, or with Redis; a worker without Redis has none."""

        async def build() -> BudgetWatch | None:
            if self.role is not Role.EMBEDDED and self.settings.redis_url is None:
                log.warning("no budget watch: a worker needs CE_REDIS_URL to see spend")
                return None
            catalog = await self.catalog()
            watch = BudgetWatch(catalog.current, await self.ledger(), await self.temporal_client())
            watch.start()
            self._stack.push_async_callback(watch.stop)
            return watch

        return await self._once("budget_watch", build)

    async def campaign_services(self) -> CampaignServices:
        """What the management and approval routes use."""

        async def build() -> CampaignServices:
            database = await self.database()
            return CampaignServices(
                campaigns=CampaignRepository(database.async_session),
                lifecycle=LifecycleRepository(database.async_session),
                brand=BrandRepository(database.async_session),
                temporal=self.temporal_client,
                fx=FxTable(self.settings.bid.fx_rates_usd),
            )

        return await self._once("campaign_services", build)

    # --- journeys and customer events ---------------------------------------------------------

    async def event_queue(self) -> EventQueue:
        """Customer events between ingest and the trigger evaluator: JetStream with
        CE_NATS_URL, otherwise the database's unprocessed events."""

        async def build() -> EventQueue:
            options = self.settings.events
            nc = await self.nats()
            queue: EventQueue
            if nc is None:
                database = await self.database()
                queue = StoredEventQueue(
                    CustomerEventRepository(database.async_session),
                    poll_interval_s=options.poll_interval_s,
                )
            else:
                jetstream = JetStreamEventQueue(
                    nc.jetstream(),
                    JetStreamConfig(
                        stream=options.stream,
                        subject_prefix=options.subject_prefix,
                        durable_prefix=options.durable_prefix,
                        duplicate_window_s=options.duplicate_window_s,
                        max_bytes=options.max_stream_bytes,
                        ack_wait_s=options.ack_wait_s,
                    ),
                )
                self._stack.push_async_callback(jetstream.close)
                queue = jetstream
            await queue.start()
            return queue

        return await self._once("event_queue", build)

    async def journey_starter(self) -> JourneyStarter:
        async def build() -> JourneyStarter:
            database = await self.database()
            return JourneyStarter(EntryRepository(database.async_session), self.temporal_client)

        return await self._once("journey_starter", build)

    async def journey_services(self) -> JourneyServices:
        """What the journey routes use."""
        database = await self.database()
        return JourneyServices(
            journeys=JourneyRepository(database.async_session),
            temporal=self.temporal_client,
            clock=self.clock,
        )

    async def ingest_services(self) -> IngestServices:
        options = self.settings.events
        return IngestServices(
            queue=await self.event_queue(),
            clock=self.clock,
            max_batch=options.max_batch,
            max_properties_bytes=options.max_properties_bytes,
        )

    async def webhook_services(self) -> WebhookServices:
        """What the vendor webhook routes use: the platform's verification keys, tenants'
        own accounts read per request."""
        database = await self.database()
        settings = self.settings
        return WebhookServices(
            webhooks=WebhookRepository(database.async_session),
            delivery=DeliveryRepository(database.async_session),
            queue=await self.event_queue(),
            clock=self.clock,
            sendgrid_public_key=settings.sendgrid_webhook_public_key,
            twilio_auth_token=settings.twilio_auth_token,
            stripe_secret=settings.stripe_webhook_secret,
            public_base_url=settings.public_base_url,
        )

    async def trigger_evaluator(self) -> TriggerEvaluator:
        """Consumes customer events: profiles, journey entries and signals. Started here,
        stopped (after its batch in hand) when the runtime closes."""

        async def build() -> TriggerEvaluator:
            options = self.settings.events
            sessions = (await self.database()).async_session
            evaluator = TriggerEvaluator(
                await self.event_queue(),
                events=CustomerEventRepository(sessions),
                profiles=CustomerProfiles(sessions),
                journeys=JourneyRepository(sessions),
                entries=EntryRepository(sessions),
                starter=await self.journey_starter(),
                clock=self.clock,
                config=EvaluatorConfig(
                    batch_size=options.evaluator_batch,
                    concurrency=options.evaluator_concurrency,
                ),
            )
            evaluator.start()
            self._stack.push_async_callback(evaluator.stop)
            return evaluator

        return await self._once("trigger_evaluator", build)

    # --- platform auth -------------------------------------------------------------------------

    async def auth_services(self) -> AuthServices:
        """Credentials for /api/v1: keys and users in the database, JWTs per settings.auth."""

        async def build() -> AuthServices:
            auth = self.settings.auth
            sessions = (await self.database()).async_session
            users = UserRepository(sessions)
            api_keys = ApiKeyRepository(sessions)
            tenants = TenantAccountRepository(sessions)
            tokens = TokenCodec.from_settings(auth, self.settings.home)
            return AuthServices(
                authenticator=Authenticator(
                    api_keys=api_keys,
                    users=users,
                    tokens=tokens,
                    clock=self.clock,
                    cache_ttl_s=auth.credential_cache_ttl_s,
                    last_used_interval=timedelta(seconds=auth.last_used_interval_s),
                ),
                sign_in=PasswordSignIn(
                    tenants=tenants,
                    users=users,
                    tokens=tokens,
                    clock=self.clock,
                    attempts=await self._throttle(
                        "sign-in", burst=auth.sign_in_burst, interval_s=auth.sign_in_interval_s
                    ),
                ),
                requests=await self._throttle(
                    "requests", burst=auth.requests_burst, interval_s=1 / auth.requests_per_s
                ),
                tenants=tenants,
                users=users,
                api_keys=api_keys,
                audit=AuditRepository(sessions),
                clock=self.clock,
                new_id=new_id,
            )

        return await self._once("auth_services", build)

    async def _throttle(self, name: str, *, burst: int, interval_s: float) -> Throttle:
        """Shared through Redis when there is one: every API process counts the same attempts."""
        redis = await self._throttle_redis()
        if redis is None:
            return InProcessThrottle(burst=burst, interval_s=interval_s)
        return RedisThrottle(
            redis,
            redis_guard(f"redis {name} throttle", THROTTLE_REDIS_TIMEOUT_S),
            name=name,
            burst=burst,
            interval_s=interval_s,
        )

    # --- the bid path -------------------------------------------------------------------------

    async def events(self) -> EventSink:
        """Cluster processes publish to JetStream for the analytics sink; embedded mode (and a
        process without NATS) writes to ClickHouse itself."""

        async def build() -> EventSink:
            settings = self.settings
            nc = await self.nats()
            if nc is not None and self.role is not Role.EMBEDDED:
                publisher = JetStreamEventPublisher(
                    nc.jetstream(),
                    stream=settings.analytics.stream,
                    subject=settings.analytics.subject,
                    queue_max=settings.analytics.queue_max,
                )
                await publisher.start()
                self._stack.push_async_callback(publisher.stop)
                return publisher
            store = await asyncio.to_thread(
                open_store, settings.clickhouse_url, settings.clickhouse_path
            )
            self._stack.callback(store.close)

            async def probe() -> None:
                await asyncio.to_thread(store.query, "SELECT 1")

            self.checks.append(DependencyCheck("analytics", probe))
            batcher = AnalyticsBatcher(
                store,
                settings.analytics.batch_size,
                settings.analytics.flush_interval_s,
                settings.analytics.queue_max,
                min_insert_interval_s=settings.analytics.min_insert_interval_s,
                max_insert_rows=settings.analytics.max_insert_rows,
            )
            batcher.start()
            self._stack.push_async_callback(batcher.stop)
            return batcher

        return await self._once("events", build)

    async def ledger(self) -> DeliveryLedger:
        async def build() -> DeliveryLedger:
            window = self.settings.bid.notice_window_minutes
            client = await self.redis()
            if client is None:
                return InMemoryLedger(window_minutes=window)
            ledger = RedisLedger(
                client,
                window_minutes=window,
                guard=redis_guard("redis-ledger", self.settings.cache.redis_timeout_ms / 1000),
                snapshot_guard=redis_guard("redis-spend-snapshot", SNAPSHOT_TIMEOUT_S),
            )
            catalog = await self.catalog()
            ledger.start(lambda: catalog.current().campaign_ids, self.clock.now)
            self._stack.push_async_callback(ledger.stop)
            return ledger

        return await self._once("ledger", build)

    async def catalog(self) -> CatalogHolder:
        async def build() -> CatalogHolder:
            database = await self.database()
            holder = CatalogHolder(
                CampaignRepository(database.async_session, inline_engine=_inline(database)),
                default_seat=self.settings.bid.seat,
                interval_s=self.settings.campaign_refresh_interval_s,
            )
            await holder.start(await self.campaign_changes())
            self._stack.push_async_callback(holder.stop)
            return holder

        return await self._once("catalog", build)

    async def scorer(self) -> Scorer:
        async def build() -> Scorer:
            settings = self.settings
            provider = make_provider(
                settings.inference_backend,
                settings.models_path,
                onnx_providers=settings.inference.onnx_providers,
                max_batch_size=settings.inference.batch_max,
            )
            duration = metrics.inference_duration.labels(provider.name)

            def observe(rows: int, seconds: float) -> None:
                duration.observe(seconds)
                metrics.inference_batch_rows.observe(rows)

            return InferenceBatcher(
                provider,
                max_batch=settings.inference.batch_max,
                max_wait_us=settings.inference.batch_wait_us,
                on_batch=observe,
            )

        return await self._once("scorer", build)

    async def profiles(self) -> TieredProfileStore:
        async def build() -> TieredProfileStore:
            cache = self.settings.cache
            database = await self.database()
            store = TieredProfileStore(
                ProfileRepository(database.async_session, inline_engine=_inline(database)),
                l1_size=cache.profile_l1_size,
                l1_ttl_s=cache.profile_l1_ttl_s,
                source_guard=Guard(
                    "database-profiles",
                    timeout_s=DATABASE_LOOKUP_TIMEOUT_S,
                    failures=(SQLAlchemyError, OSError),
                ),
                redis=await self.redis(),
                redis_guard=redis_guard("redis-profiles", cache.redis_timeout_ms / 1000),
                l2_ttl_s=cache.profile_l2_ttl_s,
            )
            self._stack.push_async_callback(store.close)
            return store

        return await self._once("profiles", build)

    def notice_signer(self) -> NoticeSigner:
        return NoticeSigner(self._notice_key(), self.settings.notice_base_url)

    def _notice_key(self) -> bytes:
        """The configured key, or in dev one kept in CE_HOME so restarts honour old URLs."""
        if self.settings.notice_signing_key is not None:
            return self.settings.notice_signing_key.get_secret_value().encode()
        path: Path = self.settings.home / "notice.key"
        if not path.exists():
            # Written aside and linked into place: processes starting together on one CE_HOME
            # all end up with the first key, and none ever reads a half-written file.
            draft = path.with_name(f".notice.key.{os.getpid()}")
            descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as key_file:
                key_file.write(secrets.token_urlsafe(32))
            try:
                os.link(draft, path)
            except FileExistsError:
                pass
            finally:
                draft.unlink()
        return path.read_text().strip().encode()

    async def pipeline(self) -> BidPipeline:
        async def build() -> BidPipeline:
            settings = self.settings
            catalog = await self.catalog()
            return BidPipeline(
                catalog=catalog.current,
                profiles=await self.profiles(),
                ledger=await self.ledger(),
                scorer=await self.scorer(),
                events=await self.events(),
                signer=self.notice_signer(),
                fx=FxTable(settings.bid.fx_rates_usd),
                clock=self.clock,
                random=system_random(),
                new_id=new_id,
                config=PipelineConfig(
                    max_candidates=settings.bid.max_candidates,
                    default_seat=settings.bid.seat,
                ),
                node_id=settings.node_id,
            )

        return await self._once("pipeline", build)

    async def bid_transport(self) -> BidTransport:
        async def build() -> BidTransport:
            if self.settings.bid_transport == "nats":
                nc = await self.nats()
                assert nc is not None  # settings refuse transport=nats without a URL
                return NatsBids(nc, self.settings.bid.nats_subject)
            return InProcessBids(await self.pipeline())

        return await self._once("bid_transport", build)

    async def api_services(self) -> ApiServices:
        settings = self.settings
        notice_desk = NoticeDesk(
            signer=self.notice_signer(),
            ledger=await self.ledger(),
            events=await self.events(),
            clock=self.clock,
            new_id=new_id,
            node_id=settings.node_id,
        )
        transport = await self.bid_transport()
        catalog = self._parts.get("catalog")

        def liveness() -> dict[str, bool]:
            if isinstance(catalog, CatalogHolder):
                return {"catalog": catalog.running}
            return {}

        database = await self.database()
        return ApiServices(
            bid_intake=BidIntake(
                transport,
                default_tmax_ms=settings.bid.default_tmax_ms,
                tmax_margin_ms=settings.bid.tmax_margin_ms,
            ),
            notice_desk=notice_desk,
            max_body_bytes=settings.bid.max_body_bytes,
            auth=await self.auth_services(),
            campaigns=await self.campaign_services(),
            brand=BrandServices(
                BrandRepository(database.async_session), CalendarRepository(database.async_session)
            ),
            journeys=await self.journey_services(),
            ingest=await self.ingest_services(),
            webhooks=await self.webhook_services(),
            activations=ActivationServices(self.temporal_client),
            inbox=InboxServices(
                inbox=InboxRepository(database.async_session),
                webhooks=WebhookRepository(database.async_session),
                queue=await self.event_queue(),
                clock=self.clock,
            ),
            dependency_checks=self.checks,
            liveness=liveness,
        )


def _inline(database: Database) -> Engine | None:
    """SQLite's engine, for the bid path's reads on the event loop's own thread (see
    ``ProfileRepository``); None elsewhere, where the async driver does not hop threads."""
    return database.sync_engine if database.backend is Backend.SQLITE else None
