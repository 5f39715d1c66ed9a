"""The Graph subset: `/v1.0/me`, calendars, events (read, create, PATCH, DELETE), calendar views
and their delta. Every route wants `Authorization: Bearer <access token>`; an empty, unknown or
expired token answers 401 `InvalidAuthenticationToken` with a `WWW-Authenticate` header, and a
write with only `Calendars.Read` answers 403 `ErrorAccessDenied`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from aiohttp import web

from .delta import Cursor, DeltaEngine, DeltaStateNotFound, page_size, parse_prefer
from .errors import graph_error
from .grants import AccessToken
from .recurrence import Instance, expand, find_occurrence, split_occurrence_id
from .resources import calendar_json, event_json, removed_json, user_json
from .state import MicrosoftState, state_key
from .store import Calendar, InvalidEvent, NotFound, StoredEvent, User
from .times import InvalidTime, parse_instant, zone

delta_key = web.AppKey("microsoft_delta", DeltaEngine)
token_key = web.RequestKey("microsoft_access_token", AccessToken)
READ_SCOPES = ("Calendars.Read", "Calendars.ReadWrite")
WRITE_SCOPES = ("Calendars.ReadWrite",)
UNSUPPORTED_ON_DELTA = ("$filter", "$orderby", "$expand", "$search")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def routes() -> list[web.RouteDef]:
    me = "/v1.0/me"
    cal = me + "/calendars/{calendar_id}"
    return [
        web.get("/oidc/userinfo", userinfo),
        web.get(me, get_me),
        web.get(me + "/calendars", list_calendars),
        web.get(me + "/calendar", get_default_calendar),
        web.get(cal, get_calendar),
        web.get(me + "/calendarView/{delta:delta(?:\\(\\))?}", default_calendar_delta),
        web.get(cal + "/calendarView/{delta:delta(?:\\(\\))?}", calendar_delta),
        web.get(me + "/calendarView", default_calendar_view),
        web.get(cal + "/calendarView", calendar_view),
        web.get(me + "/events", list_default_events),
        web.get(cal + "/events", list_events),
        web.post(me + "/events", create_default_event),
        web.post(cal + "/events", create_event),
        web.get(me + "/events/{event_id}", get_event),
        web.get(me + "/events/{event_id}/instances", event_instances),
        web.get(cal + "/events/{event_id}", get_event),
        web.patch(me + "/events/{event_id}", update_event),
        web.patch(cal + "/events/{event_id}", update_event),
        web.delete(me + "/events/{event_id}", delete_event),
        web.delete(cal + "/events/{event_id}", delete_event),
    ]


# authentication -------------------------------------------------------------------------------


def unauthorized(state: MicrosoftState, message: str) -> web.Response:
    challenge = (
        'Bearer realm="", authorization_uri="'
        f'{state.base_url}/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"'
    )
    return graph_error(401, "InvalidAuthenticationToken", message, headers={"WWW-Authenticate": challenge})


@web.middleware
async def bearer_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate every `/v1.0/` request; the token record is put on the request."""
    if not request.path.startswith(("/v1.0/", "/oidc/")):
        return await handler(request)
    state = request.app[state_key]
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        token = ""
    record, message = state.identity.access_token(token.strip(), state.clock.now())
    if record is None:
        return unauthorized(state, message)
    request[token_key] = record
    return await handler(request)


def _token(request: web.Request) -> AccessToken:
    record: AccessToken = request[token_key]
    return record


def _require(request: web.Request, scopes: tuple[str, ...]) -> None:
    if not any(s in _token(request).scopes for s in scopes):
        raise _fail(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")


def _fail(status: int, code: str | None = None, message: str | None = None) -> GraphFailure:
    return GraphFailure(graph_error(status, code, message))


class GraphFailure(Exception):
    """Carries a ready Graph error response out of a handler (see `graph_failures`)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


@web.middleware
async def graph_failures(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except GraphFailure as failure:
        return failure.response


def _state(request: web.Request) -> MicrosoftState:
    return request.app[state_key]


def _me(request: web.Request) -> User:
    return _state(request).store.user(_token(request).user_id)


def _json(data: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(data, separators=(",", ":")).encode(),
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def _context(state: MicrosoftState, fragment: str) -> str:
    return f"{state.base_url}/v1.0/$metadata#{fragment}"


# me and calendars ---------------------------------------------------------------------------


async def get_me(request: web.Request) -> web.Response:
    return _json(user_json(_me(request), _state(request).base_url))


async def userinfo(request: web.Request) -> web.Response:
    """OpenID Connect userinfo (Graph serves it at `/oidc/userinfo`)."""
    user = _me(request)
    return _json(
        {
            "sub": user.id,
            "name": user.display_name,
            "family_name": user.surname,
            "given_name": user.given_name,
            "email": user.mail or user.user_principal_name,
        }
    )


def _calendar(request: web.Request) -> Calendar:
    user = _me(request)
    try:
        return _state(request).store.calendar(request.match_info["calendar_id"], user.id)
    except NotFound:
        raise _fail(404) from None


async def list_calendars(request: web.Request) -> web.Response:
    _require(request, READ_SCOPES)
    state = _state(request)
    user = _me(request)
    cals = sorted(state.store.calendars_of(user.id), key=lambda c: (not c.is_default, c.name))
    top, skip = _paging(request, default_top=10)
    data: dict[str, Any] = {
        "@odata.context": _context(state, f"users('{quote(user.user_principal_name)}')/calendars"),
        "value": [calendar_json(c, user) for c in cals[skip : skip + top]],
    }
    if skip + top < len(cals):
        data["@odata.nextLink"] = f"{state.base_url}/v1.0/me/calendars?$top={top}&$skip={skip + top}"
    return _json(data)


async def get_calendar(request: web.Request) -> web.Response:
    _require(request, READ_SCOPES)
    state = _state(request)
    user = _me(request)
    data = {
        "@odata.context": _context(state, "users('me')/calendars/$entity"),
        **calendar_json(_calendar(request), user),
    }
    return _json(data)


async def get_default_calendar(request: web.Request) -> web.Response:
    _require(request, READ_SCOPES)
    state = _state(request)
    user = _me(request)
    cal = state.store.default_calendar(user.id)
    return _json(
        {"@odata.context": _context(state, "users('me')/calendar/$entity"), **calendar_json(cal, user)}
    )


def _paging(request: web.Request, default_top: int) -> tuple[int, int]:
    try:
        top = int(request.query.get("$top", default_top))
        skip = int(request.query.get("$skip", 0))
    except ValueError:
        raise _fail(400, "BadRequest", "Invalid $top or $skip value.") from None
    if top < 1 or skip < 0:
        raise _fail(400, "BadRequest", "Invalid $top or $skip value.")
    return min(top, 1000), skip


# events ---------------------------------------------------------------------------------------


def _time_zone_preference(request: web.Request) -> tuple[str, dict[str, str]]:
    prefs = parse_prefer(request.headers.getall("Prefer", []))
    tz = prefs.get("outlook.timezone", "")
    if tz:
        try:
            zone(tz)
        except InvalidTime:
            tz = ""
    return tz, prefs


def _applied(prefs_applied: list[str]) -> dict[str, str]:
    return {"Preference-Applied": ", ".join(prefs_applied)} if prefs_applied else {}


def _render(
    state: MicrosoftState, user: User, ev: StoredEvent, inst: Instance | None, tz: str
) -> dict[str, Any]:
    return event_json(ev, user, state.base_url, tz, inst)


def _find_item(request: web.Request) -> tuple[StoredEvent, Instance | None]:
    state = _state(request)
    user = _me(request)
    item_id = request.match_info["event_id"]
    occurrence = split_occurrence_id(item_id)
    try:
        if occurrence is None:
            ev = state.store.event(item_id, user.id)
            inst = None
        else:
            ev = state.store.event(occurrence[0], user.id)
            if occurrence[1] in ev.cancelled:
                raise NotFound(item_id)
            inst = find_occurrence(ev.id, ev.fields, occurrence[1], ev.exceptions)
            if inst is None:
                raise NotFound(item_id)
    except NotFound:
        raise _fail(404) from None
    if "calendar_id" in request.match_info and ev.calendar_id != request.match_info["calendar_id"]:
        raise _fail(404)
    return ev, inst


async def get_event(request: web.Request) -> web.Response:
    _require(request, READ_SCOPES)
    state = _state(request)
    ev, inst = _find_item(request)
    tz, _ = _time_zone_preference(request)
    data = {
        "@odata.context": _context(state, "users('me')/events/$entity"),
        **_render(state, _me(request), ev, inst, tz),
    }
    return _json(data, headers=_applied([f'outlook.timezone="{tz}"'] if tz else []))


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise _fail(
            400,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type "
            "header is set and payload is of valid JSON format.",
        ) from None
    if not isinstance(data, dict):
        raise _fail(400, "BadRequest", "The request body must be a JSON object.")
    return data


async def _create(request: web.Request, cal: Calendar) -> web.Response:
    _require(request, WRITE_SCOPES)
    state = _state(request)
    body = await _body(request)
    try:
        ev = state.store.create_event(cal.id, body, user_id=_me(request).id)
    except InvalidEvent as exc:
        raise _fail(400, "ErrorInvalidParameter", str(exc)) from None
    state.changed()
    tz, _ = _time_zone_preference(request)
    data = {
        "@odata.context": _context(state, "users('me')/events/$entity"),
        **_render(state, _me(request), ev, None, tz),
    }
    return _json(data, status=201, headers={"Location": f"{state.base_url}/v1.0/me/events('{ev.id}')"})


async def create_event(request: web.Request) -> web.Response:
    return await _create(request, _calendar(request))


async def create_default_event(request: web.Request) -> web.Response:
    return await _create(request, _state(request).store.default_calendar(_me(request).id))


async def update_event(request: web.Request) -> web.Response:
    _require(request, WRITE_SCOPES)
    state = _state(request)
    _find_item(request)
    body = await _body(request)
    user = _me(request)
    try:
        ev, _item_id = state.store.update_event(request.match_info["event_id"], body, user_id=user.id)
    except NotFound:
        raise _fail(404) from None
    except InvalidEvent as exc:
        raise _fail(400, "ErrorInvalidParameter", str(exc)) from None
    state.changed()
    _, inst = _find_item(request)
    tz, _ = _time_zone_preference(request)
    data = {
        "@odata.context": _context(state, "users('me')/events/$entity"),
        **_render(state, user, ev, inst, tz),
    }
    return _json(data)


async def delete_event(request: web.Request) -> web.Response:
    _require(request, WRITE_SCOPES)
    state = _state(request)
    _find_item(request)
    try:
        state.store.delete_event(request.match_info["event_id"], user_id=_me(request).id)
    except NotFound:
        raise _fail(404) from None
    state.changed()
    return web.Response(status=204)


async def _list_events(request: web.Request, cal: Calendar) -> web.Response:
    _require(request, READ_SCOPES)
    state = _state(request)
    user = _me(request)
    tz, _ = _time_zone_preference(request)
    events = sorted(state.store.live_events(cal.id), key=lambda e: e.created)
    top, skip = _paging(request, default_top=10)
    data: dict[str, Any] = {
        "@odata.context": _context(state, "users('me')/calendars('" + cal.id + "')/events"),
        "value": [_render(state, user, ev, None, tz) for ev in events[skip : skip + top]],
    }
    if skip + top < len(events):
        data["@odata.nextLink"] = f"{state.base_url}{request.path}?$top={top}&$skip={skip + top}"
    return _json(data, headers=_applied([f'outlook.timezone="{tz}"'] if tz else []))


async def list_events(request: web.Request) -> web.Response:
    return await _list_events(request, _calendar(request))


async def list_default_events(request: web.Request) -> web.Response:
    return await _list_events(request, _state(request).store.default_calendar(_me(request).id))


# calendar views and delta ----------------------------------------------------------------------


def _window(request: web.Request) -> tuple[Any, Any]:
    raw_start = request.query.get("startDateTime") or request.query.get("StartDateTime")
    raw_end = request.query.get("endDateTime") or request.query.get("EndDateTime")
    if not raw_start or not raw_end:
        raise _fail(
            400,
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters "
            "StartDateTime and EndDateTime.",
        )
    try:
        start, end = parse_instant(raw_start), parse_instant(raw_end)
    except InvalidTime as exc:
        raise _fail(400, "ErrorInvalidParameter", str(exc)) from None
    if end <= start:
        raise _fail(400, "ErrorInvalidParameter", "EndDateTime must be later than StartDateTime.")
    return start, end


async def _view(request: web.Request, cal: Calendar) -> web.Response:
    _require(request, READ_SCOPES)
    state = _state(request)
    user = _me(request)
    start, end = _window(request)
    tz, _ = _time_zone_preference(request)
    items = request.app[delta_key].view(cal.id, start.timestamp(), end.timestamp())
    top, skip = _paging(request, default_top=10)
    data: dict[str, Any] = {
        "@odata.context": _context(state, "users('me')/calendarView"),
        "value": [_render(state, user, ev, inst, tz) for ev, inst in items[skip : skip + top]],
    }
    if skip + top < len(items):
        start_q, end_q = quote(request.query["startDateTime"]), quote(request.query["endDateTime"])
        query = f"startDateTime={start_q}&endDateTime={end_q}"
        data["@odata.nextLink"] = f"{state.base_url}{request.path}?{query}&$top={top}&$skip={skip + top}"
    return _json(data, headers=_applied([f'outlook.timezone="{tz}"'] if tz else []))


async def event_instances(request: web.Request) -> web.Response:
    """`GET /me/events/{id}/instances?startDateTime=&endDateTime=`: a series' items in a window."""
    _require(request, READ_SCOPES)
    state = _state(request)
    user = _me(request)
    ev, inst = _find_item(request)
    start, end = _window(request)
    tz, _ = _time_zone_preference(request)
    if inst is not None:
        items = [inst] if inst.start < end and inst.end > start else []
    else:
        items = expand(ev.id, ev.fields, ev.exceptions, frozenset(ev.cancelled), start, end)
    data = {
        "@odata.context": _context(state, "Collection(event)"),
        "value": [_render(state, user, ev, item, tz) for item in items],
    }
    return _json(data, headers=_applied([f'outlook.timezone="{tz}"'] if tz else []))


async def calendar_view(request: web.Request) -> web.Response:
    return await _view(request, _calendar(request))


async def default_calendar_view(request: web.Request) -> web.Response:
    return await _view(request, _state(request).store.default_calendar(_me(request).id))


async def _delta(request: web.Request, cal: Calendar) -> web.Response:
    _require(request, READ_SCOPES)
    state = _state(request)
    engine = request.app[delta_key]
    user = _me(request)
    for name in UNSUPPORTED_ON_DELTA:
        if name in request.query:
            raise _fail(
                400,
                "BadRequest",
                f"The query parameter '{name}' is not supported with delta on calendarView.",
            )
    tz, prefs = _time_zone_preference(request)
    size, size_applied = page_size(prefs)
    token = request.query.get("$deltatoken") or request.query.get("$skiptoken")
    if token:
        try:
            cursor: Cursor = engine.decode(token, user.id)
        except DeltaStateNotFound:
            raise _fail(
                410,
                "SyncStateNotFound",
                f"The sync state generation is not found; generation={state.store.seq};"
                f"[highest={state.store.seq}].",
            ) from None
        if cursor.calendar_id != cal.id:
            raise _fail(410, "SyncStateNotFound", "The sync state does not belong to this calendar.")
        if "$deltatoken" in request.query:
            cursor = engine.resume_round(cursor)
    else:
        start, end = _window(request)
        cursor = engine.start_round(cal, start, end)
    entries, skip_token, delta_token = engine.page(cursor, size)
    value = b",".join(
        json.dumps(removed_json(entry)).encode()
        if isinstance(entry, str)
        else engine.rendered(entry[0], entry[1], user, tz)
        for entry in entries
    )
    link_base = f"{state.base_url}{request.path}"
    if skip_token is not None:
        link = {"@odata.nextLink": f"{link_base}?$skiptoken={skip_token}"}
    else:
        link = {"@odata.deltaLink": f"{link_base}?$deltatoken={delta_token}"}
    context = json.dumps({"@odata.context": _context(state, "Collection(event)")})
    body = context[:-1].encode() + b',"value":[' + value + b"]," + json.dumps(link)[1:].encode()
    applied = ([f"odata.maxpagesize={size}"] if size_applied else []) + (
        [f'outlook.timezone="{tz}"'] if tz else []
    )
    return web.Response(
        body=body, content_type="application/json", charset="utf-8", headers=_applied(applied)
    )


async def calendar_delta(request: web.Request) -> web.Response:
    return await _delta(request, _calendar(request))


async def default_calendar_delta(request: web.Request) -> web.Response:
    return await _delta(request, _state(request).store.default_calendar(_me(request).id))
