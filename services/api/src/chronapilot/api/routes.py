"""The route table: every public operation, with the models the OpenAPI document shows."""

from __future__ import annotations

from aiohttp import web

from chronapilot.api import (
    connections,
    consent,
    event_writes,
    free_busy,
    mirror,
    users,
    webhook_deliveries,
    webhook_endpoints,
)
from chronapilot.api.errors import Handler
from chronapilot.api.openapi import Operation, openapi_json
from chronapilot.api.reference import docs_asset, docs_page
from chronapilot.api.schemas import (
    CalendarList,
    CalendarObject,
    ConnectionList,
    ConnectionObject,
    ConnectionStartObject,
    CreateUserBody,
    EventList,
    EventObject,
    ExpandQuery,
    FreeBusyObject,
    FreeBusyQuery,
    ListCalendarsQuery,
    ListConnectionsQuery,
    ListEventsQuery,
    ListQuery,
    ListUsersQuery,
    StartConnectionBody,
    UserList,
    UserObject,
)
from chronapilot.api.views import render_page
from chronapilot.api.webhook_schemas import (
    CreateWebhookEndpointBody,
    ListWebhookDeliveriesQuery,
    UpdateWebhookEndpointBody,
    WebhookDeliveryList,
    WebhookDeliveryObject,
    WebhookEndpointList,
    WebhookEndpointObject,
    WebhookEndpointWithSecretObject,
)
from chronapilot.common.occurrences import MAX_OCCURRENCES, MAX_WINDOW
from chronapilot.common.settings import WebhookSettings

_WEBHOOK_DEFAULTS = {name: field.default for name, field in WebhookSettings.model_fields.items()}

OPERATIONS = [
    Operation(
        "POST",
        "/v1/users",
        users.create_user,
        "createUser",
        "Create a user",
        "Users",
        UserObject,
        status=201,
        body=CreateUserBody,
    ),
    Operation(
        "GET",
        "/v1/users",
        users.list_users,
        "listUsers",
        "List users",
        "Users",
        UserList,
        query=ListUsersQuery,
    ),
    Operation(
        "GET",
        "/v1/users/{id}",
        users.get_user,
        "getUser",
        "Retrieve a user",
        "Users",
        UserObject,
        path_id="usr",
    ),
    Operation(
        "GET",
        "/v1/users/{id}/free_busy",
        free_busy.get_free_busy,
        "getUserFreeBusy",
        "Retrieve a user's free/busy time",
        "Users",
        FreeBusyObject,
        query=FreeBusyQuery,
        path_id="usr",
        description="The busy intervals of every calendar of the user's `active` connections "
        "(or of `calendar_ids[]`), merged, with each calendar's own intervals and how fresh its "
        "mirror is. Occurrences of recurring series count; cancelled events, events the "
        'calendar\'s owner declined and transparent ones (Google "Available", iCalendar '
        "`TRANSP:TRANSPARENT`, Microsoft `showAs` `free` or `workingElsewhere`) do not; "
        "tentative events and unanswered invitations do. All-day events block their days from "
        "midnight to midnight in `timezone`, else in the calendar's time zone, else in UTC; "
        "floating times (CalDAV without TZID) block their wall times in that same zone. "
        f"The window is at most {MAX_WINDOW.days} days. A calendar of another user answers "
        "400, of another application 404. 400 `window_too_dense` when a calendar holds more "
        f"than {MAX_OCCURRENCES:,} occurrences in the window (ask for a shorter one) or a rule "
        "too dense to expand.",
    ),
    Operation(
        "POST",
        "/v1/connections/start",
        consent.start_connection,
        "startConnection",
        "Start a connection",
        "Connections",
        ConnectionStartObject,
        status=201,
        body=StartConnectionBody,
        errors=(404,),
        description="Returns a `redirect_url` to send the end-user to. After consent "
        "ChronaPilot redirects to your `return_url` with `connection_id` and `state`, or "
        "with `error` (`access_denied`, `provider_error`), `error_description` and `state`.",
    ),
    Operation(
        "GET",
        "/v1/connections",
        connections.list_connections,
        "listConnections",
        "List connections",
        "Connections",
        ConnectionList,
        query=ListConnectionsQuery,
    ),
    Operation(
        "GET",
        "/v1/connections/{id}",
        connections.get_connection,
        "getConnection",
        "Retrieve a connection",
        "Connections",
        ConnectionObject,
        query=ExpandQuery,
        path_id="con",
    ),
    Operation(
        "DELETE",
        "/v1/connections/{id}",
        connections.delete_connection,
        "deleteConnection",
        "Disconnect a connection",
        "Connections",
        ConnectionObject,
        path_id="con",
        description="Status becomes `disconnected` at once. Tokens are revoked with the "
        "provider, webhook subscriptions torn down and syncing stopped by the services "
        "that own them. Mirrored events remain. Repeating the call changes nothing.",
    ),
    Operation(
        "POST",
        "/v1/connections/{id}/refresh",
        connections.refresh_connection,
        "refreshConnection",
        "Force a full resync",
        "Connections",
        ConnectionObject,
        status=202,
        path_id="con",
        errors=(409, 429),
        description="Rate-limited to one per minute per connection (429 with "
        "`Retry-After`); 409 on a disconnected connection.",
    ),
    Operation(
        "GET",
        "/v1/calendars",
        mirror.list_calendars,
        "listCalendars",
        "List calendars",
        "Mirror",
        CalendarList,
        query=ListCalendarsQuery,
    ),
    Operation(
        "GET",
        "/v1/calendars/{id}",
        mirror.get_calendar,
        "getCalendar",
        "Retrieve a calendar",
        "Mirror",
        CalendarObject,
        path_id="cal",
    ),
    Operation(
        "GET",
        "/v1/events",
        mirror.list_events,
        "listEvents",
        "List events",
        "Mirror",
        EventList,
        query=ListEventsQuery,
        errors=(404,),
        description="Recurring series are returned as their master (with `recurrence`) "
        "plus exceptions (with `recurring_event_id` and `original_start`); `start`/`end` "
        "select events and series overlapping the window. Deleted events only with "
        "`include_deleted=true`.\n\n"
        "With `expand_recurring=true` (and `start`, `end`: a window of at most "
        f"{MAX_WINDOW.days} days) the list holds `occurrence` objects instead: every instance "
        "overlapping the window, in start order then by id. A series recurs in its own time "
        "zone (09:00 Europe/Berlin stays 09:00 across DST); floating times (CalDAV without "
        "TZID) are read as UTC; all-day instances are placed at midnight UTC of their dates. "
        "RDATEs are included; EXDATEs and cancelled instances left out; an exception appears "
        "at its own time, in place of the instance it replaces, and keeps that instance's "
        "`id`. Microsoft's instances are listed as mirrored (Graph expands its series). "
        "400 when `start` or `end` is missing, `start` is not before `end`, the window is "
        f"longer than {MAX_WINDOW.days} days, `updated_since` or `include_deleted` is given, "
        "a cursor names no occurrence of the calendar (one that left the window since the page "
        "that gave it, cancelled, deleted or moved, resumes where it was), or the window holds "
        f"more than {MAX_OCCURRENCES:,} occurrences or a rule too dense to expand "
        "(`window_too_dense`).",
    ),
    Operation(
        "GET",
        "/v1/events/{id}",
        mirror.get_event,
        "getEvent",
        "Retrieve an event",
        "Mirror",
        EventObject,
        path_id="evt",
    ),
    Operation(
        "POST",
        "/v1/events",
        event_writes.create_event,
        "createEvent",
        "Create an event",
        "Write-back",
        EventObject,
        status=201,
        body=event_writes.CreateEventBody,
        errors=(403, 404, 409, 503),
        description="Creates the event at the provider (Google `events.insert`, Graph `POST "
        "…/events`, CalDAV `PUT`) and answers it as the provider stored it, mirrored. Send an "
        "`Idempotency-Key`: a retry with it never creates a second event at the provider, "
        "whatever happened to the first attempt. 403 `scope_insufficient` for a connection "
        "linked with `calendar.read` only, 403 `calendar_read_only`; 409 for a connection that "
        "is not active; 503 with `Retry-After` when the provider throttles or fails (nothing "
        "was written).",
    ),
    Operation(
        "PATCH",
        "/v1/events/{id}",
        event_writes.update_event,
        "updateEvent",
        "Update an event",
        "Write-back",
        EventObject,
        body=event_writes.UpdateEventBody,
        path_id="evt",
        errors=(403, 404, 409, 412, 503),
        conditional=True,
        description="Changes the given fields at the provider and answers the event as it "
        "stored it. `If-Match: <etag>` makes it conditional (412 when the event changed at the "
        "provider since). With `original_start` only that occurrence of a series changes (an "
        "exception at the provider; the answer is the exception).",
    ),
    Operation(
        "DELETE",
        "/v1/events/{id}",
        event_writes.delete_event,
        "deleteEvent",
        "Delete an event",
        "Write-back",
        EventObject,
        query=event_writes.DeleteEventQuery,
        path_id="evt",
        errors=(403, 404, 409, 412, 503),
        conditional=True,
        description="Deletes the event at the provider (`If-Match` as for updates) and answers "
        "it as mirrored, `deleted: true`. With `original_start` only that occurrence is "
        "cancelled (the mirror learns it with the calendar's next sync, requested at once).",
    ),
    Operation(
        "POST",
        "/v1/webhook_endpoints",
        webhook_endpoints.create_webhook_endpoint,
        "createWebhookEndpoint",
        "Create a webhook endpoint",
        "Webhooks",
        WebhookEndpointWithSecretObject,
        status=201,
        body=CreateWebhookEndpointBody,
        description="Registers a URL to receive the event types of `enabled_events` (see the "
        "`webhooks` section), signed per Standard Webhooks. The answer holds the signing "
        "`secret`, shown only here (and by `rotate_secret`). An application holds at most "
        f"{_WEBHOOK_DEFAULTS['webhook_max_endpoints']} endpoints by default (400 "
        "`webhook_endpoint_limit` past it). 400 `url_not_public` when the URL's host is or "
        "resolves to a loopback, private, link-local, reserved, multicast or unspecified "
        "address, `url_unresolvable` when it does not resolve.",
    ),
    Operation(
        "GET",
        "/v1/webhook_endpoints",
        webhook_endpoints.list_webhook_endpoints,
        "listWebhookEndpoints",
        "List webhook endpoints",
        "Webhooks",
        WebhookEndpointList,
        query=ListQuery,
    ),
    Operation(
        "GET",
        "/v1/webhook_endpoints/{id}",
        webhook_endpoints.get_webhook_endpoint,
        "getWebhookEndpoint",
        "Retrieve a webhook endpoint",
        "Webhooks",
        WebhookEndpointObject,
        path_id="we",
        description="The signing secret is never shown again; `rotate_secret` makes a new one.",
    ),
    Operation(
        "PATCH",
        "/v1/webhook_endpoints/{id}",
        webhook_endpoints.update_webhook_endpoint,
        "updateWebhookEndpoint",
        "Update a webhook endpoint",
        "Webhooks",
        WebhookEndpointObject,
        body=UpdateWebhookEndpointBody,
        path_id="we",
        description="Changes the fields given. `disabled: false` re-enables an endpoint "
        "ChronaPilot disabled (`disabled_reason`); the URL is checked as at creation.",
    ),
    Operation(
        "DELETE",
        "/v1/webhook_endpoints/{id}",
        webhook_endpoints.delete_webhook_endpoint,
        "deleteWebhookEndpoint",
        "Delete a webhook endpoint",
        "Webhooks",
        WebhookEndpointObject,
        path_id="we",
        description="Answers the endpoint as it was. Its pending deliveries are `cancelled`; "
        "nothing more is sent to it. Once deleted it is not found (404).",
    ),
    Operation(
        "POST",
        "/v1/webhook_endpoints/{id}/rotate_secret",
        webhook_endpoints.rotate_webhook_endpoint_secret,
        "rotateWebhookEndpointSecret",
        "Rotate a webhook endpoint's signing secret",
        "Webhooks",
        WebhookEndpointWithSecretObject,
        path_id="we",
        description="The answer holds the new `secret`. The previous one keeps signing "
        "alongside it (two signatures in `webhook-signature`) for "
        f"{_WEBHOOK_DEFAULTS['webhook_secret_overlap_s'] / 3600:g} hours by default, so "
        "your receiver can switch without losing a delivery; secrets older than that stop.",
    ),
    Operation(
        "POST",
        "/v1/webhook_endpoints/{id}/test",
        webhook_deliveries.ping_webhook_endpoint,
        "testWebhookEndpoint",
        "Send a test event to a webhook endpoint",
        "Webhooks",
        WebhookDeliveryObject,
        status=202,
        path_id="we",
        errors=(409,),
        description="Queues a `ping` delivery, sent at once and retried like any other; follow "
        "it in the endpoint's deliveries. 409 on a disabled endpoint.",
    ),
    Operation(
        "GET",
        "/v1/webhook_endpoints/{id}/deliveries",
        webhook_deliveries.list_webhook_deliveries,
        "listWebhookDeliveries",
        "List a webhook endpoint's deliveries",
        "Webhooks",
        WebhookDeliveryList,
        query=ListWebhookDeliveriesQuery,
        path_id="we",
    ),
    Operation(
        "POST",
        "/v1/webhook_deliveries/{id}/retry",
        webhook_deliveries.retry_webhook_delivery,
        "retryWebhookDelivery",
        "Retry a webhook delivery",
        "Webhooks",
        WebhookDeliveryObject,
        status=202,
        path_id="wd",
        errors=(409,),
        description="Sends it again now (same `webhook-id`, same body), whatever it came to; "
        "a failed delivery is retried on the usual schedule from there. 409 once cancelled "
        "(its endpoint was deleted).",
    ),
]


async def demo_return(request: web.Request) -> web.Response:
    return render_page("demo_return.html", params=sorted(request.query.items()))


def _method_not_allowed(methods: set[str]) -> Handler:
    async def refuse(request: web.Request) -> web.StreamResponse:
        raise web.HTTPMethodNotAllowed(request.method, methods)

    return refuse


def add_routes(app: web.Application, *, development: bool) -> None:
    methods: dict[str, set[str]] = {}
    for op in OPERATIONS:
        app.router.add_route(op.method, op.path, op.handler)
        methods.setdefault(op.path, set()).add(op.method)
    # Any other method on a path answers 405 with the methods of that path only: without it,
    # aiohttp would try the next route (`/v1/connections/{id}` for `/v1/connections/start`)
    # and answer with, or list in `Allow`, the methods of another operation.
    for path, allowed in methods.items():
        app.router.add_route("*", path, _method_not_allowed(allowed))
    app.router.add_get("/v1/openapi.json", openapi_json)
    app.router.add_get("/docs", docs_page)
    app.router.add_get("/docs/assets/{name}", docs_asset)
    app.router.add_get("/oauth/{provider}/callback", consent.oauth_callback)
    app.router.add_get("/connect/{provider}/{state}", consent.credential_page)
    app.router.add_post("/connect/{provider}/{state}", consent.submit_credentials)
    if development:
        app.router.add_get("/demo/return", demo_return)
