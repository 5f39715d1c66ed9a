"""The sync worker's composition root."""

from __future__ import annotations

from aiohttp import web

from chronapilot.common.bus import Topic
from chronapilot.common.runtime import Overrides, add_background_loop, add_consumer, install_runtime
from chronapilot.common.settings import Settings
from chronapilot.sync_worker.consumers import sync_request_handler
from chronapilot.sync_worker.polling import polling_loop

GROUP_SUFFIX = "sync-worker"  # the group is "<topic prefix>.sync-worker"


def create_app(settings: Settings, *, overrides: Overrides | None = None) -> web.Application:
    app = web.Application()
    install_runtime(app, settings, "sync_worker", overrides=overrides)
    add_consumer(
        app,
        group_id=(overrides and overrides.group_id) or f"{settings.kafka.topic_prefix}.{GROUP_SUFFIX}",
        topics=[Topic.SYNC_REQUESTS],
        make_handler=sync_request_handler,
        concurrency=settings.sync.concurrency,
    )
    if settings.sync.polling_enabled:
        add_background_loop(app, "polling", polling_loop)
    return app
