"""The ops console's composition root: the shared runtime, the token gate, the pages, the
stylesheet, and two loops: the fleet gauges (every ``CHRONAPILOT_OPS_GAUGES_INTERVAL_S``) and the
chart samples (every ``CHRONAPILOT_OPS_SAMPLE_INTERVAL_S``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from datetime import timedelta
from importlib import resources
from typing import Any

from aiohttp import web

from chronapilot.common.errors import ConfigurationError, StoreError
from chronapilot.common.logging import get_logger
from chronapilot.common.runtime import Overrides, Runtime, add_background_loop, install_runtime
from chronapilot.common.settings import Environment, Settings
from chronapilot.ops.console.auth import GATE, Gate, require_token
from chronapilot.ops.console.fleet_metrics import publish
from chronapilot.ops.console.pages import add_routes, error_pages
from chronapilot.ops.console.state import STATE, ConsoleState, read_fleet, record_sample

log = get_logger(__name__)


def create_app(settings: Settings, *, overrides: Overrides | None = None) -> web.Application:
    token = settings.service.ops_token.get_secret_value() if settings.service.ops_token else None
    if not token and settings.env is not Environment.DEVELOPMENT:
        raise ConfigurationError(
            f"CHRONAPILOT_OPS_TOKEN is required when CHRONAPILOT_ENV={settings.env.value} "
            "(the console is open only in development)"
        )
    app = web.Application(middlewares=[error_pages, require_token])
    app[GATE] = Gate.build(token, settings.ops.session_ttl_s)
    app[STATE] = ConsoleState()
    install_runtime(app, settings, "ops", overrides=overrides)
    stylesheet = resources.files("chronapilot.ops.console").joinpath("static/console.css").read_bytes()
    add_routes(app, stylesheet)
    add_background_loop(app, "ops-fleet-gauges", _gauges_loop(app[STATE]))
    add_background_loop(app, "ops-samples", _samples_loop(app[STATE]))
    return app


Loop = Callable[[Runtime, asyncio.Event], Coroutine[Any, Any, None]]


def _gauges_loop(state: ConsoleState) -> Loop:
    async def loop(runtime: Runtime, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                state.reading = await read_fleet(runtime)
                publish(state.reading)
            except StoreError as exc:
                log.warning("ops.fleet_read_failed", error=exc.code)
            await _wait(stopping, runtime.settings.ops.gauges_interval_s)

    return loop


def _samples_loop(state: ConsoleState) -> Loop:
    async def loop(runtime: Runtime, stopping: asyncio.Event) -> None:
        every = timedelta(seconds=runtime.settings.ops.sample_interval_s)
        while not stopping.is_set():
            try:
                await record_sample(runtime, state, every)
            except StoreError as exc:
                log.warning("ops.sample_failed", error=exc.code)
            await _wait(stopping, every.total_seconds())

    return loop


async def _wait(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
