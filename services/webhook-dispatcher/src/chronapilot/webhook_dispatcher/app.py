"""The webhook dispatcher's composition root: the sender, the fan-out consumer, the poller of
due deliveries and the writer of outcomes (ARCHITECTURE §9)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from chronapilot.common.bus import Topic
from chronapilot.common.runtime import RUNTIME, Overrides, add_consumer, install_runtime
from chronapilot.common.settings import Settings
from chronapilot.webhook_dispatcher.destinations import checked_connector
from chronapilot.webhook_dispatcher.fanout import fanout_handler
from chronapilot.webhook_dispatcher.sender import Sender

#: The consumer group, namespaced like the topics (``chronapilot.webhook-dispatcher``).
GROUP_SUFFIX = "webhook-dispatcher"
SENDER = web.AppKey("sender", Sender)


def create_app(settings: Settings, *, overrides: Overrides | None = None) -> web.Application:
    app = web.Application()
    install_runtime(app, settings, "webhook_dispatcher", overrides=overrides)
    app.cleanup_ctx.append(_sender_ctx)
    add_consumer(
        app,
        group_id=(overrides and overrides.group_id) or f"{settings.kafka.topic_prefix}.{GROUP_SUFFIX}",
        topics=[Topic.CONNECTIONS, Topic.SYNC_RESULTS, Topic.MIRROR],
        make_handler=lambda runtime: fanout_handler(runtime, app[SENDER]),
        concurrency=16,
    )
    return app


async def _sender_ctx(app: web.Application) -> AsyncIterator[None]:
    """The sender, its poller of due deliveries and its writer of outcomes; on shutdown (after
    the consumer stopped) in-flight attempts finish and every outcome is written."""
    runtime = app[RUNTIME]
    webhooks = runtime.settings.webhooks
    allow_private = runtime.settings.webhook_private_destinations_allowed
    timeout = aiohttp.ClientTimeout(total=webhooks.webhook_delivery_timeout_s)
    connector = checked_connector(allow_private=allow_private, limit=webhooks.webhook_concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector, trust_env=False) as http:
        sender = Sender(runtime, http, allow_private=allow_private)
        app[SENDER] = sender
        stopping = asyncio.Event()
        loops = [
            asyncio.create_task(sender.poll_due(stopping), name="webhook-due"),
            asyncio.create_task(sender.write_outcomes(stopping), name="webhook-outcomes"),
        ]
        try:
            yield
        finally:
            stopping.set()
            await asyncio.gather(*loops, return_exceptions=True)
            await sender.drain(runtime.settings.service.shutdown_timeout_s)
