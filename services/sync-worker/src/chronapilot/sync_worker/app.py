"""The sync worker's composition root."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from chronapilot.common.bus import Topic
from chronapilot.common.providers.registry import build_providers
from chronapilot.common.runtime import RUNTIME, add_background_loop, add_consumer, install_runtime
from chronapilot.common.settings import Settings
from chronapilot.common.tokens import TokenService
from chronapilot.sync_worker.connection_sync import ConnectionSyncer
from chronapilot.sync_worker.consumers import SYNCER, sync_request_handler
from chronapilot.sync_worker.polling import polling_loop

GROUP_SUFFIX = "sync-worker"  # the group is "<topic prefix>.sync-worker"


def create_app(settings: Settings) -> web.Application:
    app = web.Application()
    install_runtime(app, settings, "sync_worker")
    app.cleanup_ctx.append(_syncer_ctx)
    add_consumer(
        app,
        group_id=f"{settings.kafka.topic_prefix}.{GROUP_SUFFIX}",
        topics=[Topic.SYNC_REQUESTS],
        make_handler=sync_request_handler(app),  # type: ignore[arg-type]
        concurrency=settings.sync.concurrency,
    )
    if settings.sync.polling_enabled:
        add_background_loop(app, "polling", polling_loop)
    return app


async def _syncer_ctx(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    settings = runtime.settings
    timeout = aiohttp.ClientTimeout(total=settings.providers.http_timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        providers = build_providers(settings.providers, http)
        tokens = TokenService(
            db=runtime.db,
            cipher=runtime.cipher,
            providers=providers,
            clock=runtime.clock,
            emit=runtime,
            refresh_margin_s=settings.tokens.refresh_margin_s,
            min_validity_s=settings.tokens.min_validity_s,
        )
        app[SYNCER] = ConnectionSyncer(runtime, providers, tokens)
        yield
