"""``/v1/connections``: list, retrieve, disconnect and force a resync."""

from __future__ import annotations

from functools import partial
from typing import Any

from aiohttp import web

from chronapilot.api.auth import current_application
from chronapilot.api.errors import ApiError, not_found
from chronapilot.api.pagination import page
from chronapilot.api.requests import path_id, read_query
from chronapilot.api.schemas import ExpandQuery, ListConnectionsQuery
from chronapilot.common.models import ConnectionStatus
from chronapilot.common.objects import render_connection
from chronapilot.common.resync import ResyncRequested, request_resync
from chronapilot.common.runtime import RUNTIME, Runtime
from chronapilot.common.store import Document


async def calendars_of(runtime: Runtime, connection: Document) -> list[Document]:
    return await runtime.repos.calendars.in_order(connection.get("calendar_ids", []))


async def _owned(request: web.Request) -> Document:
    connection_id = path_id(request, "con", "connection")
    raw = await request.app[RUNTIME].connections.of_application(
        current_application(request).id, connection_id
    )
    if raw is None:
        raise not_found("connection")
    return raw


async def list_connections(request: web.Request) -> web.Response:
    query = read_query(request, ListConnectionsQuery)
    flt: dict[str, Any] = {"application_id": current_application(request).id}
    for field in ("user_id", "provider", "status"):
        if (value := getattr(query, field)) is not None:
            flt[field] = value
    connections = request.app[RUNTIME].connections
    body = await page(partial(connections.page, flt), query, url="/v1/connections", render=render_connection)
    return web.json_response(body)


async def get_connection(request: web.Request) -> web.Response:
    expand = read_query(request, ExpandQuery)
    raw = await _owned(request)
    runtime = request.app[RUNTIME]
    calendars = await calendars_of(runtime, raw) if "calendars" in expand.expand else None
    history = await runtime.connections.history(raw["_id"]) if "status_history" in expand.expand else None
    return web.json_response(render_connection(raw, calendars, history))


async def delete_connection(request: web.Request) -> web.Response:
    """Disconnect at once; the saga (subscriptions, then revocation, then credentials) follows
    from the event, driven by their owners."""
    raw = await _owned(request)
    runtime = request.app[RUNTIME]
    if raw["status"] == ConnectionStatus.DISCONNECTED:
        return web.json_response(render_connection(raw))  # idempotent: nothing new happens
    updated = await runtime.connections.disconnect(raw["_id"], raw["application_id"])
    if updated is None:  # a concurrent DELETE won; answer with its result
        updated = await runtime.connections.get(raw["_id"])
        assert updated is not None
    return web.json_response(render_connection(updated))


async def refresh_connection(request: web.Request) -> web.Response:
    """Request a full sync, at most once a minute per connection (atomic across processes)."""
    raw = await _owned(request)
    runtime = request.app[RUNTIME]
    outcome = await request_resync(
        runtime.store, runtime.connections, runtime.outbox, runtime.clock, raw["_id"]
    )
    if isinstance(outcome, ResyncRequested):
        return web.json_response(render_connection(outcome.connection), status=202)
    if outcome.reason == "rate_limited":
        raise ApiError(
            429,
            "rate_limited",
            f"A refresh was requested less than a minute ago; retry in {outcome.retry_in_s}s.",
            type_="rate_limit_error",
            headers={"Retry-After": str(outcome.retry_in_s)},
        )
    if outcome.reason == "not_found":
        raise not_found("connection")
    raise ApiError(
        409, "connection_disconnected", "This connection is disconnected; start a new one to sync again."
    )
