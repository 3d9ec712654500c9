"""What each long-running command does once its settings are read.

The process owns shutdown: SIGINT and SIGTERM set one event, every server and worker stops on
it, and the runtime closes stores and connections in reverse order of opening. In ``up`` that
order is: the API stops taking requests, the Temporal worker drains its activities, then the
embedded Temporal dev server stops (if this process started it). A server or worker that
stops by itself stops the process too, with its error.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator

import grpc
import uvicorn
from prometheus_client import make_asgi_app
from temporalio.worker import Worker

from adapters import metrics
from adapters.settings import Settings
from api.grpc.service import BiddingService, add_bidding_service
from api.main import create_app
from workers.analytics_sink import run_analytics_sink
from workers.bidder import BidderFleet
from workers.runtime import Role, Runtime
from workers.temporal_worker import platform_worker

log = logging.getLogger(__name__)

GRACE_S = 5.0
YOUNG_GENERATION = 20_000


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the process decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


class Servers:
    """The network servers of one process, started together and stopped together."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._http: list[tuple[_Server, asyncio.Task[None]]] = []
        self._grpc: grpc.aio.Server | None = None
        self._worker: tuple[Worker, asyncio.Task[None]] | None = None

    async def http(self, app: object, port: int, name: str) -> None:
        config = uvicorn.Config(
            app,  # type: ignore[arg-type]
            host=self._settings.api_host,
            port=port,
            loop="none",
            lifespan="off",
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=int(GRACE_S),
        )
        server = _Server(config)
        task = asyncio.create_task(server.serve(), name=f"http-{name}")
        while not server.started:
            if task.done():
                task.result()  # raises why it could not start (port taken, ...)
            await asyncio.sleep(0.01)
        self._http.append((server, task))

    async def metrics(self) -> None:
        await self.http(make_asgi_app(), self._settings.metrics_port, "metrics")

    async def grpc(self, service: BiddingService) -> None:
        server = grpc.aio.server()
        add_bidding_service(server, service)
        address = f"{self._settings.api_host}:{self._settings.grpc_port}"
        if server.add_insecure_port(address) == 0:
            raise OSError(f"cannot listen for gRPC on {address}")
        await server.start()
        self._grpc = server

    async def temporal_worker(self, worker: Worker) -> None:
        self._worker = (worker, asyncio.create_task(worker.run(), name="temporal-worker"))

    async def wait(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set, or until a server or the worker ends by itself: then raise
        why, so the process stops instead of running on without it."""
        tasks = [task for _, task in self._http]
        if self._worker is not None:
            tasks.append(self._worker[1])
        stopping = asyncio.create_task(stop.wait(), name="stop-signal")
        try:
            done, _ = await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        for task in done:
            if task is not stopping:
                task.result()
                raise RuntimeError(f"{task.get_name()} stopped by itself")

    async def stop(self) -> None:
        if self._grpc is not None:
            await self._grpc.stop(GRACE_S)
        for server, _ in self._http:
            server.should_exit = True
        for _, task in self._http:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # After the API: requests in flight may still start workflows or send updates.
        if self._worker is not None:
            worker, task = self._worker
            if task.done():  # it failed: wait() raised that already
                if not task.cancelled() and task.exception() is not None:
                    log.warning("the Temporal worker had stopped: %s", task.exception())
            else:
                await worker.shutdown()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def _base_url(settings: Settings, port: int) -> str:
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::") else settings.api_host  # noqa: S104
    return f"http://{host}:{port}"


async def _serve_api(runtime: Runtime, servers: Servers) -> list[str]:
    settings = runtime.settings
    services = await runtime.api_services()
    await servers.http(create_app(services), settings.api_port, "api")
    await servers.metrics()
    await servers.grpc(BiddingService(services.bid_intake, lambda: True))
    api = _base_url(settings, settings.api_port)
    return [
        f"REST API     {api}  (OpenAPI at {api}/docs)",
        f"OpenRTB bids POST {api}/v1/bid  ({settings.bid_transport})",
        f"gRPC         {settings.api_host}:{settings.grpc_port}  (BiddingService)",
        f"metrics      {_base_url(settings, settings.metrics_port)}/metrics",
    ]


async def _run_until_stopped(
    settings: Settings, role: Role, body: Callable[[Runtime, Servers], Awaitable[list[str]]]
) -> None:
    stop = asyncio.Event()
    _stop_on_signals(stop)
    async with Runtime(settings, role) as runtime:
        servers = Servers(settings)
        try:
            lines = await body(runtime, servers)
            # Everything built so far (modules, schemas, the catalog, pools) lives as long as the
            # process: keep it out of the collector's full passes, which otherwise walk it all
            # and stall the bid path for tens of milliseconds at a time.
            gc.freeze()
            # A bid allocates hundreds of short-lived tracked objects (models, dicts, tasks);
            # with the default young generation of 700 the collector ran every few bids and
            # promoted live ones, which brought full collections (10+ ms pauses) every few
            # seconds. Most objects die before 20,000 are allocated, so a young collection
            # finds little and promotes little. Measured: the pipeline in-process 166-176 ->
            # 157-162 µs of CPU a bid, full collections 32 -> 4 over 60,000 bids; `up` under
            # wrk 260-266 -> 252-257 µs a bid, p99 at saturation 17 -> 14.5 ms.
            gc.set_threshold(YOUNG_GENERATION, *gc.get_threshold()[1:])
            metrics.observe_gc_pauses()
            for line in lines:
                print(line, flush=True)
            print(f"campaign-express {role.value} running; Ctrl-C stops it", flush=True)
            await servers.wait(stop)
            log.info("stopping")
        finally:
            await servers.stop()


async def _serve_temporal(runtime: Runtime, servers: Servers) -> list[str]:
    """Connect (starting the embedded dev server in ``up``) and run the platform's worker."""
    settings = runtime.settings
    platform = await platform_worker(runtime)
    if platform.worker is not None:
        await servers.temporal_worker(platform.worker)
    watch = await runtime.budget_watch()
    await runtime.trigger_evaluator()
    dev_server = await runtime.temporal_dev_server()
    namespace = f"namespace {settings.temporal_namespace}"
    spend = "budget watch: on" if watch is not None else "budget watch: off (needs CE_REDIS_URL)"
    source = (
        f"JetStream stream {settings.events.stream!r}"
        if settings.nats_url is not None
        else "the database (no CE_NATS_URL)"
    )
    triggers = f"triggers     journey triggers on customer events from {source}"
    if dev_server is None:
        return [
            f"Temporal     {settings.temporal_address}  ({namespace})",
            f"{platform.describe()}; {spend}",
            triggers,
        ]
    if dev_server.pid is None:
        whose = "a server this process did not start"
    elif dev_server.owned:
        whose = f"dev server pid {dev_server.pid}, log {dev_server.config.log_path.resolve()}"
    else:
        whose = f"dev server pid {dev_server.pid}, run by another process"
    return [
        f"Temporal     {dev_server.config.address}  ({namespace}; {whose})",
        f"Temporal Web {dev_server.config.ui_url}",
        f"{platform.describe()}; {spend}",
        triggers,
    ]


async def serve_up(settings: Settings) -> None:
    async def body(runtime: Runtime, servers: Servers) -> list[str]:
        temporal = await _serve_temporal(runtime, servers)
        lines = await _serve_api(runtime, servers)
        return [f"data         {settings.home.resolve()}", *lines, *temporal]

    await _run_until_stopped(settings, Role.EMBEDDED, body)


async def serve_api(settings: Settings) -> None:
    await _run_until_stopped(settings, Role.API, _serve_api)


async def serve_worker(settings: Settings) -> None:
    async def body(runtime: Runtime, servers: Servers) -> list[str]:
        lines = await _serve_temporal(runtime, servers)
        await servers.metrics()
        return [*lines, f"metrics      {_base_url(settings, settings.metrics_port)}/metrics"]

    await _run_until_stopped(settings, Role.WORKER, body)


async def serve_bidder(settings: Settings, agents: int) -> None:
    async def body(runtime: Runtime, servers: Servers) -> list[str]:
        nc = await runtime.nats()
        if nc is None:
            raise SystemExit("a bidder takes requests from NATS: set CE_NATS_URL")
        subject = settings.bid.nats_subject
        fleet = BidderFleet(nc, await runtime.pipeline(), agents, subject)
        await fleet.start()
        runtime.on_close(fleet.stop)
        await servers.metrics()
        return [
            f"bidder       {agents} agents on NATS subject {subject!r} (queue 'bidders')",
            f"metrics      {_base_url(settings, settings.metrics_port)}/metrics",
        ]

    await _run_until_stopped(settings, Role.BIDDER, body)


async def serve_analytics_sink(settings: Settings) -> None:
    stop = asyncio.Event()
    _stop_on_signals(stop)
    servers = Servers(settings)
    await servers.metrics()
    try:
        await run_analytics_sink(settings, stop)
    finally:
        await servers.stop()
