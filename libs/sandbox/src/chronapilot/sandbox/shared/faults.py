"""Fault injection for the emulators: failing routes and misbehaving notifications.

API:

- :class:`RouteFault`: for one route (the aiohttp route template, e.g.
  ``/calendar/v3/calendars/{calendarId}/events``, or ``*`` for every provider route) and an
  optional HTTP method: answer with ``status`` (429/500/502/503/504 or any 4xx/5xx) and an
  optional ``Retry-After``, and/or add ``latency_ms`` first. ``times`` limits how many requests
  are affected (``None``: until cleared). ``path_contains`` narrows it to the requests whose
  (percent-decoded) path contains that text, e.g. one calendar's id, so one calendar of a
  route template can fail while the others on the same route answer.
- :class:`NotificationFault`: ``mode`` ``drop`` | ``duplicate`` | ``reorder`` for the next
  ``times`` notifications (``None``: until cleared), optionally only on one ``stream`` (a
  channel or subscription id).
- :class:`FaultRegistry`: holds both kinds; :meth:`FaultRegistry.take_route_fault` and
  :meth:`FaultRegistry.take_notification_fault` consume one use.
- :func:`fault_middleware`: aiohttp middleware applying route faults; the emulator passes
  ``render_error(request, status)`` so the body has the provider's own error shape for that
  route (the middleware adds ``Retry-After``).

JSON shapes (admin API): ``{"route": "...", "method": "GET", "status": 503, "retry_after": 2,
"latency_ms": 0, "times": 1, "path_contains": null}`` and ``{"mode": "drop", "times": 1, "stream": null}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast

from aiohttp import web
from aiohttp.typedefs import Middleware

ANY_ROUTE = "*"
NotificationMode = Literal["drop", "duplicate", "reorder"]
NOTIFICATION_MODES: tuple[NotificationMode, ...] = ("drop", "duplicate", "reorder")
ErrorRenderer = Callable[[web.Request, int], web.StreamResponse]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class InvalidFault(ValueError):
    """A fault description from the admin API that cannot be applied."""


def _optional_int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidFault(f"{key} must be a non-negative integer")
    return value


@dataclass
class RouteFault:
    """What to do to requests on one route."""

    route: str
    method: str | None = None
    status: int | None = None
    retry_after: int | None = None
    latency_ms: int = 0
    times: int | None = None
    path_contains: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RouteFault:
        """Validate an admin API body."""
        route = data.get("route")
        if not isinstance(route, str) or not route:
            raise InvalidFault("route is required (a route template such as /calendar/v3/... or *)")
        status = _optional_int(data, "status")
        if status is not None and not 400 <= status <= 599:
            raise InvalidFault("status must be a 4xx or 5xx code")
        method = data.get("method")
        if method is not None and not isinstance(method, str):
            raise InvalidFault("method must be a string")
        path_contains = data.get("path_contains")
        if path_contains is not None and (not isinstance(path_contains, str) or not path_contains):
            raise InvalidFault("path_contains must be a non-empty string")
        fault = cls(
            route=route,
            method=method.upper() if method else None,
            status=status,
            retry_after=_optional_int(data, "retry_after"),
            latency_ms=_optional_int(data, "latency_ms") or 0,
            times=_optional_int(data, "times"),
            path_contains=path_contains,
        )
        if fault.status is None and fault.latency_ms == 0:
            raise InvalidFault("a route fault needs a status or a latency_ms")
        return fault

    def to_json(self) -> dict[str, Any]:
        """The admin API shape."""
        return asdict(self)

    def matches(self, method: str, route: str, path: str | None = None) -> bool:
        """True when this fault applies to ``method`` on the route template ``route`` (and, with
        ``path_contains``, to a request ``path`` containing it)."""
        route_matches = self.route in (ANY_ROUTE, route)
        path_matches = self.path_contains is None or (path is not None and self.path_contains in path)
        return route_matches and path_matches and (self.method is None or self.method == method.upper())


@dataclass
class NotificationFault:
    """What to do to outgoing notifications."""

    mode: NotificationMode
    times: int | None = None
    stream: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NotificationFault:
        """Validate an admin API body."""
        mode = data.get("mode")
        if mode not in NOTIFICATION_MODES:
            raise InvalidFault(f"mode must be one of {', '.join(NOTIFICATION_MODES)}")
        stream = data.get("stream")
        if stream is not None and not isinstance(stream, str):
            raise InvalidFault("stream must be a string")
        return cls(mode=cast(NotificationMode, mode), times=_optional_int(data, "times"), stream=stream)

    def to_json(self) -> dict[str, Any]:
        """The admin API shape."""
        return asdict(self)


class FaultRegistry:
    """The faults currently injected into one emulator."""

    def __init__(self) -> None:
        self.route_faults: list[RouteFault] = []
        self.notification_faults: list[NotificationFault] = []

    def add_route_fault(self, fault: RouteFault) -> None:
        """Apply ``fault`` to the next matching requests (newest fault wins)."""
        self.route_faults.insert(0, fault)

    def add_notification_fault(self, fault: NotificationFault) -> None:
        """Apply ``fault`` to the next matching notifications (newest fault wins)."""
        self.notification_faults.insert(0, fault)

    def clear(self) -> None:
        """Remove every fault."""
        self.route_faults.clear()
        self.notification_faults.clear()

    def take_route_fault(self, method: str, route: str, path: str | None = None) -> RouteFault | None:
        """The fault for this request (``path``: its decoded path), if any, using up one of its
        ``times``."""
        for fault in self.route_faults:
            if fault.matches(method, route, path):
                self._use(fault, self.route_faults)
                return fault
        return None

    def take_notification_fault(self, stream: str) -> NotificationMode | None:
        """The fault mode for the next notification on ``stream``, if any, using up one use."""
        for fault in self.notification_faults:
            if fault.stream in (None, stream):
                self._use(fault, self.notification_faults)
                return fault.mode
        return None

    @staticmethod
    def _use(fault: RouteFault | NotificationFault, faults: list[Any]) -> None:
        if fault.times is None:
            return
        fault.times -= 1
        if fault.times <= 0:
            faults.remove(fault)

    def to_json(self) -> dict[str, Any]:
        """Every active fault, for the admin API."""
        return {
            "routes": [fault.to_json() for fault in self.route_faults],
            "notifications": [fault.to_json() for fault in self.notification_faults],
        }


def route_template(request: web.Request) -> str:
    """The route template a request matched (e.g. ``/users/{id}``), or its path if none."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else request.path


def fault_middleware(
    faults: FaultRegistry, render_error: ErrorRenderer, *, skip_prefixes: tuple[str, ...] = ("/_admin/",)
) -> Middleware:
    """Middleware applying route faults; requests under ``skip_prefixes`` are never faulted."""

    @web.middleware
    async def apply_route_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(skip_prefixes):
            return await handler(request)
        fault = faults.take_route_fault(request.method, route_template(request), request.path)
        if fault is None:
            return await handler(request)
        if fault.latency_ms:
            await asyncio.sleep(fault.latency_ms / 1000)
        if fault.status is None:
            return await handler(request)
        response = render_error(request, fault.status)
        if fault.retry_after is not None:
            response.headers["Retry-After"] = str(fault.retry_after)
        return response

    return apply_route_faults
