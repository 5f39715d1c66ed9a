"""The API service's composition root."""

from __future__ import annotations

from aiohttp import web

from chronapilot.api import auth
from chronapilot.api.errors import error_envelope
from chronapilot.api.idempotency import idempotency
from chronapilot.api.openapi import OPENAPI, build
from chronapilot.api.requests import MAX_BODY_BYTES
from chronapilot.api.routes import OPERATIONS, add_routes
from chronapilot.api.webhook_schemas import WEBHOOKS
from chronapilot.common.runtime import Overrides, install_runtime
from chronapilot.common.settings import Environment, Settings


def create_app(settings: Settings, *, overrides: Overrides | None = None) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    install_runtime(app, settings, "api", overrides=overrides, public=True)
    app.middlewares.append(error_envelope)
    auth.install(app)
    app.middlewares.append(idempotency)
    app[OPENAPI] = build(OPERATIONS, server_url=settings.api_base_url, webhooks=WEBHOOKS)
    add_routes(app, development=settings.env is not Environment.PRODUCTION)
    return app
