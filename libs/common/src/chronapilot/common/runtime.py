"""What every service process shares: MongoDB, the Kafka producer, the outbox relay,
consumers, the token cipher, and the health routes, owned by aiohttp ``cleanup_ctx``.

A service's ``create_app`` calls :func:`install_runtime` first, then adds its own routes,
consumers (:func:`add_consumer`) and loops (:func:`add_background_loop`). Start-up retries
MongoDB and Kafka for ``CHRONAPILOT_STARTUP_TIMEOUT_S`` and then fails with a
:class:`~chronapilot.common.errors.StartupError`; shutdown stops loops and consumers first
(in-flight work finishes and is committed), then the relay, the producer and MongoDB.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from pymongo.asynchronous.client_session import AsyncClientSession

from chronapilot.common.backoff import Backoff
from chronapilot.common.bus.admin import ensure_topics
from chronapilot.common.bus.catalogue import Event
from chronapilot.common.bus.consumer import ConsumerRunner, Handler
from chronapilot.common.bus.envelope import Envelope
from chronapilot.common.bus.outbox import OutboxRelay, emit
from chronapilot.common.bus.producer import EventProducer
from chronapilot.common.bus.topics import Topic
from chronapilot.common.clock import Clock, SystemClock
from chronapilot.common.connections import Connections
from chronapilot.common.crypto import TokenCipher
from chronapilot.common.health import add_health_routes, add_readiness_check
from chronapilot.common.ids import new_id
from chronapilot.common.logging import bind_context, get_logger
from chronapilot.common.providers.base import CalendarProvider
from chronapilot.common.providers.registry import build_providers
from chronapilot.common.settings import Settings
from chronapilot.common.store.client import Store
from chronapilot.common.store.indexes import ensure_indexes
from chronapilot.common.tokens import TokenService

log = get_logger(__name__)


@dataclass
class Runtime:
    """The shared clients of one service process (filled in during start-up)."""

    settings: Settings
    service_name: str
    cipher: TokenCipher
    clock: Clock
    store: Store | None = None
    producer: EventProducer | None = None
    relay: OutboxRelay | None = None
    http: aiohttp.ClientSession | None = None
    providers: dict[str, CalendarProvider] = field(default_factory=dict)
    tokens: TokenService | None = None
    _connections: Connections | None = None

    @property
    def connections(self) -> Connections:
        """The one writer of ``connections`` (:mod:`chronapilot.common.connections`)."""
        if self._connections is None:
            self._connections = Connections(self.db, self, self.clock)
        return self._connections

    @property
    def token_service(self) -> TokenService:
        """The process's one :class:`TokenService` (needs :func:`add_token_service`)."""
        assert self.tokens is not None, "add_token_service(app) not called, or the runtime not started"
        return self.tokens

    @property
    def db(self) -> Store:
        assert self.store is not None, "runtime not started"
        return self.store

    async def emit(self, session: AsyncClientSession | None, event: Event, *, connection_id: str) -> Envelope:
        """Queue ``event`` in the outbox within ``session``'s transaction; wake the relay."""
        envelope = await emit(
            self.db.db,
            session,
            event,
            connection_id=connection_id,
            topic_prefix=self.settings.kafka.topic_prefix,
        )
        if self.relay is not None:
            self.relay.wake()
        return envelope


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
    app: web.Application, settings: Settings, service_name: str, *, clock: Clock | None = None
) -> Runtime:
    """Attach the shared runtime and the health routes to ``app``."""
    runtime = Runtime(
        settings=settings,
        service_name=service_name,
        cipher=TokenCipher.from_settings(settings),
        clock=clock or SystemClock(),
    )
    app[RUNTIME] = runtime
    app.middlewares.append(request_context)
    add_health_routes(app, service_name)
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(_bus_ctx)
    app.cleanup_ctx.append(_relay_ctx)
    return runtime


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    settings = runtime.settings
    runtime.store = await Store.connect(settings.mongo, budget_s=settings.service.startup_timeout_s)
    await ensure_indexes(runtime.store.db)
    add_readiness_check(app, "mongodb", runtime.store.ping)
    try:
        yield
    finally:
        await runtime.store.close()


async def _bus_ctx(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    settings = runtime.settings
    budget = settings.service.startup_timeout_s
    await ensure_topics(settings.kafka, budget_s=budget)
    runtime.producer = EventProducer(settings.kafka, client_id=f"chronapilot-{runtime.service_name}")
    await runtime.producer.start(budget_s=budget)
    add_readiness_check(app, "kafka", runtime.producer.ping)
    try:
        yield
    finally:
        await runtime.producer.stop()


async def _relay_ctx(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    assert runtime.store is not None
    assert runtime.producer is not None
    service = runtime.settings.service
    runtime.relay = OutboxRelay(
        runtime.store.db,
        runtime.producer,
        poll_interval_s=service.outbox_poll_interval_s,
        lease_s=service.outbox_lease_s,
        clock=runtime.clock,
    )
    task = asyncio.create_task(runtime.relay.run(), name="outbox-relay")
    try:
        yield
    finally:
        runtime.relay.stop()
        await asyncio.wait_for(task, runtime.settings.service.shutdown_timeout_s)


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
        assert runtime.producer is not None
        runner = ConsumerRunner(
            kafka=runtime.settings.kafka,
            group_id=group_id,
            topics=topics,
            handler=make_handler(runtime),
            producer=runtime.producer,
            concurrency=concurrency,
            client_id=f"chronapilot-{runtime.service_name}",
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


def add_token_service(app: web.Application) -> None:
    """Give the runtime provider clients (one shared HTTP session) and the :class:`TokenService`
    for the life of ``app``: ``runtime.providers`` and ``runtime.token_service``."""
    app.cleanup_ctx.append(_token_service_ctx)


async def _token_service_ctx(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    settings = runtime.settings
    tokens = settings.tokens
    timeout = aiohttp.ClientTimeout(total=settings.providers.http_timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        runtime.http = http
        runtime.providers = build_providers(settings.providers, http)
        runtime.tokens = TokenService(
            db=runtime.db,
            cipher=runtime.cipher,
            providers=runtime.providers,
            clock=runtime.clock,
            emit=runtime,
            refresh_margin_s=tokens.refresh_margin_s,
            min_validity_s=tokens.min_validity_s,
            lease_s=tokens.refresh_lease_s,
            failure_threshold=tokens.refresh_failure_threshold,
            backoff=Backoff(base_s=tokens.refresh_backoff_base_s, cap_s=tokens.refresh_backoff_cap_s),
        )
        try:
            yield
        finally:
            runtime.tokens = None
            runtime.providers = {}
            runtime.http = None
