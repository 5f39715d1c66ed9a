"""What every service process shares: MongoDB, the Kafka producer, the outbox relay,
consumers, the token cipher, and the health routes, owned by aiohttp ``cleanup_ctx``.

A service's ``create_app`` calls :func:`install_runtime` first, then adds its own routes,
consumers (:func:`add_consumer`) and loops (:func:`add_background_loop`). Start-up retries
MongoDB and Kafka for ``CHRONAPILOT_STARTUP_TIMEOUT_S`` and then fails with a
:class:`~chronapilot.common.errors.StartupError`; shutdown stops loops and consumers first
(in-flight work finishes and is committed), then the relay, the producer and MongoDB.

Every process exports ``chronapilot_build_info{service,version}`` and
``chronapilot_ready{service}``; a public app (the API, the webhook gateway) also counts its
requests (:mod:`~chronapilot.common.http_metrics`) and leaves ``/metrics`` to its internal
listener (:func:`~chronapilot.common.health.add_internal_listener`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.metadata
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from chronapilot.common.backoff import Backoff
from chronapilot.common.bus.admin import ensure_topics
from chronapilot.common.bus.catalogue import Event
from chronapilot.common.bus.consumer import ConsumerRunner, Handler
from chronapilot.common.bus.envelope import Envelope
from chronapilot.common.bus.outbox import Outbox, OutboxRelay
from chronapilot.common.bus.producer import EventProducer
from chronapilot.common.bus.topics import Topic
from chronapilot.common.clock import Clock, SystemClock
from chronapilot.common.connections import Connections
from chronapilot.common.crypto import TokenCipher
from chronapilot.common.health import (
    READINESS_CHECKS,
    add_health_routes,
    add_readiness_check,
    watch_readiness,
)
from chronapilot.common.http_metrics import http_metrics
from chronapilot.common.ids import new_id
from chronapilot.common.logging import bind_context, get_logger
from chronapilot.common.metrics import BUILD_INFO
from chronapilot.common.providers.registry import Providers, build_providers
from chronapilot.common.settings import Settings
from chronapilot.common.store.client import Session, Store
from chronapilot.common.store.indexes import ensure_indexes
from chronapilot.common.store.leases import Lease
from chronapilot.common.store.repositories import Repositories
from chronapilot.common.tokens import TokenService

log = get_logger(__name__)


@dataclass(frozen=True)
class Overrides:
    """What a test or a benchmark may substitute when it builds a service."""

    clock: Clock | None = None
    #: The service's consumer group (tests give each gateway a group of its own).
    group_id: str | None = None


@dataclass(frozen=True)
class Runtime:
    """The shared components of one service process, built once at start-up, all present."""

    settings: Settings
    service_name: str
    clock: Clock
    cipher: TokenCipher
    store: Store
    #: Every collection's repository (services read and write MongoDB only through these).
    repos: Repositories
    producer: EventProducer
    relay: OutboxRelay
    outbox: Outbox
    http: aiohttp.ClientSession
    providers: Providers
    tokens: TokenService
    #: The one writer of ``connections`` (:mod:`chronapilot.common.connections`).
    connections: Connections

    async def emit(self, session: Session | None, event: Event, *, connection_id: str) -> Envelope:
        """Queue ``event`` in the outbox within ``session``'s transaction; wake the relay."""
        return await self.outbox.emit(session, event, connection_id=connection_id)

    def lease(self, name: str, owner: str) -> Lease:
        """The lease ``name`` as ``owner`` holds it (:class:`~chronapilot.common.store.Lease`)."""
        return Lease(self.store.db, name, owner, self.clock)


RUNTIME = web.AppKey("runtime", Runtime)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{8,64}$")


@web.middleware
async def request_context(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Bind a request id (the caller's ``X-Request-Id`` if sane, else a new one) to every log
    line of the request, and echo it in the response."""
    offered = request.headers.get("X-Request-Id", "")
    request_id = offered if _REQUEST_ID.match(offered) else new_id("req")
    with bind_context(request_id=request_id):
        response = await handler(request)
    response.headers["X-Request-Id"] = request_id
    return response


def install_runtime(
    app: web.Application,
    settings: Settings,
    service_name: str,
    *,
    overrides: Overrides | None = None,
    public: bool = False,
) -> None:
    """Build the shared runtime when ``app`` starts (``app[RUNTIME]``), close it when it stops;
    add the request-id middleware and the health routes. Call it before adding consumers and
    loops: they start after it and stop before it. A ``public`` app (one the internet reaches)
    counts its requests and serves no ``/metrics``."""
    app.middlewares.append(request_context)
    if public:
        app.middlewares.append(http_metrics)
    add_health_routes(app, service_name, serve_metrics=not public)
    BUILD_INFO.labels(service_name, service_version(service_name)).set(1)
    cipher = TokenCipher.from_settings(settings)  # a bad key is a configuration error now
    app.cleanup_ctx.append(functools.partial(_runtime_ctx, settings, service_name, overrides, cipher))


async def _runtime_ctx(
    settings: Settings,
    service_name: str,
    overrides: Overrides | None,
    cipher: TokenCipher,
    app: web.Application,
) -> AsyncIterator[None]:
    async with open_runtime(settings, service_name, overrides, cipher=cipher) as runtime:
        app[RUNTIME] = runtime
        add_readiness_check(app, "mongodb", runtime.store.ping)
        add_readiness_check(app, "kafka", runtime.producer.ping)
        stopping = asyncio.Event()
        watcher = asyncio.create_task(
            watch_readiness(service_name, app[READINESS_CHECKS], stopping), name="readiness"
        )
        try:
            yield
        finally:
            stopping.set()
            await watcher


def service_version(service_name: str) -> str:
    """The installed version of the service's distribution (``chronapilot-<service>``)."""
    try:
        return importlib.metadata.version(f"chronapilot-{service_name.replace('_', '-')}")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings,
    service_name: str,
    overrides: Overrides | None = None,
    *,
    cipher: TokenCipher | None = None,
) -> AsyncIterator[Runtime]:
    """Connect MongoDB and Kafka (retrying for ``CHRONAPILOT_STARTUP_TIMEOUT_S``), start the outbox
    relay, the providers' HTTP session and the token service; close them in reverse order."""
    overrides = overrides or Overrides()
    clock = overrides.clock or SystemClock()
    cipher = cipher or TokenCipher.from_settings(settings)
    service = settings.service
    budget = service.startup_timeout_s
    store = await Store.connect(settings.mongo, budget_s=budget)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(store.close)
        await ensure_indexes(store.db)
        await ensure_topics(settings.kafka, budget_s=budget)
        producer = EventProducer(settings.kafka, client_id=f"chronapilot-{service_name}")
        await producer.start(budget_s=budget)
        stack.push_async_callback(producer.stop)
        relay = OutboxRelay(
            store.db,
            producer,
            poll_interval_s=service.outbox_poll_interval_s,
            lease_s=service.outbox_lease_s,
            clock=clock,
            name=service_name,
        )
        relay_task = asyncio.create_task(relay.run(), name="outbox-relay")

        async def stop_relay() -> None:
            relay.stop()
            await asyncio.wait_for(relay_task, service.shutdown_timeout_s)

        stack.push_async_callback(stop_relay)
        outbox = Outbox(store.db, relay, topic_prefix=settings.kafka.topic_prefix)
        http = await stack.enter_async_context(
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=settings.providers.http_timeout_s))
        )
        providers = build_providers(settings.providers, http, clock=clock)
        tokens = settings.tokens
        token_service = TokenService(
            db=store,
            cipher=cipher,
            providers=providers,
            clock=clock,
            emit=outbox,
            refresh_margin_s=tokens.refresh_margin_s,
            min_validity_s=tokens.min_validity_s,
            lease_s=tokens.refresh_lease_s,
            failure_threshold=tokens.refresh_failure_threshold,
            backoff=Backoff(base_s=tokens.refresh_backoff_base_s, cap_s=tokens.refresh_backoff_cap_s),
        )
        yield Runtime(
            settings=settings,
            service_name=service_name,
            clock=clock,
            cipher=cipher,
            store=store,
            repos=Repositories.open(store),
            producer=producer,
            relay=relay,
            outbox=outbox,
            http=http,
            providers=providers,
            tokens=token_service,
            connections=Connections(store, outbox, clock),
        )


def add_consumer(
    app: web.Application,
    *,
    group_id: str,
    topics: list[Topic],
    make_handler: Callable[[Runtime], Handler],
    concurrency: int = 8,
) -> None:
    """Run a consumer group for the life of ``app``; its handler is built once started."""

    async def consumer_ctx(app: web.Application) -> AsyncIterator[None]:
        runtime = app[RUNTIME]
        runner = ConsumerRunner(
            kafka=runtime.settings.kafka,
            group_id=group_id,
            topics=topics,
            handler=make_handler(runtime),
            producer=runtime.producer,
            concurrency=concurrency,
            client_id=f"chronapilot-{runtime.service_name}",
            dead_letters=runtime.repos.dead_letters,
        )
        await runner.start(budget_s=runtime.settings.service.startup_timeout_s)
        task = asyncio.create_task(runner.run(), name=f"consumer:{group_id}")
        try:
            yield
        finally:
            await runner.stop(timeout_s=runtime.settings.service.shutdown_timeout_s)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.cleanup_ctx.append(consumer_ctx)


def add_background_loop(
    app: web.Application, name: str, loop: Callable[[Runtime, asyncio.Event], Coroutine[Any, Any, None]]
) -> None:
    """Run ``loop(runtime, stopping)`` for the life of ``app``; it must return once ``stopping``."""

    async def loop_ctx(app: web.Application) -> AsyncIterator[None]:
        stopping = asyncio.Event()
        task = asyncio.create_task(loop(app[RUNTIME], stopping), name=name)
        try:
            yield
        finally:
            stopping.set()
            try:
                await asyncio.wait_for(task, app[RUNTIME].settings.service.shutdown_timeout_s)
            except TimeoutError:
                log.warning("loop.stop_timeout", loop=name)

    app.cleanup_ctx.append(loop_ctx)
