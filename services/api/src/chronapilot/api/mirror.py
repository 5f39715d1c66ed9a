"""``/v1/calendars`` and ``/v1/events``: reading the mirror, scoped by application."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from functools import partial
from typing import Any

from aiohttp import web

from chronapilot.api.auth import current_application
from chronapilot.api.errors import ApiError, not_found
from chronapilot.api.pagination import page, page_in_order
from chronapilot.api.requests import path_id, read_query
from chronapilot.api.schemas import ListCalendarsQuery, ListEventsQuery, OccurrenceObject
from chronapilot.common.ids import is_valid_id
from chronapilot.common.objects import (
    dump,
    event_time,
    recurring_masters,
    render_calendar,
    render_event,
    stored_fields,
)
from chronapilot.common.occurrences import MAX_WINDOW, Occurrence, expand, occurrence_slot
from chronapilot.common.runtime import RUNTIME
from chronapilot.common.store import Document


def _render_calendar(raw: Document) -> dict[str, Any]:
    return dump(render_calendar(raw))


async def list_calendars(request: web.Request) -> web.Response:
    query = read_query(request, ListCalendarsQuery)
    flt: dict[str, Any] = {"application_id": current_application(request).id}
    if query.connection_id is not None:
        flt["connection_id"] = query.connection_id
    calendars = request.app[RUNTIME].repos.calendars
    body = await page(partial(calendars.page, flt), query, url="/v1/calendars", render=_render_calendar)
    return web.json_response(body)


async def get_calendar(request: web.Request) -> web.Response:
    calendar_id = path_id(request, "cal", "calendar")
    raw = await request.app[RUNTIME].repos.calendars.of_application(
        current_application(request).id, calendar_id
    )
    if raw is None:
        raise not_found("calendar")
    return web.json_response(_render_calendar(raw))


async def list_events(request: web.Request) -> web.Response:
    query = read_query(request, ListEventsQuery)
    if query.start and query.end and query.start >= query.end:
        raise ApiError(400, "parameter_invalid", "start must be before end.", param="start")
    if query.expand_recurring:
        _check_expansion(query)
    application_id = current_application(request).id
    repos = request.app[RUNTIME].repos
    if await repos.calendars.of_application(application_id, query.calendar_id) is None:
        raise ApiError(404, "resource_missing", "No such calendar.", param="calendar_id")
    if query.expand_recurring:
        return web.json_response(await _list_occurrences(request, query))
    in_calendar = partial(
        repos.events.page_in_calendar,
        query.calendar_id,
        include_deleted=query.include_deleted,
        updated_since=query.updated_since,
        start=query.start,
        end=query.end,
    )
    docs: list[Document] = []

    def keep(raw: Document) -> Document:
        docs.append(raw)
        return raw

    body = await page(in_calendar, query, url="/v1/events", render=keep)
    masters = await recurring_masters(repos, docs)
    body["data"] = [render_event(raw, masters) for raw in docs]
    return web.json_response(body)


async def get_event(request: web.Request) -> web.Response:
    event_id = path_id(request, "evt", "event")
    raw = await request.app[RUNTIME].repos.events.of_application(current_application(request).id, event_id)
    if raw is None:
        raise not_found("event")
    return web.json_response(render_event(raw, await recurring_masters(request.app[RUNTIME].repos, [raw])))


# -- occurrences (expand_recurring=true) -------------------------------------------------------


def _check_expansion(query: ListEventsQuery) -> None:
    for name in ("start", "end"):
        if getattr(query, name) is None:
            raise ApiError(
                400,
                "parameter_missing",
                f"Missing required parameter: {name} (expand_recurring=true needs a window).",
                param=name,
            )
    assert query.start is not None and query.end is not None
    if query.end - query.start > MAX_WINDOW:
        raise ApiError(
            400,
            "parameter_invalid",
            f"The window from start to end is longer than {MAX_WINDOW.days} days.",
            param="end",
        )
    for name in ("updated_since", "include_deleted"):
        if getattr(query, name):
            raise ApiError(
                400, "parameter_invalid", f"{name} cannot be used with expand_recurring=true.", param=name
            )


async def _list_occurrences(request: web.Request, query: ListEventsQuery) -> dict[str, Any]:
    assert query.start is not None and query.end is not None
    docs = await request.app[RUNTIME].repos.events.in_window([query.calendar_id], query.start, query.end)
    found = await asyncio.to_thread(expand, docs, query.start, query.end)
    chosen, has_more = page_in_order(
        found,
        query,
        key=lambda o: o.id,
        order=lambda o: (o.start_at, o.id),
        place=await _cursor_place(request, query, {o.id for o in found}),
    )
    masters = {o.source["provider_event_id"]: o.source["_id"] for o in chosen if o.source.get("recurrence")}
    masters.update(await recurring_masters(request.app[RUNTIME].repos, [o.source for o in chosen]))
    return {
        "object": "list",
        "data": [render_occurrence(o, masters) for o in chosen],
        "has_more": has_more,
        "url": "/v1/events",
    }


async def _cursor_place(
    request: web.Request, query: ListEventsQuery, listed: set[str]
) -> tuple[datetime, str] | None:
    """Where the cursor's occurrence sorted, ``(start_at, id)``, when it is no longer listed
    (cancelled, deleted or moved out of the window since the page that gave it): a generated
    id's original start, else its event's stored start. None for an id of no event of this
    calendar (a bogus cursor: 400)."""
    cursor = query.starting_after or query.ending_before
    if cursor is None or cursor in listed:
        return None
    slot = occurrence_slot(cursor)
    event_id = slot[0] if slot else cursor
    if not is_valid_id(event_id, "evt"):
        return None
    doc = await request.app[RUNTIME].repos.events.of_application(current_application(request).id, event_id)
    if doc is None or doc["calendar_id"] != query.calendar_id:
        return None
    start = slot[1] if slot else doc["start_at"]
    return (start if start.tzinfo else start.replace(tzinfo=UTC)), cursor


def render_occurrence(occurrence: Occurrence, masters: dict[str, str]) -> dict[str, Any]:
    return dump(
        OccurrenceObject(
            id=occurrence.id,
            event_id=occurrence.source["_id"],
            start=occurrence.start,
            end=occurrence.end,
            all_day=occurrence.start.get("date") is not None,
            status=occurrence.status,
            original_start=event_time(occurrence.original_start),
            **stored_fields(occurrence.source, masters, occurrence.recurring_event_id),
        )
    )
