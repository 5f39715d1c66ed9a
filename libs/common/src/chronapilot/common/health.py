"""The shared ``/healthz``, ``/readyz`` and ``/metrics`` routes of every service, and the internal
listener that serves them apart from a public port.

- ``/healthz``: the process is alive and its event loop answers (200).
- ``/readyz``: its MongoDB and Kafka answer right now (200, else 503 with what failed).
- ``/metrics``: Prometheus text format, only on internal ports: the workers' own ports, and for
  the public API and webhook gateway their internal listener (:func:`add_internal_listener`,
  ``CHRONAPILOT_API_METRICS_PORT``, ``CHRONAPILOT_WEBHOOK_GATEWAY_METRICS_PORT``).

``chronapilot_ready{service}`` follows the same checks, re-evaluated every
:data:`READY_INTERVAL_S` by :func:`watch_readiness`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from chronapilot.common.errors import StartupError
from chronapilot.common.metrics import READY

ReadinessCheck = Callable[[], Awaitable[bool]]
READINESS_CHECKS = web.AppKey("readiness_checks", dict[str, ReadinessCheck])
SERVICE_NAME = web.AppKey("service_name", str)
#: How often ``chronapilot_ready`` is re-evaluated.
READY_INTERVAL_S = 10.0
_CHECK_TIMEOUT_S = 2.0


async def check_readiness(checks: dict[str, ReadinessCheck]) -> dict[str, bool]:
    """Run every check at once; a check that takes longer than 2 s, or raises, failed."""

    async def run(check: ReadinessCheck) -> bool:
        try:
            return await asyncio.wait_for(check(), timeout=_CHECK_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - a check that raises is a failing check, not a crash
            return False

    return dict(zip(checks, await asyncio.gather(*(run(c) for c in checks.values())), strict=True))


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "service": request.app[SERVICE_NAME]})


async def readyz(request: web.Request) -> web.Response:
    results = await check_readiness(request.app[READINESS_CHECKS])
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


def add_health_routes(app: web.Application, service_name: str, *, serve_metrics: bool = True) -> None:
    """``/healthz`` and ``/readyz`` on ``app``, and ``/metrics`` unless ``app`` is public."""
    app[SERVICE_NAME] = service_name
    app.setdefault(READINESS_CHECKS, {})
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if serve_metrics:
        app.router.add_get("/metrics", metrics)


def add_readiness_check(app: web.Application, name: str, check: ReadinessCheck) -> None:
    app.setdefault(READINESS_CHECKS, {})[name] = check


async def watch_readiness(
    service_name: str, checks: dict[str, ReadinessCheck], stopping: asyncio.Event
) -> None:
    """Keep ``chronapilot_ready{service}`` at 1 while every check passes, else 0, until
    ``stopping``; re-evaluated every :data:`READY_INTERVAL_S`."""
    gauge = READY.labels(service_name)
    while not stopping.is_set():
        gauge.set(1 if all((await check_readiness(checks)).values()) else 0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), READY_INTERVAL_S)
    gauge.set(0)


@dataclass
class InternalListener:
    """Where the internal listener of a public app listens (``port`` is the bound one once
    started, also when 0 asked for any free port)."""

    host: str
    port: int


INTERNAL_LISTENER = web.AppKey("internal_listener", InternalListener)


def add_internal_listener(app: web.Application, host: str, port: int) -> InternalListener:
    """Serve ``/healthz``, ``/readyz`` (the same checks as ``app``'s) and ``/metrics`` on
    ``host:port`` for the life of ``app``; ``port`` 0 takes a free one (read it from the
    returned :class:`InternalListener` once ``app`` started)."""
    listener = app[INTERNAL_LISTENER] = InternalListener(host, port)

    async def listener_ctx(app: web.Application) -> AsyncIterator[None]:
        internal = web.Application()
        internal[SERVICE_NAME] = app[SERVICE_NAME]
        internal[READINESS_CHECKS] = app[READINESS_CHECKS]  # the same dict: checks added later count
        internal.router.add_get("/healthz", healthz)
        internal.router.add_get("/readyz", readyz)
        internal.router.add_get("/metrics", metrics)
        runner = web.AppRunner(internal, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise StartupError(
                f"cannot listen on {host}:{port} (internal listener): {exc.strerror or exc}"
            ) from None
        if runner.addresses:
            listener.port = int(runner.addresses[0][1])
        try:
            yield
        finally:
            await runner.cleanup()

    app.cleanup_ctx.append(listener_ctx)
    return listener
