"""Request metrics of the public apps (the API and the webhook gateway).

``chronapilot_http_requests_total{service,route,method,status}`` and
``chronapilot_http_request_seconds{service,route,method}``, observed by :func:`http_metrics`, an
aiohttp middleware. The labels are bounded whatever a caller sends: ``route`` is the matched
route's template (``/v1/connections/{id}``, never the id), ``unmatched`` when no route matched
(a 404 or 405 from the router); ``method`` is one of :data:`METHODS` or ``other``; ``status``
is the numeric code.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from chronapilot.common.health import SERVICE_NAME
from chronapilot.common.metrics import HTTP_REQUEST_SECONDS, HTTP_REQUESTS

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
OTHER_METHOD = "other"


def route_label(request: web.Request) -> str:
    """The template of the route ``request`` matched, or ``unmatched``."""
    resource = request.match_info.route.resource
    return UNMATCHED if resource is None else resource.canonical


def method_label(method: str) -> str:
    """``method`` when it is a standard one, else ``other``."""
    return method if method in METHODS else OTHER_METHOD


@web.middleware
async def http_metrics(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Count and time every answered request; a handler that raised answers 500 unless it
    raised an HTTP status. A request cancelled before its answer is not counted."""
    started = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _observe(request, exc.status, started)
        raise
    except Exception:
        _observe(request, 500, started)
        raise
    _observe(request, response.status, started)
    return response


def _observe(request: web.Request, status: int, started: float) -> None:
    service, route, method = (
        request.config_dict[SERVICE_NAME],
        route_label(request),
        method_label(request.method),
    )
    HTTP_REQUESTS.labels(service, route, method, str(status)).inc()
    HTTP_REQUEST_SECONDS.labels(service, route, method).observe(time.perf_counter() - started)
