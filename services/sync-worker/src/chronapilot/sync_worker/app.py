"""The sync worker's composition root."""

from __future__ import annotations

from aiohttp import web

from chronapilot.common.bus import Topic
from chronapilot.common.runtime import add_consumer, install_runtime
from chronapilot.common.settings import Settings
from chronapilot.sync_worker.consumers import sync_request_handler

GROUP_ID = "chronapilot.sync-worker"


def create_app(settings: Settings) -> web.Application:
    app = web.Application()
    install_runtime(app, settings, "sync_worker")
    add_consumer(app, group_id=GROUP_ID, topics=[Topic.SYNC_REQUESTS], make_handler=sync_request_handler)
    return app
