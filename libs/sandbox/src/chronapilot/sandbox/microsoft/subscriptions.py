"""`/v1.0/subscriptions`: create (after the validation handshake), list, get, renew by PATCH,
delete, reauthorize.

The handshake POSTs `notificationUrl?validationToken=<url-encoded token>` (and the same to
`lifecycleNotificationUrl`) with `Content-Type: text/plain`; only a `200` with a `text/plain`
body equal to the decoded token, within the validation timeout (10 s), lets creation succeed.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
from aiohttp import web

from .context import (
    READ_SCOPES,
    GraphFailure,
    access_token_of,
    context_url,
    current_user,
    fail,
    json_response,
    read_body,
    require_scope,
    state_of,
)
from .notifications import live_subscriptions
from .state import MicrosoftState, Subscription
from .store import NotFound
from .times import InvalidTime, format_stamp, parse_instant

CHANGE_TYPES = ("created", "updated", "deleted")
NOT_OK = (
    "Subscription validation request failed. Notification endpoint must respond with 200 OK to "
    "validation request."
)
NOT_ECHOED = (
    "Subscription validation request failed. Response must exactly match validationToken query parameter."
)
TIMED_OUT = "Subscription validation request timed out."


def routes() -> list[web.RouteDef]:
    one = "/v1.0/subscriptions/{subscription_id}"
    return [
        web.post("/v1.0/subscriptions", create_subscription),
        web.get("/v1.0/subscriptions", list_subscriptions),
        web.get(one, get_subscription),
        web.patch(one, renew_subscription),
        web.delete(one, delete_subscription),
        web.post(one + "/reauthorize", reauthorize_subscription),
    ]


def subscription_json(state: MicrosoftState, sub: Subscription) -> dict[str, Any]:
    return {
        "id": sub.id,
        "resource": sub.resource,
        "applicationId": sub.client_id,
        "changeType": ",".join(sub.change_types),
        "clientState": sub.client_state,
        "notificationUrl": sub.notification_url,
        "notificationQueryOptions": None,
        "lifecycleNotificationUrl": sub.lifecycle_notification_url,
        "expirationDateTime": format_stamp(datetime.fromtimestamp(sub.expiration, UTC)),
        "creatorId": sub.user_id,
        "includeResourceData": sub.include_resource_data,
        "latestSupportedTlsVersion": sub.latest_supported_tls_version,
        "encryptionCertificate": None,
        "encryptionCertificateId": None,
        "notificationUrlAppId": sub.notification_url_app_id,
    }


def _resolve_resource(state: MicrosoftState, user_id: str, resource: str) -> str | None:
    """The calendar a resource path covers (None: all of the user's calendars)."""
    parts = [p for p in resource.strip().strip("/").split("/") if p]
    lowered = [p.lower() for p in parts]
    user = state.store.user(user_id)
    if lowered[:1] == ["users"] and len(parts) >= 2:
        if parts[1].lower() not in (user.id.lower(), user.user_principal_name.lower()):
            raise fail(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        lowered, parts = ["me", *lowered[2:]], ["me", *parts[2:]]
    if lowered == ["me", "events"]:
        return None
    if lowered == ["me", "calendar", "events"]:
        return state.store.default_calendar(user_id).id
    if len(lowered) == 4 and lowered[:2] == ["me", "calendars"] and lowered[3] == "events":
        try:
            return state.store.calendar(parts[2], user_id).id
        except NotFound:
            raise fail(404) from None
    raise fail(400, "InvalidRequest", f"Resource '{resource}' is not supported by this sandbox.")


def _expiration(state: MicrosoftState, raw: Any) -> float:
    if not isinstance(raw, str) or not raw:
        raise fail(400, "InvalidRequest", "expirationDateTime is a required property.")
    try:
        when = parse_instant(raw).timestamp()
    except InvalidTime:
        raise fail(400, "InvalidRequest", f"Cannot convert '{raw}' to DateTimeOffset.") from None
    now = state.clock.now()
    if when <= now:
        raise fail(400, "InvalidRequest", "Subscription expiration date time must be in the future.")
    limit = state.settings.max_subscription_seconds
    if when - now > limit:
        raise fail(
            400,
            "ExtensionError",
            f"Subscription expiration can only be {limit / 60:g} minutes in the future.",
        )
    return when


async def _handshake(state: MicrosoftState, url: str) -> None:
    """Run the validation handshake against `url`; raise a 400 Graph error when it fails."""
    token = f"Validation: Testing client application reachability for subscription Request-Id: {uuid.uuid4()}"
    separator = "&" if urlsplit(url).query else "?"
    target = f"{url}{separator}validationToken={quote(token, safe='')}"
    timeout = aiohttp.ClientTimeout(total=state.settings.validation_timeout_seconds)
    try:
        async with state.dispatcher.session.post(
            target, data=b"", headers={"Content-Type": "text/plain; charset=utf-8"}, timeout=timeout
        ) as response:
            text = await response.text()
            content_type = response.content_type
            status = response.status
    except TimeoutError:
        raise fail(400, "InvalidRequest", TIMED_OUT) from None
    except aiohttp.ClientError:
        raise fail(400, "ValidationError", NOT_OK) from None
    if status != 200:
        raise fail(400, "ValidationError", NOT_OK)
    if content_type != "text/plain" or text != token:
        raise fail(400, "ValidationError", NOT_ECHOED)


def _check_url(raw: Any, name: str) -> str:
    if not isinstance(raw, str) or urlsplit(raw).scheme not in ("http", "https") or not urlsplit(raw).netloc:
        raise fail(400, "InvalidRequest", f"{name} must be an absolute URL.")
    return raw


async def create_subscription(request: web.Request) -> web.Response:
    require_scope(request, READ_SCOPES)
    state = state_of(request)
    user = current_user(request)
    body = await read_body(request)
    change_types = [c.strip() for c in str(body.get("changeType") or "").split(",") if c.strip()]
    if not change_types or any(c not in CHANGE_TYPES for c in change_types):
        raise fail(
            400, "InvalidRequest", "changeType must be a comma-separated list of created, updated, deleted."
        )
    notification_url = _check_url(body.get("notificationUrl"), "notificationUrl")
    lifecycle_url = body.get("lifecycleNotificationUrl")
    if lifecycle_url is not None:
        lifecycle_url = _check_url(lifecycle_url, "lifecycleNotificationUrl")
    resource = body.get("resource")
    if not isinstance(resource, str) or not resource:
        raise fail(400, "InvalidRequest", "resource is a required property.")
    client_state = body.get("clientState")
    if client_state is not None and (not isinstance(client_state, str) or len(client_state) > 128):
        raise fail(400, "InvalidRequest", "clientState must be a string of at most 128 characters.")
    if body.get("includeResourceData"):
        raise fail(
            400,
            "InvalidRequest",
            "includeResourceData requires an encryptionCertificate (not supported by this sandbox).",
        )
    calendar_id = _resolve_resource(state, user.id, resource)
    expiration = _expiration(state, body.get("expirationDateTime"))
    checks = [_handshake(state, notification_url)]
    if lifecycle_url:
        checks.append(_handshake(state, lifecycle_url))
    await _all_or_first_failure(checks)
    sub = Subscription(
        id=str(uuid.uuid4()),
        user_id=user.id,
        client_id=access_token_of(request).client_id,
        resource=resource,
        calendar_id=calendar_id,
        change_types=change_types,
        notification_url=notification_url,
        lifecycle_notification_url=lifecycle_url,
        client_state=client_state,
        expiration=expiration,
        latest_supported_tls_version=str(body.get("latestSupportedTlsVersion") or "v1_2"),
        notification_url_app_id=body.get("notificationUrlAppId"),
        authorized_until=access_token_of(request).expires_at,
    )
    state.subscriptions[sub.id] = sub
    state.changed()
    data = {"@odata.context": context_url(state, "subscriptions/$entity"), **subscription_json(state, sub)}
    return json_response(data, status=201)


async def _all_or_first_failure(checks: list[Any]) -> None:
    results = await asyncio.gather(*checks, return_exceptions=True)
    for result in results:
        if isinstance(result, GraphFailure):
            raise result
        if isinstance(result, BaseException):
            raise result


def _subscription(request: web.Request) -> Subscription:
    state = state_of(request)
    live_subscriptions(state)
    sub = state.subscriptions.get(request.match_info["subscription_id"])
    token = access_token_of(request)
    if sub is None or sub.user_id != token.user_id or sub.client_id != token.client_id:
        raise fail(404)
    return sub


async def list_subscriptions(request: web.Request) -> web.Response:
    state = state_of(request)
    token = access_token_of(request)
    subs = [
        s for s in live_subscriptions(state) if s.user_id == token.user_id and s.client_id == token.client_id
    ]
    return json_response(
        {
            "@odata.context": context_url(state, "subscriptions"),
            "value": [subscription_json(state, s) for s in subs],
        }
    )


async def get_subscription(request: web.Request) -> web.Response:
    state = state_of(request)
    sub = _subscription(request)
    return json_response(
        {"@odata.context": context_url(state, "subscriptions/$entity"), **subscription_json(state, sub)}
    )


async def renew_subscription(request: web.Request) -> web.Response:
    state = state_of(request)
    sub = _subscription(request)
    body = await read_body(request)
    if (
        "lifecycleNotificationUrl" in body
        and body["lifecycleNotificationUrl"] != sub.lifecycle_notification_url
    ):
        raise fail(
            400,
            "InvalidRequest",
            "lifecycleNotificationUrl can only be set when the subscription is created.",
        )
    expiration = (
        _expiration(state, body["expirationDateTime"]) if "expirationDateTime" in body else sub.expiration
    )
    if "notificationUrl" in body and body["notificationUrl"] != sub.notification_url:
        url = _check_url(body["notificationUrl"], "notificationUrl")
        await _handshake(state, url)
        sub.notification_url = url
    sub.expiration = expiration
    _authorize(sub, request)
    state.changed()
    return json_response(
        {"@odata.context": context_url(state, "subscriptions/$entity"), **subscription_json(state, sub)}
    )


async def delete_subscription(request: web.Request) -> web.Response:
    state = state_of(request)
    sub = _subscription(request)
    del state.subscriptions[sub.id]
    state.changed()
    return web.Response(status=204)


async def reauthorize_subscription(request: web.Request) -> web.Response:
    _authorize(_subscription(request), request)
    state_of(request).changed()
    return web.Response(status=204)


def _authorize(sub: Subscription, request: web.Request) -> None:
    """The caller's access token now authorizes the subscription (re-arms reauthorizationRequired)."""
    sub.authorized_until = access_token_of(request).expires_at
    sub.reauthorization_sent = False
