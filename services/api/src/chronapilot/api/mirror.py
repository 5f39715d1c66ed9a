"""``/v1/calendars`` and ``/v1/events``: reading the mirror, scoped by application."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

from aiohttp import web

from chronapilot.api.auth import current_application
from chronapilot.api.connections import render_calendar
from chronapilot.api.errors import ApiError, not_found
from chronapilot.api.pagination import page, page_in_order
from chronapilot.api.requests import path_id, read_query
from chronapilot.api.schemas import (
    EventObject,
    ListCalendarsQuery,
    ListEventsQuery,
    OccurrenceObject,
    dump,
)
from chronapilot.common.ids import is_valid_id
from chronapilot.common.occurrences import MAX_WINDOW, Occurrence, expand, occurrence_slot
from chronapilot.common.providers.sync import OPAQUE
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


def _time(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return (
        None
        if value is None
        else {
            "date_time": value.get("date_time"),
            "date": value.get("date"),
            "timezone": value.get("timezone"),
        }
    )


def _stored_fields(
    raw: Mapping[str, Any], masters: dict[str, str], provider_master: str | None
) -> dict[str, Any]:
    """What an event object and an occurrence object both show of the stored event ``raw``."""
    return {
        "calendar_id": raw["calendar_id"],
        "connection_id": raw["connection_id"],
        "provider_event_id": raw["provider_event_id"],
        "ical_uid": raw.get("ical_uid"),
        "title": raw.get("title"),
        "description": raw.get("description"),
        "location": raw.get("location"),
        "transparency": raw.get("transparency", OPAQUE),
        "recurring_event_id": masters.get(provider_master) if provider_master else None,
        "provider_recurring_event_id": provider_master,
        "organizer": raw.get("organizer"),
        "attendees": raw.get("attendees", []),
        "etag": raw.get("etag"),
        "provider_updated_at": raw.get("provider_updated_at"),
        "updated_at": raw["updated_at"],
    }


def render_event(raw: Document, masters: dict[str, str]) -> dict[str, Any]:
    return dump(
        EventObject(
            id=raw["_id"],
            start=_time(raw.get("start")),
            end=_time(raw.get("end")),
            all_day=raw.get("all_day", False),
            status=raw.get("status", "confirmed"),
            recurrence=raw.get("recurrence", []),
            original_start=_time(raw.get("original_start")),
            deleted=raw.get("deleted", False),
            created_at=raw["created_at"],
            **_stored_fields(raw, masters, raw.get("recurring_event_id")),
        )
    )


async def _masters(request: web.Request, docs: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """provider id → evt_ id of the recurring masters the page's exceptions point at."""
    return await request.app[RUNTIME].repos.events.ids_by_provider_id(
        (d["connection_id"], d["provider_calendar_id"], d["recurring_event_id"])
        for d in docs
        if d.get("recurring_event_id")
    )


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
    masters = await _masters(request, docs)
    body["data"] = [render_event(raw, masters) for raw in docs]
    return web.json_response(body)


async def get_event(request: web.Request) -> web.Response:
    event_id = path_id(request, "evt", "event")
    raw = await request.app[RUNTIME].repos.events.of_application(current_application(request).id, event_id)
    if raw is None:
        raise not_found("event")
    return web.json_response(render_event(raw, await _masters(request, [raw])))


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
    masters.update(await _masters(request, [o.source for o in chosen]))
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
            original_start=_time(occurrence.original_start),
            **_stored_fields(occurrence.source, masters, occurrence.recurring_event_id),
        )
    )
