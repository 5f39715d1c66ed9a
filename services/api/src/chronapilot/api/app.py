"""The API service's composition root."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from chronapilot.api import auth
from chronapilot.api.consent import PROVIDERS
from chronapilot.api.errors import error_envelope
from chronapilot.api.idempotency import idempotency
from chronapilot.api.openapi import OPENAPI, build
from chronapilot.api.requests import MAX_BODY_BYTES
from chronapilot.api.routes import OPERATIONS, add_routes
from chronapilot.common.providers.registry import build_providers
from chronapilot.common.runtime import install_runtime
from chronapilot.common.settings import Environment, Settings

HTTP = web.AppKey("http", aiohttp.ClientSession)


def create_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    install_runtime(app, settings, "api")
    app.middlewares.append(error_envelope)
    auth.install(app)
    app.middlewares.append(idempotency)
    app[OPENAPI] = build(OPERATIONS, server_url=settings.api_base_url)
    add_routes(app, development=settings.env is not Environment.PRODUCTION)
    app.cleanup_ctx.append(_providers_ctx(settings))
    return app


def _providers_ctx(settings: Settings):  # type: ignore[no-untyped-def]
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(total=settings.providers.http_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            app[HTTP] = http
            app[PROVIDERS] = build_providers(settings.providers, http)
            yield

    return ctx
