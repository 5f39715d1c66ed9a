"""Calendar views: `GET /v1.0/me[/calendars/{id}]/calendarView` and its `delta` (see `delta.py`
for how rounds and tokens work), and `GET /v1.0/me/events/{id}/instances`.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from aiohttp import web

from .context import (
    READ_SCOPES,
    applied,
    context_url,
    current_user,
    fail,
    json_response,
    paging,
    presentation,
    require_scope,
    state_of,
)
from .delta import Cursor, DeltaEngine, DeltaStateNotFound, page_size
from .graph import calendar_of, find_item, render
from .recurrence import expand
from .resources import removed_json
from .store import Calendar
from .times import InvalidTime, parse_instant

delta_key = web.AppKey("microsoft_delta", DeltaEngine)
UNSUPPORTED_ON_DELTA = ("$filter", "$orderby", "$expand", "$search")


def routes() -> list[web.RouteDef]:
    me = "/v1.0/me"
    cal = me + "/calendars/{calendar_id}"
    return [
        web.get(me + "/calendarView/{delta:delta(?:\\(\\))?}", default_calendar_delta),
        web.get(cal + "/calendarView/{delta:delta(?:\\(\\))?}", calendar_delta),
        web.get(me + "/calendarView", default_calendar_view),
        web.get(me + "/calendar/calendarView/{delta:delta(?:\\(\\))?}", default_calendar_delta),
        web.get(me + "/calendar/calendarView", default_calendar_view),
        web.get(cal + "/calendarView", calendar_view),
        web.get(me + "/events/{event_id}/instances", event_instances),
    ]


def _window(request: web.Request) -> tuple[Any, Any]:
    raw_start = request.query.get("startDateTime") or request.query.get("StartDateTime")
    raw_end = request.query.get("endDateTime") or request.query.get("EndDateTime")
    if not raw_start or not raw_end:
        raise fail(
            400,
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters "
            "StartDateTime and EndDateTime.",
        )
    try:
        start, end = parse_instant(raw_start), parse_instant(raw_end)
    except InvalidTime as exc:
        raise fail(400, "ErrorInvalidParameter", str(exc)) from None
    if end <= start:
        raise fail(400, "ErrorInvalidParameter", "EndDateTime must be later than StartDateTime.")
    return start, end


async def event_instances(request: web.Request) -> web.Response:
    """`GET /me/events/{id}/instances?startDateTime=&endDateTime=`: a series' items in a window."""
    require_scope(request, READ_SCOPES)
    state = state_of(request)
    user = current_user(request)
    ev, inst = find_item(request)
    start, end = _window(request)
    shown, _ = presentation(request)
    if inst is not None:
        items = [inst] if inst.start < end and inst.end > start else []
    else:
        items = expand(ev.id, ev.fields, ev.exceptions, frozenset(ev.cancelled), start, end)
    data = {
        "@odata.context": context_url(state, "Collection(event)"),
        "value": [render(state, user, ev, item, shown) for item in items],
    }
    return json_response(data, headers=applied(shown.preferences_applied()))


async def _view(request: web.Request, cal: Calendar) -> web.Response:
    require_scope(request, READ_SCOPES)
    state = state_of(request)
    user = current_user(request)
    start, end = _window(request)
    shown, _ = presentation(request)
    items = request.app[delta_key].view(cal.id, start.timestamp(), end.timestamp())
    top, skip = paging(request, default_top=10)
    data: dict[str, Any] = {
        "@odata.context": context_url(state, "users('me')/calendarView"),
        "value": [render(state, user, ev, inst, shown) for ev, inst in items[skip : skip + top]],
    }
    if skip + top < len(items):
        start_q, end_q = quote(request.query["startDateTime"]), quote(request.query["endDateTime"])
        query = f"startDateTime={start_q}&endDateTime={end_q}"
        data["@odata.nextLink"] = f"{state.base_url}{request.path}?{query}&$top={top}&$skip={skip + top}"
    return json_response(data, headers=applied(shown.preferences_applied()))


async def calendar_view(request: web.Request) -> web.Response:
    return await _view(request, calendar_of(request))


async def default_calendar_view(request: web.Request) -> web.Response:
    return await _view(request, state_of(request).store.default_calendar(current_user(request).id))


async def _delta(request: web.Request, cal: Calendar) -> web.Response:
    require_scope(request, READ_SCOPES)
    state = state_of(request)
    engine = request.app[delta_key]
    user = current_user(request)
    for name in UNSUPPORTED_ON_DELTA:
        if name in request.query:
            raise fail(
                400,
                "BadRequest",
                f"The query parameter '{name}' is not supported with delta on calendarView.",
            )
    shown, prefs = presentation(request)
    size, size_applied = page_size(prefs)
    token = request.query.get("$deltatoken") or request.query.get("$skiptoken")
    if token:
        try:
            cursor: Cursor = engine.decode(token, user.id)
        except DeltaStateNotFound:
            raise fail(
                410,
                "SyncStateNotFound",
                f"The sync state generation is not found; generation={state.store.seq};"
                f"[highest={state.store.seq}].",
            ) from None
        if cursor.calendar_id != cal.id:
            raise fail(410, "SyncStateNotFound", "The sync state does not belong to this calendar.")
        if "$deltatoken" in request.query:
            cursor = engine.resume_round(cursor)
    else:
        start, end = _window(request)
        cursor = engine.start_round(cal, start, end)
    entries, skip_token, delta_token = engine.page(cursor, size)
    value = b",".join(
        json.dumps(removed_json(entry)).encode()
        if isinstance(entry, str)
        else engine.rendered(entry[0], entry[1], user, shown)
        for entry in entries
    )
    link_base = f"{state.base_url}{request.path}"
    if skip_token is not None:
        link = {"@odata.nextLink": f"{link_base}?$skiptoken={skip_token}"}
    else:
        link = {"@odata.deltaLink": f"{link_base}?$deltatoken={delta_token}"}
    context = json.dumps({"@odata.context": context_url(state, "Collection(event)")})
    body = context[:-1].encode() + b',"value":[' + value + b"]," + json.dumps(link)[1:].encode()
    preferences = ([f"odata.maxpagesize={size}"] if size_applied else []) + shown.preferences_applied()
    return web.Response(
        body=body, content_type="application/json", charset="utf-8", headers=applied(preferences)
    )


async def calendar_delta(request: web.Request) -> web.Response:
    return await _delta(request, calendar_of(request))


async def default_calendar_delta(request: web.Request) -> web.Response:
    return await _delta(request, state_of(request).store.default_calendar(current_user(request).id))
