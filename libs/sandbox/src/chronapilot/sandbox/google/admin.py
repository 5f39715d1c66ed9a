"""The Google emulator's admin API under ``/_admin/`` (not part of Google's surface). JSON in and out.

- ``GET /_admin/oauth-client`` / ``PUT /_admin/oauth-client``: the sandbox OAuth client ChronaPilot
  uses (``client_id``, ``client_secret``, ``redirect_uris``, ``allow_loopback_redirects``).
- ``GET /_admin/users``; ``POST /_admin/users`` ``{"email", "name"?, "password"?, "timeZone"?}``
  creates an account and its primary calendar (id = e-mail).
- ``POST /_admin/users/{email}/calendars`` ``{"summary", "timeZone"?, "description"?, "id"?}``;
  ``DELETE /_admin/calendars/{calendarId}`` removes a secondary calendar.
- ``GET|POST /_admin/calendars/{calendarId}/events`` and
  ``PATCH|PUT|DELETE /_admin/calendars/{calendarId}/events/{eventId}``: changes made as the
  calendar's owner would make them (new etag, next sync sequence, push notifications);
  ``organizer`` may be set, to model invitations.
- ``POST /_admin/calendars/{calendarId}/sync-tokens/expire``: every sync token issued so far
  answers 410 from now on.
- ``POST /_admin/tokens/expire`` ``{"kind": "access"|"refresh"|"code"|"all", "access_token"?,
  "refresh_token"?, "email"?}`` (default kind ``access``): those tokens or codes expire now; an
  expired refresh token answers ``invalid_grant`` "Token has been expired or revoked.".
- ``POST /_admin/grants/revoke`` ``{"email", "client_id"?}``: the user removes the app's access.
- ``GET /_admin/channels``; ``POST /_admin/notifications/drain`` waits for pending deliveries.
- plus the shared ``faults``, ``counters`` and ``clock`` endpoints (see ``shared.admin_routes``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from aiohttp import web

from chronapilot.sandbox.google.emulator import EMULATOR, GoogleEmulator
from chronapilot.sandbox.google.errors import ApiError, json_response
from chronapilot.sandbox.google.event_log import EventLog
from chronapilot.sandbox.google.event_times import is_time_zone
from chronapilot.sandbox.google.store import Account, Calendar
from chronapilot.sandbox.shared.admin_routes import admin_error, read_json_object

ADMIN_PREFIX = "/_admin/"
routes = web.RouteTableDef()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def admin_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render API errors raised through the admin API as ``{"error": message, "google": body}``."""
    if not request.path.startswith(ADMIN_PREFIX):
        return await handler(request)
    try:
        return await handler(request)
    except ApiError as error:
        return json_response({"error": error.message, "google": error.body()}, status=error.code)


def _account(emulator: GoogleEmulator, email: str) -> Account:
    account = emulator.store.account_by_email(email)
    if account is None:
        raise admin_error(404, f"no account {email}")
    return account


def _calendar(emulator: GoogleEmulator, calendar_id: str) -> Calendar:
    calendar = emulator.store.calendars.get(calendar_id)
    if calendar is None:
        raise admin_error(404, f"no calendar {calendar_id}")
    return calendar


def _time_zone(body: dict[str, Any], default: str) -> str:
    time_zone = body.get("timeZone", default)
    if not isinstance(time_zone, str) or not is_time_zone(time_zone):
        raise admin_error(400, "timeZone must be an IANA time zone name")
    return time_zone


def create_account(
    emulator: GoogleEmulator,
    email: str,
    name: str,
    password: str | None,
    time_zone: str,
    sub: str | None = None,
) -> Account:
    """A new account with its primary calendar."""
    store = emulator.store
    account = store.add_account(email, name, password, sub)
    store.add_calendar(account, Calendar(email, account.sub, email, time_zone, EventLog()))
    return account


def account_json(emulator: GoogleEmulator, account: Account) -> dict[str, Any]:
    """The admin view of an account."""
    return {
        "sub": account.sub,
        "email": account.email,
        "name": account.name,
        "password": account.password,
        "calendars": [
            {"id": cid, "summary": emulator.store.calendars[cid].summary} for cid in account.calendar_ids
        ],
    }


@routes.get(f"{ADMIN_PREFIX}oauth-client")
async def read_oauth_client(request: web.Request) -> web.Response:
    """The sandbox OAuth client."""
    emulator = request.app[EMULATOR]
    return json_response(next(iter(emulator.store.clients.values())).to_json())


@routes.put(f"{ADMIN_PREFIX}oauth-client")
async def change_oauth_client(request: web.Request) -> web.Response:
    """Change the sandbox client's id, secret or redirect URIs."""
    emulator = request.app[EMULATOR]
    body = await read_json_object(request)
    client = next(iter(emulator.store.clients.values()))
    for field in ("client_id", "client_secret", "name"):
        if field in body:
            if not isinstance(body[field], str) or not body[field]:
                raise admin_error(400, f"{field} must be a non-empty string")
            setattr(client, field, body[field])
    if "redirect_uris" in body:
        uris = body["redirect_uris"]
        if not isinstance(uris, list) or not all(isinstance(uri, str) for uri in uris):
            raise admin_error(400, "redirect_uris must be a list of strings")
        client.redirect_uris = uris
    if "allow_loopback_redirects" in body:
        client.allow_loopback_redirects = bool(body["allow_loopback_redirects"])
    emulator.store.clients = {client.client_id: client}
    emulator.store.changed()
    return json_response(client.to_json())


@routes.get(f"{ADMIN_PREFIX}users")
async def list_users(request: web.Request) -> web.Response:
    """Every account."""
    emulator = request.app[EMULATOR]
    return json_response([account_json(emulator, account) for account in emulator.store.accounts.values()])


@routes.post(f"{ADMIN_PREFIX}users")
async def create_user(request: web.Request) -> web.Response:
    """Create an account and its primary calendar."""
    emulator = request.app[EMULATOR]
    body = await read_json_object(request)
    email = body.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise admin_error(400, "email is required")
    if emulator.store.account_by_email(email) is not None:
        raise admin_error(409, f"{email} exists")
    name = str(body.get("name") or email.split("@")[0])
    password = body.get("password")
    account = create_account(
        emulator, email, name, None if password is None else str(password), _time_zone(body, "UTC")
    )
    return json_response(account_json(emulator, account), status=201)


@routes.post(f"{ADMIN_PREFIX}users/{{email}}/calendars")
async def create_calendar(request: web.Request) -> web.Response:
    """Add a secondary calendar to an account."""
    emulator = request.app[EMULATOR]
    account = _account(emulator, request.match_info["email"])
    body = await read_json_object(request)
    summary = body.get("summary")
    if not isinstance(summary, str) or not summary:
        raise admin_error(400, "summary is required")
    calendar_id = (
        body.get("id") or f"c_{len(emulator.store.calendars):04d}{account.sub[-8:]}@group.calendar.google.com"
    )
    if calendar_id in emulator.store.calendars:
        raise admin_error(409, f"{calendar_id} exists")
    calendar = Calendar(
        calendar_id,
        account.sub,
        summary,
        _time_zone(body, emulator.store.primary_calendar(account).time_zone),
        EventLog(),
        description=str(body.get("description", "")),
    )
    emulator.store.add_calendar(account, calendar)
    return json_response(
        {"id": calendar.id, "summary": calendar.summary, "timeZone": calendar.time_zone}, 201
    )


@routes.delete(f"{ADMIN_PREFIX}calendars/{{calendarId}}")
async def delete_calendar(request: web.Request) -> web.Response:
    """The owner deletes a secondary calendar: its watchers get ``not_exists``, the API 404."""
    emulator = request.app[EMULATOR]
    calendar = _calendar(emulator, request.match_info["calendarId"])
    if emulator.store.primary_calendar(emulator.store.accounts[calendar.owner_sub]) is calendar:
        raise admin_error(400, "the primary calendar cannot be deleted")
    emulator.store.remove_calendar(calendar)
    return web.Response(status=204)


@routes.get(f"{ADMIN_PREFIX}calendars/{{calendarId}}/events")
async def list_stored_events(request: web.Request) -> web.Response:
    """Every stored event of a calendar (cancelled ones included), in change order."""
    calendar = _calendar(request.app[EMULATOR], request.match_info["calendarId"])
    stored = calendar.log.changed_after(0, calendar.log.seq)
    return json_response({"items": [event.resource for event in stored]})


@routes.post(f"{ADMIN_PREFIX}calendars/{{calendarId}}/events")
async def insert_event(request: web.Request) -> web.Response:
    """Insert an event as the calendar's owner."""
    emulator = request.app[EMULATOR]
    calendar = _calendar(emulator, request.match_info["calendarId"])
    body = await read_json_object(request)
    return json_response(emulator.writer.insert(calendar, body, keep_organizer=True), status=201)


@routes.patch(f"{ADMIN_PREFIX}calendars/{{calendarId}}/events/{{eventId}}")
async def patch_event(request: web.Request) -> web.Response:
    """Patch an event (or turn an instance into an exception) as the owner."""
    emulator = request.app[EMULATOR]
    calendar = _calendar(emulator, request.match_info["calendarId"])
    body = await read_json_object(request)
    return json_response(emulator.writer.patch(calendar, request.match_info["eventId"], body))


@routes.put(f"{ADMIN_PREFIX}calendars/{{calendarId}}/events/{{eventId}}")
async def replace_event(request: web.Request) -> web.Response:
    """Replace an event as the owner."""
    emulator = request.app[EMULATOR]
    calendar = _calendar(emulator, request.match_info["calendarId"])
    body = await read_json_object(request)
    return json_response(emulator.writer.update(calendar, request.match_info["eventId"], body))


@routes.delete(f"{ADMIN_PREFIX}calendars/{{calendarId}}/events/{{eventId}}")
async def delete_event(request: web.Request) -> web.Response:
    """Delete an event (or cancel one instance) as the owner."""
    emulator = request.app[EMULATOR]
    calendar = _calendar(emulator, request.match_info["calendarId"])
    emulator.writer.delete(calendar, request.match_info["eventId"])
    return web.Response(status=204)


@routes.post(f"{ADMIN_PREFIX}calendars/{{calendarId}}/sync-tokens/expire")
async def expire_sync_tokens(request: web.Request) -> web.Response:
    """Make the calendar's sync tokens answer 410."""
    emulator = request.app[EMULATOR]
    _calendar(emulator, request.match_info["calendarId"]).log.expire_sync_tokens()
    emulator.store.changed()
    return web.Response(status=204)


@routes.post(f"{ADMIN_PREFIX}tokens/expire")
async def expire_tokens(request: web.Request) -> web.Response:
    """Expire access tokens, refresh tokens or codes: one token, an account's, or all."""
    emulator = request.app[EMULATOR]
    body = await read_json_object(request)
    kind = body.get("kind", "access")
    if kind not in ("access", "refresh", "code", "all"):
        raise admin_error(400, "kind must be access, refresh, code or all")
    account_sub = _account(emulator, str(body["email"])).sub if body.get("email") else None
    authority = emulator.authority
    expired = 0
    if kind in ("access", "all"):
        expired += authority.expire_access_tokens(token=body.get("access_token"), account_sub=account_sub)
    if kind in ("refresh", "all"):
        expired += authority.expire_refresh_tokens(token=body.get("refresh_token"), account_sub=account_sub)
    if kind in ("code", "all"):
        expired += authority.expire_codes(account_sub=account_sub)
    return json_response({"expired": expired})


@routes.post(f"{ADMIN_PREFIX}grants/revoke")
async def revoke_grants(request: web.Request) -> web.Response:
    """The user removes an app's (or every app's) access."""
    emulator = request.app[EMULATOR]
    body = await read_json_object(request)
    account = _account(emulator, str(body.get("email", "")))
    revoked = emulator.authority.revoke_access(account.sub, body.get("client_id"))
    return json_response({"revoked": revoked})


@routes.get(f"{ADMIN_PREFIX}channels")
async def list_channels(request: web.Request) -> web.Response:
    """Live notification channels."""
    channels = request.app[EMULATOR].channels.channels.values()
    return json_response([asdict(channel) for channel in channels])


@routes.post(f"{ADMIN_PREFIX}notifications/drain")
async def drain_notifications(request: web.Request) -> web.Response:
    """Wait until every notification dispatched so far has been delivered (or given up)."""
    await request.app[EMULATOR].dispatcher.drain()
    return web.Response(status=204)
