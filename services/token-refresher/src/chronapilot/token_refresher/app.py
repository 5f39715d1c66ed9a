"""The token refresher's composition root."""

from __future__ import annotations

from aiohttp import web

from chronapilot.common.runtime import install_runtime
from chronapilot.common.settings import Settings


def create_app(settings: Settings) -> web.Application:
    app = web.Application()
    install_runtime(app, settings, "token_refresher")
    return app
