"""Request and notification counters an emulator exposes through its admin API.

API: :class:`RequestCounters` (``record_request``, ``record_notification_sent``,
``record_notification_dropped``, ``record_notification_failed``, ``snapshot``, ``reset``) and
:func:`counting_middleware`, which counts every provider request by ``"<METHOD> <route
template>"`` and every 401 served. Admin routes are not counted.

Snapshot shape: ``{"requests": {"GET /calendar/v3/users/me/calendarList": 3, ...},
"unauthorized": 1, "notifications_sent": 4, "notifications_dropped": 0,
"notifications_failed": 0}``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from chronapilot.sandbox.shared.faults import Handler, route_template


class RequestCounters:
    """Counts of what an emulator served and sent."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.unauthorized = 0
        self.notifications_sent = 0
        self.notifications_dropped = 0
        self.notifications_failed = 0

    def record_request(self, route_key: str, status: int) -> None:
        """Count one request answered with ``status``."""
        self.requests[route_key] += 1
        if status == 401:
            self.unauthorized += 1

    def record_notification_sent(self) -> None:
        """Count one notification POST made (retries and duplicates included)."""
        self.notifications_sent += 1

    def record_notification_dropped(self) -> None:
        """Count one notification withheld by a ``drop`` fault."""
        self.notifications_dropped += 1

    def record_notification_failed(self) -> None:
        """Count one notification that never got a success answer."""
        self.notifications_failed += 1

    def snapshot(self) -> dict[str, Any]:
        """All counters as JSON."""
        return {
            "requests": dict(self.requests),
            "unauthorized": self.unauthorized,
            "notifications_sent": self.notifications_sent,
            "notifications_dropped": self.notifications_dropped,
            "notifications_failed": self.notifications_failed,
        }

    def reset(self) -> None:
        """Start counting from zero."""
        self.__init__()  # type: ignore[misc]


def counting_middleware(
    counters: RequestCounters, *, skip_prefixes: tuple[str, ...] = ("/_admin/",)
) -> Middleware:
    """Middleware counting requests per route and 401s; install it outside the fault middleware."""

    @web.middleware
    async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(skip_prefixes):
            return await handler(request)
        route_key = f"{request.method} {route_template(request)}"
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            counters.record_request(route_key, exc.status)
            raise
        counters.record_request(route_key, response.status)
        return response

    return count_requests
