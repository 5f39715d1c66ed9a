"""``/v1/calendars`` and ``/v1/events``: reading the mirror, scoped by application."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from chronapilot.api.auth import current_application
from chronapilot.api.connections import render_calendar
from chronapilot.api.errors import ApiError, not_found
from chronapilot.api.pagination import page
from chronapilot.api.requests import path_id, read_query
from chronapilot.api.schemas import EventObject, ListCalendarsQuery, ListEventsQuery, dump
from chronapilot.common.runtime import RUNTIME
from chronapilot.common.store import Document


def _render_calendar(raw: Document) -> dict[str, Any]:
    return dump(render_calendar(raw))


async def list_calendars(request: web.Request) -> web.Response:
    query = read_query(request, ListCalendarsQuery)
    flt: dict[str, Any] = {"application_id": current_application(request).id}
    if query.connection_id is not None:
        flt["connection_id"] = query.connection_id
    body = await page(
        request.app[RUNTIME].store.db.calendars, flt, query, url="/v1/calendars", render=_render_calendar
    )
    return web.json_response(body)


async def get_calendar(request: web.Request) -> web.Response:
    calendar_id = path_id(request, "cal", "calendar")
    raw = await request.app[RUNTIME].store.db.calendars.find_one(
        {"_id": calendar_id, "application_id": current_application(request).id}
    )
    if raw is None:
        raise not_found("calendar")
    return web.json_response(_render_calendar(raw))


def render_event(raw: Document, masters: dict[str, str]) -> dict[str, Any]:
    def time(value: dict[str, Any] | None) -> dict[str, Any] | None:
        return (
            None
            if value is None
            else {
                "date_time": value.get("date_time"),
                "date": value.get("date"),
                "timezone": value.get("timezone"),
            }
        )

    provider_master = raw.get("recurring_event_id")
    return dump(
        EventObject(
            id=raw["_id"],
            calendar_id=raw["calendar_id"],
            connection_id=raw["connection_id"],
            provider_event_id=raw["provider_event_id"],
            ical_uid=raw.get("ical_uid"),
            title=raw.get("title"),
            description=raw.get("description"),
            location=raw.get("location"),
            start=time(raw.get("start")),
            end=time(raw.get("end")),
            all_day=raw.get("all_day", False),
            status=raw.get("status", "confirmed"),
            recurrence=raw.get("recurrence", []),
            recurring_event_id=masters.get(provider_master) if provider_master else None,
            provider_recurring_event_id=provider_master,
            original_start=time(raw.get("original_start")),
            organizer=raw.get("organizer"),
            attendees=raw.get("attendees", []),
            etag=raw.get("etag"),
            deleted=raw.get("deleted", False),
            provider_updated_at=raw.get("provider_updated_at"),
            created_at=raw["created_at"],
            updated_at=raw["updated_at"],
        )
    )


async def _masters(request: web.Request, docs: list[Document]) -> dict[str, str]:
    """provider id → evt_ id of the recurring masters the page's exceptions point at."""
    wanted = {
        (d["connection_id"], d["provider_calendar_id"], d["recurring_event_id"])
        for d in docs
        if d.get("recurring_event_id")
    }
    if not wanted:
        return {}
    found = request.app[RUNTIME].store.db.events.find(
        {
            "$or": [
                {"connection_id": c, "provider_calendar_id": p, "provider_event_id": e} for c, p, e in wanted
            ]
        },
        {"provider_event_id": 1},
    )
    return {doc["provider_event_id"]: doc["_id"] async for doc in found}


def _time_filter(query: ListEventsQuery) -> dict[str, Any]:
    single: dict[str, Any] = {"recurrence": []}
    series: dict[str, Any] = {"recurrence.0": {"$exists": True}}
    if query.end is not None:
        single["start_at"] = {"$lt": query.end}
        series["start_at"] = {"$lt": query.end}
    if query.start is not None:
        single["end_at"] = {"$gt": query.start}
        series["$or"] = [{"series_end_at": None}, {"series_end_at": {"$gte": query.start}}]
    return {"$or": [single, series]}


async def list_events(request: web.Request) -> web.Response:
    query = read_query(request, ListEventsQuery)
    if query.start and query.end and query.start >= query.end:
        raise ApiError(400, "parameter_invalid", "start must be before end.", param="start")
    application_id = current_application(request).id
    db = request.app[RUNTIME].store.db
    calendar = await db.calendars.find_one(
        {"_id": query.calendar_id, "application_id": application_id}, {"_id": 1}
    )
    if calendar is None:
        raise ApiError(404, "resource_missing", "No such calendar.", param="calendar_id")
    flt: dict[str, Any] = {"calendar_id": query.calendar_id}
    if not query.include_deleted:
        flt["deleted"] = False
    if query.updated_since is not None:
        flt["updated_at"] = {"$gte": query.updated_since}
    if query.start is not None or query.end is not None:
        flt.update(_time_filter(query))
    docs: list[Document] = []

    def keep(raw: Document) -> Document:
        docs.append(raw)
        return raw

    body = await page(db.events, flt, query, url="/v1/events", render=keep)
    masters = await _masters(request, docs)
    body["data"] = [render_event(raw, masters) for raw in docs]
    return web.json_response(body)


async def get_event(request: web.Request) -> web.Response:
    event_id = path_id(request, "evt", "event")
    raw = await request.app[RUNTIME].store.db.events.find_one(
        {"_id": event_id, "application_id": current_application(request).id}
    )
    if raw is None:
        raise not_found("event")
    return web.json_response(render_event(raw, await _masters(request, [raw])))
