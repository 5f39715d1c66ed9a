"""The shapes of customer webhooks (ARCHITECTURE §9): the bodies and objects of
``/v1/webhook_endpoints`` and ``/v1/webhook_deliveries``, and the payloads the dispatcher sends
(:data:`WEBHOOKS`, the OpenAPI document's ``webhooks`` section).

The payload models describe what :mod:`chronapilot.common.webhooks` defines and
:mod:`chronapilot.common.webhooks.public` fills in: ``data.object`` is the connection, calendar
or event exactly as the REST API shows it, or a ``sync_failure``, or for ``ping`` a ``ping``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, WithJsonSchema, create_model

from chronapilot.api.openapi import Webhook
from chronapilot.api.schemas import (
    CalendarObject,
    ConnectionObject,
    EventObject,
    ListObject,
    ListQuery,
    Strict,
    not_null,
)
from chronapilot.common.bus.catalogue import SyncKind, SyncReason
from chronapilot.common.webhooks import ALL, EVENT_TYPES, PING
from chronapilot.common.webhooks.addresses import MAX_URL_LENGTH

MAX_DESCRIPTION = 500
DeliveryStatusName = Literal["pending", "succeeded", "failed", "cancelled"]


def _event_types(values: list[str]) -> list[str]:
    """Known, subscribable types, each once, in the order given; ``*`` alone stands for all."""
    for value in values:
        if value == PING:
            raise ValueError(
                "ping is not subscribable; POST /v1/webhook_endpoints/{id}/test sends one to an endpoint"
            )
        if value != ALL and value not in EVENT_TYPES:
            raise ValueError(
                f"unknown event type {value[:100]!r} (expected one of {', '.join(EVENT_TYPES)} or *)"
            )
    return [ALL] if ALL in values else list(dict.fromkeys(values))


EventTypeName = Annotated[
    str, WithJsonSchema({"type": "string", "enum": [*EVENT_TYPES, ALL]}, mode="validation")
]
EnabledEvents = Annotated[
    list[EventTypeName], Field(min_length=1, max_length=50), AfterValidator(_event_types)
]
EndpointUrl = Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL_LENGTH)]
Description = Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION)]

URL_DESCRIPTION = (
    "Where deliveries are POSTed: an absolute `https` URL without credentials, at most "
    f"{MAX_URL_LENGTH} characters, whose host is (and resolves only to) public addresses: never "
    "loopback, private, link-local, reserved, multicast or unspecified ones (in development, "
    "`http` and local addresses are allowed for local receivers)."
)
EVENTS_DESCRIPTION = (
    'The event types to receive (see the `webhooks` section), or `["*"]` for all of them, '
    "including types added later. `ping` is not subscribable."
)


# -- requests ---------------------------------------------------------------------------------


class CreateWebhookEndpointBody(Strict):
    url: EndpointUrl = Field(description=URL_DESCRIPTION)
    enabled_events: EnabledEvents = Field(description=EVENTS_DESCRIPTION)
    description: Description | None = Field(default=None, description="Your note about the endpoint.")
    disabled: bool = Field(default=False, description="Create it disabled (nothing is sent to it).")


class UpdateWebhookEndpointBody(Strict):
    """Only the fields given change; re-enabling (`disabled: false`) clears `disabled_reason`."""

    url: EndpointUrl | None = Field(default=None, description=URL_DESCRIPTION, json_schema_extra=not_null)
    enabled_events: EnabledEvents | None = Field(
        default=None, description=EVENTS_DESCRIPTION, json_schema_extra=not_null
    )
    description: Description | None = Field(default=None, description="`null` clears it.")
    disabled: bool | None = Field(
        default=None,
        description="`true` stops deliveries to it; `false` resumes them.",
        json_schema_extra=not_null,
    )


class ListWebhookDeliveriesQuery(ListQuery):
    status: DeliveryStatusName | None = Field(default=None, description="Only deliveries in this status.")


# -- objects ----------------------------------------------------------------------------------


class WebhookEndpointObject(BaseModel):
    """A webhook endpoint."""

    id: str = Field(description="Prefixed `we_`.")
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    url: str
    enabled_events: list[str]
    description: str | None
    disabled: bool
    disabled_reason: Literal["endpoint_gone", "failing"] | None = Field(
        description="Why ChronaPilot disabled it: `endpoint_gone` (it answered 410), `failing` "
        "(every attempt failed for 5 days); null when enabled or disabled by you."
    )
    created_at: datetime
    updated_at: datetime


class WebhookEndpointWithSecretObject(WebhookEndpointObject):
    """A webhook endpoint with its signing secret (shown only when created or rotated)."""

    secret: str = Field(
        description="`whsec_…`: verify `webhook-signature` with it (Standard Webhooks). Shown "
        "only in this answer; store it now."
    )


class WebhookEndpointList(ListObject[WebhookEndpointObject]):
    """A page of webhook endpoints, newest first."""


class WebhookDeliveryObject(BaseModel):
    """One event sent (or to be sent) to one endpoint, with its attempts."""

    id: str = Field(description="Prefixed `wd_`.")
    object: Literal["webhook_delivery"] = "webhook_delivery"
    endpoint_id: str
    event_type: str
    webhook_id: str = Field(description="The `webhook-id` header: the same on every attempt.")
    status: DeliveryStatusName = Field(
        description="`pending` (to be sent, or retried), `succeeded` (a 2xx came back), `failed` "
        "(the retries ran out, or the endpoint is disabled) or `cancelled` (the endpoint was deleted)."
    )
    attempts: int
    last_attempt_at: datetime | None
    last_response_status: int | None = Field(description="The HTTP status of the last answer.")
    last_error: str | None
    next_attempt_at: datetime | None = Field(description="When it is sent next; null unless pending.")
    created_at: datetime
    payload: dict[str, Any] = Field(description="The exact JSON body sent (see the `webhooks` section).")


class WebhookDeliveryList(ListObject[WebhookDeliveryObject]):
    """A page of deliveries, newest first."""


# -- payloads ---------------------------------------------------------------------------------


class SyncFailureErrorObject(BaseModel):
    code: str
    message: str


class SyncFailureObject(BaseModel):
    """A sync that gave up (`sync.failed`)."""

    object: Literal["sync_failure"] = "sync_failure"
    connection_id: str
    calendar_id: str | None = Field(description="The calendar whose own failure failed the sync.")
    mode: SyncKind
    reason: SyncReason = Field(description="What had asked for the sync.")
    error: SyncFailureErrorObject
    retryable: bool = Field(description="Whether a later sync may succeed (it is retried by itself).")
    failed_at: datetime


class PingObject(BaseModel):
    """The object of a test delivery."""

    object: Literal["ping"] = "ping"
    endpoint_id: str


class _Data(BaseModel):
    updated_at: datetime = Field(
        description="The object's `updated_at`: keep the newest you have seen, drop what is older."
    )
    sequence: int = Field(
        description="Increasing per connection (0 for `ping`): deliveries of one connection are "
        "sent in this order."
    )


class ConnectionWebhookData(_Data):
    object: ConnectionObject


class ConnectionUpdatedWebhookData(ConnectionWebhookData):
    previous: dict[str, Any] = Field(
        description="The old values of the fields that changed (`status`, `sync_mode`, `error`)."
    )


class CalendarWebhookData(_Data):
    object: CalendarObject


class EventWebhookData(_Data):
    object: EventObject


class SyncFailedWebhookData(_Data):
    object: SyncFailureObject


class PingWebhookData(_Data):
    object: PingObject


def _data_model(event_type: str) -> type[_Data]:
    if event_type == "connection.updated":
        return ConnectionUpdatedWebhookData
    kind = event_type.split(".", 1)[0]
    models: dict[str, type[_Data]] = {
        "connection": ConnectionWebhookData,
        "calendar": CalendarWebhookData,
        "event": EventWebhookData,
        "sync": SyncFailedWebhookData,
        "ping": PingWebhookData,
    }
    return models[kind]


def _payload_model(event_type: str) -> type[BaseModel]:
    """``{type, timestamp, data}`` of ``event_type`` (``connection.created`` →
    ``ConnectionCreatedWebhook``)."""
    name = "".join(part.capitalize() for part in event_type.replace("_", ".").split(".")) + "Webhook"
    return create_model(
        name,
        __doc__=f"The body of a `{event_type}` delivery.",
        type=(Literal[event_type], Field(description="The event type.")),  # type: ignore[arg-type]
        timestamp=(datetime, Field(description="When it happened.")),
        data=(_data_model(event_type), ...),
    )


_SUMMARIES = {
    "connection.created": "A connection was linked",
    "connection.updated": "A connection's status, sync mode or error changed",
    "connection.reauth_required": "A connection needs the end-user to link it again",
    "connection.disconnected": "A connection was disconnected",
    "calendar.created": "A calendar appeared in a connection",
    "calendar.updated": "A calendar changed",
    "calendar.removed": "A calendar is gone at the provider",
    "event.created": "An event appeared in the mirror",
    "event.updated": "An event changed in the mirror",
    "event.deleted": "An event was deleted at the provider",
    "sync.failed": "A sync gave up",
    PING: "A test delivery (POST /v1/webhook_endpoints/{id}/test)",
}

#: The OpenAPI ``webhooks`` section: every public event type, then ``ping``.
WEBHOOKS = [Webhook(t, _SUMMARIES[t], _payload_model(t)) for t in (*EVENT_TYPES, PING)]
