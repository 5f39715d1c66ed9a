"""API-key authentication for ``/v1``: ``Authorization: Bearer <key>``.

The application found is put on the request; every query below filters by it, so another
application's objects are simply not found (404, never 403).
"""

from __future__ import annotations

import time

from aiohttp import web

from chronapilot.api.errors import ApiError, Handler
from chronapilot.common.logging import bind_context
from chronapilot.common.models import Application
from chronapilot.common.runtime import RUNTIME
from chronapilot.common.tenancy import application_for_key, hash_key

APPLICATION = web.RequestKey("application", Application)
PUBLIC_PATHS = {"/v1/openapi.json"}
_CACHE_S = 5.0


def current_application(request: web.Request) -> Application:
    application: Application = request[APPLICATION]
    return application


class _KeyCache:
    """A few seconds of memory per key: a burst of calls costs one lookup."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Application]] = {}

    def get(self, digest: str) -> Application | None:
        entry = self._entries.get(digest)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, digest: str, application: Application) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[digest] = (time.monotonic() + _CACHE_S, application)


KEY_CACHE = web.AppKey("key_cache", _KeyCache)


def install(app: web.Application) -> None:
    app[KEY_CACHE] = _KeyCache()
    app.middlewares.append(authenticate)


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/v1/") or request.path in PUBLIC_PATHS:
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if not header:
        raise ApiError(
            401,
            "api_key_missing",
            "Send your API key as `Authorization: Bearer <key>`.",
            type_="authentication_error",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(
            401,
            "api_key_invalid",
            "Use the Bearer scheme: `Authorization: Bearer <key>`.",
            type_="authentication_error",
            headers={"WWW-Authenticate": "Bearer"},
        )
    key = key.strip()
    digest = hash_key(key)
    cache = request.app[KEY_CACHE]
    application = cache.get(digest)
    if application is None:
        runtime = request.app[RUNTIME]
        application = await application_for_key(runtime.repos.applications, key, runtime.clock.now())
        if application is None:
            raise ApiError(
                401,
                "api_key_invalid",
                "Invalid API key.",
                type_="authentication_error",
                headers={"WWW-Authenticate": "Bearer"},
            )
        cache.put(digest, application)
    request[APPLICATION] = application
    with bind_context(application_id=application.id):
        return await handler(request)
