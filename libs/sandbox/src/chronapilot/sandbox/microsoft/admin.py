"""The Microsoft emulator's admin API under `/_admin/` (JSON in and out; not the provider surface).

- `GET /_admin/`: this list.
- `GET /_admin/apps`, `POST /_admin/apps`, `PATCH /_admin/apps/{client_id}`: OAuth apps
  (`client_id`, `client_secret`, `name`, `redirect_uris`, `secret_expired`); the sandbox app is
  there from the start.
- `GET|POST /_admin/users` (`email`, `displayName`, `password`, `mail_visible`),
  `GET|POST /_admin/users/{user}/calendars` (`name`, `color`, `hexColor`, `canEdit`: false for a
  calendar shared with the user read-only); `{user}` is an id or e-mail.
- `GET|POST /_admin/calendars/{calendar_id}/events`, `PATCH|DELETE /_admin/events/{event_id}`:
  changes made as the mailbox owner would make them (they feed delta and notifications);
  `{event_id}` may be an occurrence id (PATCH makes an exception, DELETE cancels it).
- `POST /_admin/tokens/expire` `{"kind": "access"|"refresh"|"code"|"all", "user": email?}`.
- `POST /_admin/users/{user}/require-interaction` `{"code": 50076|50079|65001, "error"?,
  "suberror"?}`: refreshes of that user answer like Entra wanting MFA or consent, until the user
  completes a new sign-in.
- `POST /_admin/grants/revoke` `{"user": email, "client_id"?, "remove_subscriptions": true}`.
- `GET|PATCH /_admin/settings`: `max_subscription_minutes` or `max_subscription_seconds`,
  `validation_timeout_seconds`, `access_token_ttl`, `mailbox_concurrency_limit` and
  `mailbox_requests_per_10_minutes` (null = off, the default), `notification_batch_seconds`
  (0 = one item per POST, the default), `change_log_limit` (changes kept per calendar, 20,000 by
  default; older delta tokens answer 410), `delta_quirks` (false by default; true: rounds open
  with an empty page that has a nextLink, and each round replays the previous round's last change).
- `GET /_admin/subscriptions`, `POST /_admin/subscriptions/{id}/lifecycle` `{"lifecycleEvent"}`.
- `POST /_admin/delta/expire` `{"calendar_id"?}`: every delta/skip token issued so far answers 410.
- `POST /_admin/notifications/drain`: wait until every queued notification was sent.
- shared: `/_admin/faults`, `/_admin/faults/notifications`, `/_admin/counters`, `/_admin/clock`.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict
from typing import Any

from aiohttp import web

from chronapilot.sandbox.shared.admin_routes import admin_error, read_json_object, shared_admin_routes

from .credentials import OAuthApp
from .notifications import (
    LIFECYCLE_EVENTS,
    check_subscriptions,
    flush_batches,
    live_subscriptions,
    send_lifecycle,
)
from .resources import Presentation, calendar_json, event_json
from .state import MicrosoftState, state_key
from .store import InvalidEvent, NotFound, User
from .subscriptions import subscription_json

PREFIX = "/_admin/"


def routes(state: MicrosoftState) -> list[web.RouteDef]:
    p = PREFIX
    return [
        web.get(p, describe),
        web.get(p + "apps", list_apps),
        web.post(p + "apps", create_app),
        web.patch(p + "apps/{client_id}", update_app),
        web.get(p + "users", list_users),
        web.post(p + "users", create_user),
        web.get(p + "users/{user}/calendars", list_calendars),
        web.post(p + "users/{user}/calendars", create_calendar),
        web.get(p + "calendars/{calendar_id}/events", list_events),
        web.post(p + "calendars/{calendar_id}/events", create_event),
        web.patch(p + "events/{event_id}", update_event),
        web.delete(p + "events/{event_id}", delete_event),
        web.post(p + "tokens/expire", expire_tokens),
        web.post(p + "users/{user}/require-interaction", require_interaction),
        web.post(p + "grants/revoke", revoke_grants),
        web.get(p + "settings", read_settings),
        web.patch(p + "settings", change_settings),
        web.get(p + "subscriptions", list_subscriptions),
        web.post(p + "subscriptions/{subscription_id}/lifecycle", trigger_lifecycle),
        web.post(p + "delta/expire", expire_delta_tokens),
        web.post(p + "notifications/drain", drain_notifications),
        *shared_admin_routes(
            p, state.faults, state.counters, state.clock, lambda: check_subscriptions(state)
        ),
    ]


async def describe(request: web.Request) -> web.Response:
    """`GET /_admin/`: what this admin API offers (this module's docstring, line by line)."""
    lines = [line for line in (__doc__ or "").splitlines() if line.strip()]
    return web.json_response({"emulator": "microsoft", "base_url": _state(request).base_url, "help": lines})


def _state(request: web.Request) -> MicrosoftState:
    return request.app[state_key]


def _app_json(app: OAuthApp) -> dict[str, Any]:
    return asdict(app)


def _user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.user_principal_name,
        "mail": user.mail,
        "displayName": user.display_name,
        "password": user.password,
    }


def _user(request: web.Request, key: str) -> User:
    store = _state(request).store
    user = store.users.get(key) or store.user_by_email(key)
    if user is None:
        raise admin_error(404, f"no user {key}")
    return user


def _text(data: dict[str, Any], key: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value:
        raise admin_error(400, f"{key} is required (a string)")
    return value


def _flag(data: dict[str, Any], key: str, *, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise admin_error(400, f"{key} must be true or false")
    return value


async def list_apps(request: web.Request) -> web.Response:
    return web.json_response([_app_json(a) for a in _state(request).identity.apps.values()])


async def create_app(request: web.Request) -> web.Response:
    state = _state(request)
    data = await read_json_object(request)
    client_id = data.get("client_id") or state.store.new_guid()
    if client_id in state.identity.apps:
        raise admin_error(409, f"app {client_id} exists")
    uris = data.get("redirect_uris") or []
    if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
        raise admin_error(400, "redirect_uris must be a list of strings")
    app = OAuthApp(
        client_id,
        str(data.get("client_secret") or secrets.token_urlsafe(24)),
        str(data.get("name") or "App"),
        uris,
    )
    state.identity.apps[app.client_id] = app
    state.changed()
    return web.json_response(_app_json(app), status=201)


async def update_app(request: web.Request) -> web.Response:
    state = _state(request)
    app = state.identity.apps.get(request.match_info["client_id"])
    if app is None:
        raise admin_error(404, "no such app")
    data = await read_json_object(request)
    if "redirect_uris" in data:
        uris = data["redirect_uris"]
        if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
            raise admin_error(400, "redirect_uris must be a list of strings")
        app.redirect_uris = list(uris)
    if "client_secret" in data:
        app.client_secret = _text(data, "client_secret")
    if "name" in data:
        app.name = _text(data, "name")
    if "secret_expired" in data:
        app.secret_expired = bool(data["secret_expired"])
    state.changed()
    return web.json_response(_app_json(app))


async def list_users(request: web.Request) -> web.Response:
    return web.json_response([_user_json(u) for u in _state(request).store.users.values()])


async def create_user(request: web.Request) -> web.Response:
    state = _state(request)
    data = await read_json_object(request)
    email = _text(data, "email")
    try:
        user = state.store.add_user(
            email,
            str(data.get("displayName") or email.split("@")[0]),
            str(data.get("password") or "sandbox-password"),
            mail_visible=bool(data.get("mail_visible", True)),
        )
    except InvalidEvent as exc:
        raise admin_error(409, str(exc)) from None
    state.changed()
    body = _user_json(user)
    body["calendars"] = [calendar_json(c, user) for c in state.store.calendars_of(user.id)]
    return web.json_response(body, status=201)


async def list_calendars(request: web.Request) -> web.Response:
    state = _state(request)
    user = _user(request, request.match_info["user"])
    return web.json_response([calendar_json(c, user) for c in state.store.calendars_of(user.id)])


async def create_calendar(request: web.Request) -> web.Response:
    state = _state(request)
    user = _user(request, request.match_info["user"])
    data = await read_json_object(request)
    cal = state.store.add_calendar(
        user.id,
        _text(data, "name"),
        color=str(data.get("color") or "auto"),
        hex_color=str(data.get("hexColor") or ""),
        can_edit=_flag(data, "canEdit", default=True),
    )
    state.changed()
    return web.json_response(calendar_json(cal, user), status=201)


async def list_events(request: web.Request) -> web.Response:
    state = _state(request)
    try:
        cal = state.store.calendar(request.match_info["calendar_id"])
    except NotFound:
        raise admin_error(404, "no such calendar") from None
    owner = state.store.user(cal.user_id)
    events = state.store.live_events(cal.id)
    return web.json_response([event_json(e, owner, state.base_url, Presentation()) for e in events])


async def create_event(request: web.Request) -> web.Response:
    state = _state(request)
    data = await read_json_object(request)
    try:
        ev = state.store.create_event(request.match_info["calendar_id"], data)
    except NotFound:
        raise admin_error(404, "no such calendar") from None
    except InvalidEvent as exc:
        raise admin_error(400, str(exc)) from None
    state.changed()
    return web.json_response(
        event_json(ev, state.store.user(ev.user_id), state.base_url, Presentation()), status=201
    )


async def update_event(request: web.Request) -> web.Response:
    state = _state(request)
    data = await read_json_object(request)
    try:
        ev, item_id = state.store.update_event(request.match_info["event_id"], data)
    except NotFound:
        raise admin_error(404, "no such event") from None
    except InvalidEvent as exc:
        raise admin_error(400, str(exc)) from None
    state.changed()
    body = event_json(ev, state.store.user(ev.user_id), state.base_url, Presentation())
    body["id"] = item_id
    return web.json_response(body)


async def delete_event(request: web.Request) -> web.Response:
    state = _state(request)
    try:
        state.store.delete_event(request.match_info["event_id"])
    except NotFound:
        raise admin_error(404, "no such event") from None
    state.changed()
    return web.Response(status=204)


async def expire_tokens(request: web.Request) -> web.Response:
    state = _state(request)
    data = await read_json_object(request)
    kind = data.get("kind", "all")
    if kind not in ("access", "refresh", "code", "all"):
        raise admin_error(400, "kind must be access, refresh, code or all")
    user_id = _user(request, str(data["user"])).id if data.get("user") else None
    count = state.identity.expire(kind, user_id, state.clock.now())
    state.changed()
    return web.json_response({"expired": count})


async def require_interaction(request: web.Request) -> web.Response:
    """Until the user signs in again, refreshes answer as when Entra wants MFA or consent."""
    state = _state(request)
    user = _user(request, request.match_info["user"])
    data = await read_json_object(request) if request.can_read_body else {}
    code = data.get("code", 50076)
    if code not in (50076, 50079, 65001):
        raise admin_error(400, "code must be 50076, 50079 or 65001")
    error = data.get("error") or ("interaction_required" if code == 50079 else "invalid_grant")
    if error not in ("invalid_grant", "interaction_required"):
        raise admin_error(400, "error must be invalid_grant or interaction_required")
    suberror = data.get("suberror", "consent_required" if code == 65001 else "basic_action")
    state.identity.interaction_required[user.id] = (str(error), int(code), suberror)
    return web.json_response(
        {"user": user.user_principal_name, "error": error, "code": code, "suberror": suberror}
    )


async def revoke_grants(request: web.Request) -> web.Response:
    state = _state(request)
    data = await read_json_object(request)
    user = _user(request, _text(data, "user"))
    client_id = data.get("client_id")
    revoked = state.identity.revoke(user.id, client_id if isinstance(client_id, str) else None)
    removed = 0
    if data.get("remove_subscriptions", True):
        clients = {g.client_id for g in revoked}
        for sub in live_subscriptions(state):
            if sub.user_id == user.id and sub.client_id in clients:
                send_lifecycle(state, sub, "subscriptionRemoved")
                removed += 1
    state.changed()
    return web.json_response({"revoked": len(revoked), "subscriptions_removed": removed})


def _settings_json(state: MicrosoftState) -> dict[str, Any]:
    return {
        "max_subscription_minutes": state.settings.max_subscription_seconds / 60,
        "max_subscription_seconds": state.settings.max_subscription_seconds,
        "validation_timeout_seconds": state.settings.validation_timeout_seconds,
        "access_token_ttl": state.identity.access_token_ttl,
        "mailbox_concurrency_limit": state.settings.mailbox_concurrency_limit,
        "mailbox_requests_per_10_minutes": state.settings.mailbox_requests_per_10_minutes,
        "notification_batch_seconds": state.settings.notification_batch_seconds,
        "change_log_limit": state.store.log_limit,
        "delta_quirks": state.settings.delta_quirks,
    }


async def read_settings(request: web.Request) -> web.Response:
    return web.json_response(_settings_json(_state(request)))


def _positive(data: dict[str, Any], key: str) -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise admin_error(400, f"{key} must be a positive number")
    return float(value)


async def change_settings(request: web.Request) -> web.Response:
    state = _state(request)
    data = await read_json_object(request)
    if "max_subscription_minutes" in data:
        state.settings.max_subscription_seconds = _positive(data, "max_subscription_minutes") * 60
    if "max_subscription_seconds" in data:
        state.settings.max_subscription_seconds = _positive(data, "max_subscription_seconds")
    if "validation_timeout_seconds" in data:
        state.settings.validation_timeout_seconds = _positive(data, "validation_timeout_seconds")
    if "access_token_ttl" in data:
        state.identity.access_token_ttl = int(_positive(data, "access_token_ttl"))
    if "delta_quirks" in data:
        state.settings.delta_quirks = bool(data["delta_quirks"])
    if "change_log_limit" in data:
        state.store.log_limit = max(2, int(_positive(data, "change_log_limit")))
    if "notification_batch_seconds" in data:
        batch = data["notification_batch_seconds"]
        if isinstance(batch, bool) or not isinstance(batch, int | float) or batch < 0:
            raise admin_error(400, "notification_batch_seconds must be a number >= 0")
        state.settings.notification_batch_seconds = float(batch)
    for limit in ("mailbox_concurrency_limit", "mailbox_requests_per_10_minutes"):
        if limit in data:
            setattr(state.settings, limit, None if data[limit] is None else int(_positive(data, limit)))
    state.changed()
    return web.json_response(_settings_json(state))


async def list_subscriptions(request: web.Request) -> web.Response:
    state = _state(request)
    return web.json_response([subscription_json(state, s) for s in live_subscriptions(state)])


async def trigger_lifecycle(request: web.Request) -> web.Response:
    state = _state(request)
    sub = state.subscriptions.get(request.match_info["subscription_id"])
    if sub is None:
        raise admin_error(404, "no such subscription")
    event = (await read_json_object(request)).get("lifecycleEvent")
    if event not in LIFECYCLE_EVENTS:
        raise admin_error(400, f"lifecycleEvent must be one of {', '.join(LIFECYCLE_EVENTS)}")
    if not send_lifecycle(state, sub, str(event)) and event != "subscriptionRemoved":
        raise admin_error(409, "the subscription has no lifecycleNotificationUrl")
    return web.json_response({"sent": event}, status=202)


async def expire_delta_tokens(request: web.Request) -> web.Response:
    state = _state(request)
    data = await read_json_object(request) if request.can_read_body else {}
    cals = list(state.store.calendars.values())
    if data.get("calendar_id"):
        cals = [c for c in cals if c.id == data["calendar_id"]]
        if not cals:
            raise admin_error(404, "no such calendar")
    state.store.seq += 1
    for cal in cals:
        cal.min_valid_seq = state.store.seq
    state.changed()
    return web.json_response({"calendars": len(cals)})


async def drain_notifications(request: web.Request) -> web.Response:
    state = _state(request)
    flush_batches(state)
    await state.dispatcher.drain()
    return web.Response(status=204)
