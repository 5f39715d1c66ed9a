"""The shared ``/healthz``, ``/readyz`` and ``/metrics`` routes of every service.

- ``/healthz``: the process is alive and its event loop answers (200).
- ``/readyz``: its MongoDB and Kafka answer right now (200, else 503 with what failed).
- ``/metrics``: Prometheus text format.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

ReadinessCheck = Callable[[], Awaitable[bool]]
READINESS_CHECKS = web.AppKey("readiness_checks", dict[str, ReadinessCheck])
SERVICE_NAME = web.AppKey("service_name", str)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "service": request.app[SERVICE_NAME]})


async def readyz(request: web.Request) -> web.Response:
    checks = request.app[READINESS_CHECKS]

    async def run(check: ReadinessCheck) -> bool:
        try:
            return await asyncio.wait_for(check(), timeout=2.0)
        except TimeoutError:
            return False

    results = dict(zip(checks, await asyncio.gather(*(run(c) for c in checks.values())), strict=True))
    ready = all(results.values())
    body = {
        "status": "ready" if ready else "unavailable",
        "service": request.app[SERVICE_NAME],
        "checks": {name: "ok" if ok else "failing" for name, ok in results.items()},
    }
    return web.json_response(body, status=200 if ready else 503)


async def metrics(_: web.Request) -> web.Response:
    response = web.Response(body=generate_latest(REGISTRY))
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    response.charset = "utf-8"
    return response


def add_health_routes(app: web.Application, service_name: str) -> None:
    app[SERVICE_NAME] = service_name
    app.setdefault(READINESS_CHECKS, {})
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)


def add_readiness_check(app: web.Application, name: str, check: ReadinessCheck) -> None:
    app.setdefault(READINESS_CHECKS, {})[name] = check
