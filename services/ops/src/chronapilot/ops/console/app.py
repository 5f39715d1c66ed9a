"""The ops console's composition root (placeholder until the console lands)."""

from __future__ import annotations

from aiohttp import web

from chronapilot.common.runtime import Overrides, install_runtime
from chronapilot.common.settings import Settings


def create_app(settings: Settings, *, overrides: Overrides | None = None) -> web.Application:
    app = web.Application()
    install_runtime(app, settings, "ops", overrides=overrides)
    return app
