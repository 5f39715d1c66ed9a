"""The API service's composition root."""

from __future__ import annotations

from aiohttp import web
from chronapilot.common.runtime import install_runtime
from chronapilot.common.settings import Settings


def create_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=256 * 1024)
    install_runtime(app, settings, "api")
    return app
