"""The webhook gateway's composition root."""

from __future__ import annotations

from aiohttp import web

from chronapilot.common.runtime import install_runtime
from chronapilot.common.settings import Settings


def create_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    install_runtime(app, settings, "webhook_gateway")
    return app
