"""The sync worker's composition root."""

from __future__ import annotations

from aiohttp import web

from chronapilot.common.bus import Topic
from chronapilot.common.runtime import add_background_loop, add_consumer, add_token_service, install_runtime
from chronapilot.common.settings import Settings
from chronapilot.sync_worker.consumers import sync_request_handler
from chronapilot.sync_worker.polling import polling_loop

GROUP_SUFFIX = "sync-worker"  # the group is "<topic prefix>.sync-worker"


def create_app(settings: Settings) -> web.Application:
    app = web.Application()
    install_runtime(app, settings, "sync_worker")
    add_token_service(app)  # before the consumer: its handler uses the providers and tokens
    add_consumer(
        app,
        group_id=f"{settings.kafka.topic_prefix}.{GROUP_SUFFIX}",
        topics=[Topic.SYNC_REQUESTS],
        make_handler=sync_request_handler,
        concurrency=settings.sync.concurrency,
    )
    if settings.sync.polling_enabled:
        add_background_loop(app, "polling", polling_loop)
    return app
