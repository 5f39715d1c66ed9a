"""Admin endpoints every emulator has, mounted under its admin prefix (e.g. ``/_admin/``).

API: ``app.add_routes(shared_admin_routes("/_admin/", faults, counters, clock, on_clock_moved))``
adds:

- ``GET  {prefix}faults``  -> ``{"routes": [...], "notifications": [...]}``
- ``POST {prefix}faults``  body :class:`RouteFault` JSON -> ``201`` with the fault
- ``POST {prefix}faults/notifications``  body :class:`NotificationFault` JSON -> ``201``
- ``DELETE {prefix}faults`` -> ``204`` (clears every fault)
- ``GET  {prefix}counters`` -> the :class:`RequestCounters` snapshot
- ``POST {prefix}counters/reset`` -> ``204``
- ``GET  {prefix}clock`` -> ``{"now": <epoch seconds>, "offset": <seconds>}``
- ``POST {prefix}clock/advance`` body ``{"seconds": 3600}`` -> the clock, after moving it

Invalid bodies answer ``400 {"error": "<why>"}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from chronapilot.sandbox.shared.clock import SandboxClock
from chronapilot.sandbox.shared.counters import RequestCounters
from chronapilot.sandbox.shared.faults import FaultRegistry, InvalidFault, NotificationFault, RouteFault


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request's JSON body as an object, or a ``400`` admin error."""
    try:
        data = await request.json()
    except ValueError:
        raise admin_error(400, "the body must be JSON") from None
    if not isinstance(data, dict):
        raise admin_error(400, "the body must be a JSON object")
    return data


_ADMIN_ERRORS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest,
    404: web.HTTPNotFound,
    409: web.HTTPConflict,
}


def admin_error(status: int, message: str) -> web.HTTPException:
    """An admin API error to raise: ``{"error": message}`` with ``status`` (400, 404 or 409)."""
    return _ADMIN_ERRORS[status](text=json.dumps({"error": message}), content_type="application/json")


def shared_admin_routes(
    prefix: str,
    faults: FaultRegistry,
    counters: RequestCounters,
    clock: SandboxClock,
    on_clock_moved: Callable[[], None] | None = None,
) -> list[web.RouteDef]:
    """The fault, counter and clock admin routes under ``prefix`` (which ends with ``/``)."""

    async def list_faults(request: web.Request) -> web.Response:
        return web.json_response(faults.to_json())

    async def add_route_fault(request: web.Request) -> web.Response:
        try:
            fault = RouteFault.from_json(await read_json_object(request))
        except InvalidFault as exc:
            raise admin_error(400, str(exc)) from None
        faults.add_route_fault(fault)
        return web.json_response(fault.to_json(), status=201)

    async def add_notification_fault(request: web.Request) -> web.Response:
        try:
            fault = NotificationFault.from_json(await read_json_object(request))
        except InvalidFault as exc:
            raise admin_error(400, str(exc)) from None
        faults.add_notification_fault(fault)
        return web.json_response(fault.to_json(), status=201)

    async def clear_faults(request: web.Request) -> web.Response:
        faults.clear()
        return web.Response(status=204)

    async def read_counters(request: web.Request) -> web.Response:
        return web.json_response(counters.snapshot())

    async def reset_counters(request: web.Request) -> web.Response:
        counters.reset()
        return web.Response(status=204)

    async def read_clock(request: web.Request) -> web.Response:
        return web.json_response({"now": clock.now(), "offset": clock.offset})

    async def advance_clock(request: web.Request) -> web.Response:
        seconds = (await read_json_object(request)).get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise admin_error(400, "seconds must be a non-negative number")
        clock.advance(float(seconds))
        if on_clock_moved is not None:
            on_clock_moved()
        return web.json_response({"now": clock.now(), "offset": clock.offset})

    return [
        web.get(f"{prefix}faults", list_faults),
        web.post(f"{prefix}faults", add_route_fault),
        web.post(f"{prefix}faults/notifications", add_notification_fault),
        web.delete(f"{prefix}faults", clear_faults),
        web.get(f"{prefix}counters", read_counters),
        web.post(f"{prefix}counters/reset", reset_counters),
        web.get(f"{prefix}clock", read_clock),
        web.post(f"{prefix}clock/advance", advance_clock),
    ]
