"""The webhook gateway's composition root: receiving notifications (:mod:`.receive`) and
keeping subscriptions (:mod:`.subscriptions`), over the shared runtime."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator

from aiohttp import web

from chronapilot.common.bus import Topic
from chronapilot.common.bus.catalogue import (
    Event,
    SubscriptionLifecycleNotified,
    SyncKind,
    SyncReason,
    SyncRequested,
    wrap,
)
from chronapilot.common.bus.producer import EventProducer
from chronapilot.common.bus.topics import topic_name
from chronapilot.common.providers.push import PushSubscriptions
from chronapilot.common.runtime import (
    RUNTIME,
    Overrides,
    Runtime,
    add_background_loop,
    add_consumer,
    install_runtime,
)
from chronapilot.common.settings import Settings
from chronapilot.webhook_gateway.coalesce import SyncRequests
from chronapilot.webhook_gateway.consumers import lifecycle_handler
from chronapilot.webhook_gateway.directory import Directory
from chronapilot.webhook_gateway.receive import Receiver
from chronapilot.webhook_gateway.routes import add_routes
from chronapilot.webhook_gateway.subscriptions import SubscriptionKeeper

GROUP_ID = "chronapilot.webhook-gateway"


RECEIVER = web.AppKey("receiver", Receiver)
KEEPER = web.AppKey("keeper", SubscriptionKeeper)


def create_app(settings: Settings, *, overrides: Overrides | None = None) -> web.Application:
    """The gateway. Tests may override the clock (expiry checks and the scheduler read it) and
    give it a consumer group of its own."""
    app = web.Application(client_max_size=1024 * 1024)
    install_runtime(app, settings, "webhook_gateway", overrides=overrides, public=True)
    app.cleanup_ctx.append(_gateway_ctx)
    add_routes(app, lambda: app[RECEIVER])
    add_consumer(
        app,
        group_id=(overrides and overrides.group_id) or GROUP_ID,
        topics=[Topic.CONNECTIONS, Topic.SUBSCRIPTIONS],
        make_handler=lambda _: lifecycle_handler(app[KEEPER]),
    )
    add_background_loop(app, "subscriptions", lambda _, stopping: app[KEEPER].run(stopping))
    return app


async def _gateway_ctx(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    realtime = runtime.settings.realtime
    directory = Directory(
        runtime.repos.webhook_subscriptions,
        ttl_s=realtime.webhook_secret_cache_s,
        unknown_ttl_s=realtime.webhook_unknown_cache_s,
    )

    # The request path waits for each acknowledgement: its own producer sends without lingering.
    producer = EventProducer(runtime.settings.kafka, client_id="chronapilot-webhook-gateway-ack", linger_ms=0)
    await producer.start(budget_s=runtime.settings.service.startup_timeout_s)

    async def publish(connection_id: str, event: Event) -> None:
        topic = topic_name(runtime.settings.kafka.topic_prefix, event.TOPIC)
        await producer.publish(topic, wrap(event, connection_id))

    async def request_sync(connection_id: str, calendar_id: str) -> None:
        event = SyncRequested(mode=SyncKind.INCREMENTAL, reason=SyncReason.WEBHOOK, calendar_id=calendar_id)
        await publish(connection_id, event)

    async def publish_lifecycle(connection_id: str, event: SubscriptionLifecycleNotified) -> None:
        await publish(connection_id, event)

    sync_requests = SyncRequests(
        request_sync, window_s=realtime.webhook_debounce_s, dedupe_s=realtime.webhook_dedupe_s
    )
    app[RECEIVER] = Receiver(
        providers=_push_providers(runtime),
        directory=directory,
        sync_requests=sync_requests,
        publish_lifecycle=publish_lifecycle,
        clock=runtime.clock,
    )
    app[KEEPER] = SubscriptionKeeper(
        runtime, directory, owner=f"webhook_gateway:{os.getpid()}:{secrets.token_hex(4)}"
    )
    try:
        yield
    finally:
        await sync_requests.close()
        await producer.stop()


def _push_providers(runtime: Runtime) -> dict[str, PushSubscriptions]:
    return {name: provider.push for name, provider in runtime.providers.items() if provider.push is not None}
