"""The Graph subset for the mailbox: `/v1.0/me`, `/oidc/userinfo`, calendars, and events (read,
list, create, PATCH, DELETE; an occurrence id works too: PATCH makes an exception, DELETE cancels
it). Calendar views and delta live in `views.py`.

Writes, as Graph answers them:

- a write with only `Calendars.Read`, or to a calendar shared read-only (`canEdit: false`),
  answers 403 `ErrorAccessDenied`;
- a create whose `transactionId` an event of the mailbox already carries creates nothing and
  answers `201` with that event (Graph documents `transactionId` as the way "to avoid redundant
  POST operations in case of client retries"; what it answers to the retry is not documented:
  this is the emulator's reading); `transactionId` cannot be changed by a PATCH (400);
- listing events understands `$filter=transactionId eq '<id>'` (and no other filter: 400);
- PATCH and DELETE honour `If-Match` (the item's `@odata.etag`, `W/"<changeKey>"`; the bare
  change key and `*` are accepted too): a mismatch answers 412 `ErrorIrresolvableConflict`.
  An occurrence's etag is its own (an exception's differs from the series').
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from aiohttp import web

from .context import (
    READ_SCOPES,
    WRITE_SCOPES,
    applied,
    context_url,
    current_user,
    fail,
    json_response,
    paging,
    presentation,
    read_body,
    require_scope,
    state_of,
)
from .recurrence import Instance, find_occurrence, split_occurrence_id
from .resources import Presentation, calendar_json, event_json, user_json
from .state import MicrosoftState
from .store import Calendar, InvalidEvent, NotFound, StoredEvent, User


def routes() -> list[web.RouteDef]:
    me = "/v1.0/me"
    cal = me + "/calendars/{calendar_id}"
    return [
        web.get("/oidc/userinfo", userinfo),
        web.get(me, get_me),
        web.get(me + "/calendars", list_calendars),
        web.get(me + "/calendar", get_default_calendar),
        web.get(cal, get_calendar),
        web.get(me + "/events", list_default_events),
        web.get(cal + "/events", list_events),
        web.post(me + "/events", create_default_event),
        web.get(me + "/calendar/events", list_default_events),
        web.post(me + "/calendar/events", create_default_event),
        web.post(cal + "/events", create_event),
        web.get(me + "/events/{event_id}", get_event),
        web.get(cal + "/events/{event_id}", get_event),
        web.patch(me + "/events/{event_id}", update_event),
        web.patch(cal + "/events/{event_id}", update_event),
        web.delete(me + "/events/{event_id}", delete_event),
        web.delete(cal + "/events/{event_id}", delete_event),
    ]


# me and calendars ---------------------------------------------------------------------------


async def get_me(request: web.Request) -> web.Response:
    return json_response(user_json(current_user(request), state_of(request).base_url))


async def userinfo(request: web.Request) -> web.Response:
    """OpenID Connect userinfo (Graph serves it at `/oidc/userinfo`)."""
    user = current_user(request)
    return json_response(
        {
            "sub": user.id,
            "name": user.display_name,
            "family_name": user.surname,
            "given_name": user.given_name,
            "email": user.mail or user.user_principal_name,
        }
    )


def calendar_of(request: web.Request) -> Calendar:
    user = current_user(request)
    try:
        return state_of(request).store.calendar(request.match_info["calendar_id"], user.id)
    except NotFound:
        raise fail(404) from None


async def list_calendars(request: web.Request) -> web.Response:
    require_scope(request, READ_SCOPES)
    state = state_of(request)
    user = current_user(request)
    cals = sorted(state.store.calendars_of(user.id), key=lambda c: (not c.is_default, c.name))
    top, skip = paging(request, default_top=10)
    data: dict[str, Any] = {
        "@odata.context": context_url(state, f"users('{quote(user.user_principal_name)}')/calendars"),
        "value": [calendar_json(c, user) for c in cals[skip : skip + top]],
    }
    if skip + top < len(cals):
        data["@odata.nextLink"] = f"{state.base_url}/v1.0/me/calendars?$top={top}&$skip={skip + top}"
    return json_response(data)


async def get_calendar(request: web.Request) -> web.Response:
    require_scope(request, READ_SCOPES)
    state = state_of(request)
    user = current_user(request)
    data = {
        "@odata.context": context_url(state, "users('me')/calendars/$entity"),
        **calendar_json(calendar_of(request), user),
    }
    return json_response(data)


async def get_default_calendar(request: web.Request) -> web.Response:
    require_scope(request, READ_SCOPES)
    state = state_of(request)
    user = current_user(request)
    cal = state.store.default_calendar(user.id)
    return json_response(
        {"@odata.context": context_url(state, "users('me')/calendar/$entity"), **calendar_json(cal, user)}
    )


# events ---------------------------------------------------------------------------------------

_TRANSACTION_FILTER = re.compile(r"^\s*transactionId\s+eq\s+'((?:[^']|'')*)'\s*$")
ACCESS_DENIED = "Access is denied. Check credentials and try again."


def render(
    state: MicrosoftState, user: User, ev: StoredEvent, inst: Instance | None, shown: Presentation
) -> dict[str, Any]:
    return event_json(ev, user, state.base_url, shown, inst)


def find_item(request: web.Request) -> tuple[StoredEvent, Instance | None]:
    state = state_of(request)
    user = current_user(request)
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
        raise fail(404) from None
    if "calendar_id" in request.match_info and ev.calendar_id != request.match_info["calendar_id"]:
        raise fail(404)
    return ev, inst


async def get_event(request: web.Request) -> web.Response:
    require_scope(request, READ_SCOPES)
    state = state_of(request)
    ev, inst = find_item(request)
    shown, _ = presentation(request)
    data = {
        "@odata.context": context_url(state, "users('me')/events/$entity"),
        **render(state, current_user(request), ev, inst, shown),
    }
    return json_response(data, headers=applied(shown.preferences_applied()))


def require_writable(cal: Calendar) -> None:
    """403 `ErrorAccessDenied` on a calendar the mailbox may only read."""
    if not cal.can_edit:
        raise fail(403, "ErrorAccessDenied", ACCESS_DENIED)


def check_if_match(request: web.Request, ev: StoredEvent, inst: Instance | None) -> None:
    """412 when `If-Match` names another version of the item than the current one."""
    wanted = request.headers.get("If-Match")
    if wanted is None:
        return
    state = state_of(request)
    current = render(state, current_user(request), ev, inst, Presentation())["changeKey"]
    accepted = {"*", current}
    if not any(_etag_value(tag) in accepted for tag in wanted.split(",")):
        raise fail(
            412,
            "ErrorIrresolvableConflict",
            "The send or update operation could not be performed because the change key passed in "
            "the request does not match the current change key for the item.",
        )


def _etag_value(tag: str) -> str:
    value = tag.strip().removeprefix("W/")
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def _writable_item(request: web.Request) -> tuple[StoredEvent, Instance | None]:
    ev, inst = find_item(request)
    require_writable(state_of(request).store.calendars[ev.calendar_id])
    check_if_match(request, ev, inst)
    return ev, inst


async def _create(request: web.Request, cal: Calendar) -> web.Response:
    require_scope(request, WRITE_SCOPES)
    require_writable(cal)
    state = state_of(request)
    body = await read_body(request)
    try:
        ev = state.store.create_event(cal.id, body, user_id=current_user(request).id)
    except InvalidEvent as exc:
        raise fail(400, "ErrorInvalidParameter", str(exc)) from None
    state.changed()
    shown, _ = presentation(request)
    data = {
        "@odata.context": context_url(state, "users('me')/events/$entity"),
        **render(state, current_user(request), ev, None, shown),
    }
    return json_response(
        data, status=201, headers={"Location": f"{state.base_url}/v1.0/me/events('{ev.id}')"}
    )


async def create_event(request: web.Request) -> web.Response:
    return await _create(request, calendar_of(request))


async def create_default_event(request: web.Request) -> web.Response:
    return await _create(request, state_of(request).store.default_calendar(current_user(request).id))


async def update_event(request: web.Request) -> web.Response:
    require_scope(request, WRITE_SCOPES)
    state = state_of(request)
    _writable_item(request)
    body = await read_body(request)
    user = current_user(request)
    try:
        ev, _item_id = state.store.update_event(request.match_info["event_id"], body, user_id=user.id)
    except NotFound:
        raise fail(404) from None
    except InvalidEvent as exc:
        raise fail(400, "ErrorInvalidParameter", str(exc)) from None
    state.changed()
    _, inst = find_item(request)
    shown, _ = presentation(request)
    data = {
        "@odata.context": context_url(state, "users('me')/events/$entity"),
        **render(state, user, ev, inst, shown),
    }
    return json_response(data)


async def delete_event(request: web.Request) -> web.Response:
    require_scope(request, WRITE_SCOPES)
    state = state_of(request)
    _writable_item(request)
    try:
        state.store.delete_event(request.match_info["event_id"], user_id=current_user(request).id)
    except NotFound:
        raise fail(404) from None
    state.changed()
    return web.Response(status=204)


async def _list_events(request: web.Request, cal: Calendar) -> web.Response:
    require_scope(request, READ_SCOPES)
    state = state_of(request)
    user = current_user(request)
    shown, _ = presentation(request)
    events = sorted(state.store.live_events(cal.id), key=lambda e: e.created)
    if "$filter" in request.query:
        match = _TRANSACTION_FILTER.match(request.query["$filter"])
        if match is None:
            raise fail(400, "BadRequest", "The emulator filters events by transactionId only.")
        wanted = match.group(1).replace("''", "'")
        events = [ev for ev in events if ev.fields.get("transactionId") == wanted]
    top, skip = paging(request, default_top=10)
    data: dict[str, Any] = {
        "@odata.context": context_url(state, "users('me')/calendars('" + cal.id + "')/events"),
        "value": [render(state, user, ev, None, shown) for ev in events[skip : skip + top]],
    }
    if skip + top < len(events):
        data["@odata.nextLink"] = f"{state.base_url}{request.path}?$top={top}&$skip={skip + top}"
    return json_response(data, headers=applied(shown.preferences_applied()))


async def list_events(request: web.Request) -> web.Response:
    return await _list_events(request, calendar_of(request))


async def list_default_events(request: web.Request) -> web.Response:
    return await _list_events(request, state_of(request).store.default_calendar(current_user(request).id))
