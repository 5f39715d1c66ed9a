"""The Calendar API v3 subset under ``/calendar/v3``: calendarList (list, get, watch),
calendars.get, events (list, get, instances, insert, patch, update, delete, watch), channels.stop.

Every call needs a bearer access token (``Authorization`` header, or Google's ``access_token``
query parameter) with a calendar scope that covers it;
errors use Google's envelope (``errors``). What real clients add is accepted: ``alt=json``,
``prettyPrint``, ``quotaUser``, ``fields`` (ignored: full resources are returned), gzip
``Accept-Encoding`` (answers are compressed), and percent-encoded calendar ids.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_response import ContentCoding

from chronapilot.sandbox.google.emulator import EMULATOR
from chronapilot.sandbox.google.errors import (
    JSON_CONTENT_TYPE,
    ApiError,
    api_error_response,
    bad_request,
    full_sync_required,
    insufficient_permissions,
    invalid_credentials,
    invalid_value,
    json_response,
    login_required,
    not_found,
)
from chronapilot.sandbox.google.event_listing import DEFAULT_REMINDERS, EventListing, EventQuery
from chronapilot.sandbox.google.event_writes import unmodified_instance
from chronapilot.sandbox.google.grants import (
    CALENDAR_LIST_SCOPES,
    EVENTS_READ_SCOPES,
    EVENTS_WRITE_SCOPES,
    Bearer,
)
from chronapilot.sandbox.google.instances import list_instances
from chronapilot.sandbox.google.store import Calendar

API_PREFIX = "/calendar/v3"
ACCESS_ROLES = ("freeBusyReader", "reader", "writer", "owner")
routes = web.RouteTableDef()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render :class:`ApiError` raised by Calendar API handlers; compress when asked."""
    if not request.path.startswith(API_PREFIX):
        return await handler(request)
    try:
        if request.query.get("alt", "json") != "json":
            raise invalid_value(f"Invalid value for: alt: {request.query['alt']}")
        response = await handler(request)
    except ApiError as error:
        response = api_error_response(error)
    if _wants_gzip(request) and isinstance(response, web.Response) and (response.content_length or 0) > 1024:
        response.enable_compression(ContentCoding.gzip)
    return response


def _wants_gzip(request: web.Request) -> bool:
    accepted = request.headers.get("Accept-Encoding", "")
    return "gzip" in (coding.split(";")[0].strip().lower() for coding in accepted.split(","))


def authorize(request: web.Request, scopes: frozenset[str]) -> Bearer:
    """The caller's bearer token (header, or Google's ``access_token`` query parameter), or 401/403."""
    header = request.headers.get("Authorization")
    if not header and "access_token" in request.query:
        header = f"Bearer {request.query['access_token']}"
    if not header:
        raise login_required()
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise invalid_credentials()
    bearer = request.app[EMULATOR].authority.bearer(token.strip())
    if bearer is None:
        raise invalid_credentials()
    if not bearer.allows(scopes):
        raise insufficient_permissions()
    return bearer


def calendar_for(request: web.Request, bearer: Bearer) -> Calendar:
    """The path's calendar (``primary`` = the account's), if it is in the caller's list."""
    emulator = request.app[EMULATOR]
    calendar_id = request.match_info["calendarId"]
    account = bearer.account
    if calendar_id == "primary":
        return emulator.store.primary_calendar(account)
    if calendar_id not in account.calendar_ids:
        raise not_found()
    return emulator.store.calendars[calendar_id]


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or 400 ``parseError``."""
    try:
        body = json.loads(await request.read() or b"{}")
    except ValueError:
        raise ApiError(400, "parseError", "Parse Error") from None
    if not isinstance(body, dict):
        raise ApiError(400, "parseError", "Parse Error")
    return body


def calendar_list_entry(calendar: Calendar, primary: bool) -> dict[str, Any]:
    """A CalendarListEntry."""
    entry: dict[str, Any] = {
        "kind": "calendar#calendarListEntry",
        "etag": f'"{calendar.list_seq:016d}"',
        "id": calendar.id,
        "summary": calendar.summary,
    }
    if calendar.description:
        entry["description"] = calendar.description
    if calendar.location:
        entry["location"] = calendar.location
    entry.update(
        timeZone=calendar.time_zone,
        colorId=calendar.color_id,
        backgroundColor=calendar.background_color,
        foregroundColor=calendar.foreground_color,
        selected=True,
        accessRole="owner",
        defaultReminders=DEFAULT_REMINDERS,
        conferenceProperties={"allowedConferenceSolutionTypes": ["hangoutsMeet"]},
    )
    if calendar.hidden:
        entry["hidden"] = True
    if primary:
        entry["primary"] = True
    return entry


def _list_token(kind: str, epoch: str, value: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{epoch}:{value}".encode()).decode()


def _read_list_token(token: str, kind: str, epoch: str) -> int:
    try:
        found, found_epoch, value = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        if (found, found_epoch) != (kind, epoch):
            raise ValueError(token)
        return int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        if kind == "sync":
            raise full_sync_required() from None
        raise invalid_value("Invalid page token value.") from None


@routes.get(f"{API_PREFIX}/users/me/calendarList")
async def calendar_list(request: web.Request) -> web.Response:
    """calendarList.list with paging and incremental sync."""
    bearer = authorize(request, CALENDAR_LIST_SCOPES)
    emulator = request.app[EMULATOR]
    params = request.query
    sync_token = params.get("syncToken")
    if params.get("minAccessRole", "owner") not in ACCESS_ROLES:
        raise invalid_value(f"Invalid value for: minAccessRole: {params['minAccessRole']}")
    if sync_token is not None and "minAccessRole" in params:
        raise bad_request("The parameter minAccessRole is not allowed together with syncToken.")
    epoch = emulator.store.list_epoch
    since = _read_list_token(sync_token, "sync", epoch) if sync_token is not None else None
    if since is not None and since > emulator.store.list_seq:
        raise full_sync_required()
    show_hidden = params.get("showHidden") == "true" or since is not None
    show_deleted = params.get("showDeleted") == "true" or since is not None
    size = min(_positive_int(params.get("maxResults"), 100), 250)
    offset = _read_list_token(params["pageToken"], "page", epoch) if "pageToken" in params else 0
    account = bearer.account
    entries = [
        calendar_list_entry(emulator.store.calendars[calendar_id], primary=index == 0)
        for index, calendar_id in enumerate(account.calendar_ids)
        if (show_hidden or not emulator.store.calendars[calendar_id].hidden)
        and emulator.store.calendars[calendar_id].list_seq > (since or 0)
    ]
    if show_deleted:
        entries += [
            {
                "kind": "calendar#calendarListEntry",
                "etag": f'"{seq:016d}"',
                "id": calendar_id,
                "deleted": True,
            }
            for calendar_id, seq in account.removed_calendars.items()
            if seq > (since or 0)
        ]
    body: dict[str, Any] = {"kind": "calendar#calendarList", "etag": f'"p{emulator.store.list_seq:016d}"'}
    page = entries[offset : offset + size]
    if offset + size < len(entries):
        body["nextPageToken"] = _list_token("page", epoch, offset + size)
    else:
        body["nextSyncToken"] = _list_token("sync", epoch, emulator.store.list_seq)
    body["items"] = page
    return json_response(body)


def _positive_int(value: str | None, default: int) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise invalid_value(f"Invalid value '{value}'.") from None
    if number < 1:
        raise invalid_value(f"Invalid value '{value}'.")
    return number


@routes.post(f"{API_PREFIX}/users/me/calendarList/watch")
async def calendar_list_watch(request: web.Request) -> web.Response:
    """calendarList.watch: be told when calendars are added to or removed from the list."""
    bearer = authorize(request, CALENDAR_LIST_SCOPES)
    emulator = request.app[EMULATOR]
    channel = emulator.channels.watch_calendar_list(bearer.account.sub, await json_body(request))
    emulator.store.changed()
    return json_response(channel.to_json())


@routes.get(f"{API_PREFIX}/users/me/calendarList/{{calendarId}}")
async def calendar_list_get(request: web.Request) -> web.Response:
    """calendarList.get."""
    bearer = authorize(request, CALENDAR_LIST_SCOPES)
    calendar = calendar_for(request, bearer)
    primary = calendar.id == bearer.account.calendar_ids[0]
    return json_response(calendar_list_entry(calendar, primary))


@routes.get(f"{API_PREFIX}/calendars/{{calendarId}}")
async def calendar_get(request: web.Request) -> web.Response:
    """calendars.get."""
    calendar = calendar_for(request, authorize(request, EVENTS_READ_SCOPES | CALENDAR_LIST_SCOPES))
    return json_response(
        {
            "kind": "calendar#calendar",
            "etag": f'"{calendar.list_seq:016d}"',
            "id": calendar.id,
            "summary": calendar.summary,
            "timeZone": calendar.time_zone,
            "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]},
        }
    )


@routes.get(f"{API_PREFIX}/calendars/{{calendarId}}/events")
async def events_list(request: web.Request) -> web.Response:
    """events.list."""
    calendar = calendar_for(request, authorize(request, EVENTS_READ_SCOPES))
    query = EventQuery.from_params(request.query)
    listing = EventListing(calendar, query, request.app[EMULATOR].clock.now())
    return web.Response(body=listing.render(), headers={"Content-Type": JSON_CONTENT_TYPE})


@routes.post(f"{API_PREFIX}/calendars/{{calendarId}}/events")
async def events_insert(request: web.Request) -> web.Response:
    """events.insert (200 with the event, as Google answers)."""
    calendar = calendar_for(request, authorize(request, EVENTS_WRITE_SCOPES))
    body = await json_body(request)
    return json_response(request.app[EMULATOR].writer.insert(calendar, body))


@routes.post(f"{API_PREFIX}/calendars/{{calendarId}}/events/watch")
async def events_watch(request: web.Request) -> web.Response:
    """events.watch: open a notification channel."""
    bearer = authorize(request, EVENTS_READ_SCOPES)
    calendar = calendar_for(request, bearer)
    emulator = request.app[EMULATOR]
    channel = emulator.channels.watch_events(calendar, bearer.account.sub, await json_body(request))
    emulator.store.changed()
    return json_response(channel.to_json())


@routes.get(f"{API_PREFIX}/calendars/{{calendarId}}/events/{{eventId}}/instances")
async def events_instances(request: web.Request) -> web.Response:
    """events.instances."""
    calendar = calendar_for(request, authorize(request, EVENTS_READ_SCOPES))
    now = request.app[EMULATOR].clock.now()
    return json_response(list_instances(calendar, request.match_info["eventId"], request.query, now))


@routes.get(f"{API_PREFIX}/calendars/{{calendarId}}/events/{{eventId}}")
async def events_get(request: web.Request) -> web.Response:
    """events.get (deleted events answer with their cancelled form)."""
    calendar = calendar_for(request, authorize(request, EVENTS_READ_SCOPES))
    event_id = request.match_info["eventId"]
    stored = calendar.log.get(event_id)
    if stored is not None:
        return json_response(stored.resource)
    return json_response(unmodified_instance(calendar, event_id))


@routes.patch(f"{API_PREFIX}/calendars/{{calendarId}}/events/{{eventId}}")
async def events_patch(request: web.Request) -> web.Response:
    """events.patch."""
    calendar = calendar_for(request, authorize(request, EVENTS_WRITE_SCOPES))
    body = await json_body(request)
    writer = request.app[EMULATOR].writer
    event = writer.patch(calendar, request.match_info["eventId"], body, request.headers.get("If-Match"))
    return json_response(event)


@routes.put(f"{API_PREFIX}/calendars/{{calendarId}}/events/{{eventId}}")
async def events_update(request: web.Request) -> web.Response:
    """events.update."""
    calendar = calendar_for(request, authorize(request, EVENTS_WRITE_SCOPES))
    body = await json_body(request)
    writer = request.app[EMULATOR].writer
    event = writer.update(calendar, request.match_info["eventId"], body, request.headers.get("If-Match"))
    return json_response(event)


@routes.delete(f"{API_PREFIX}/calendars/{{calendarId}}/events/{{eventId}}")
async def events_delete(request: web.Request) -> web.Response:
    """events.delete: 204 with an empty body."""
    calendar = calendar_for(request, authorize(request, EVENTS_WRITE_SCOPES))
    writer = request.app[EMULATOR].writer
    writer.delete(calendar, request.match_info["eventId"], request.headers.get("If-Match"))
    return web.Response(status=204)


@routes.post(f"{API_PREFIX}/channels/stop")
async def channels_stop(request: web.Request) -> web.Response:
    """channels.stop: 204, or 404 for an unknown channel."""
    bearer = authorize(request, EVENTS_READ_SCOPES | CALENDAR_LIST_SCOPES)
    emulator = request.app[EMULATOR]
    emulator.channels.stop(bearer.account.sub, await json_body(request))
    emulator.store.changed()
    return web.Response(status=204)
