"""Customer webhooks (ARCHITECTURE §9): the contract shared by the API (endpoints, deliveries),
the producers of public events and the dispatcher that delivers them.

Public event types
------------------
:data:`EVENT_TYPES` (plus ``ping``, sent only by ``POST /v1/webhook_endpoints/{id}/test``). An
endpoint's ``enabled_events`` lists some of them, or is ``["*"]``.

Payload (Standard Webhooks, standardwebhooks.com): the body is ``{"type", "timestamp", "data"}``;
``data`` is ``{"object": <the object as the REST API shows it>, "previous": {...} (connection.updated
only: the changed fields' old values), "updated_at": <the object's updated_at>, "sequence": <per
connection, increasing>}``; calendar, event and sync failure objects carry their ``connection_id``.

Collections
-----------
``webhook_endpoints`` (ids ``we_``)::

    {_id, application_id, url, description, enabled_events: [str], disabled: bool,
     disabled_reason: str | None ("endpoint_gone" on a 410, "failing" after 5 days of failures,
     None when disabled by the customer), secrets: [{secret: <TokenCipher-sealed "whsec_...">,
     created_at, expires_at: None | datetime}] (the newest first; an old one lives 24 h after a
     rotation and both sign), failing_since: datetime | None, created_at, updated_at}

``webhook_deliveries`` (ids ``wd_``; the ``webhook-id`` header is ``msg_`` + the part after
``wd_`` and never changes across retries)::

    {_id, application_id, endpoint_id, event_type, connection_id | None, payload: {type,
     timestamp, data} (the exact JSON body, fixed at creation), source_id (the Kafka message id +
     "/" + index: unique with endpoint_id, so a re-consumed message creates nothing twice),
     status: "pending" | "succeeded" | "failed" (gave up) | "cancelled" (endpoint deleted),
     attempts: int, next_attempt_at: datetime | None, last_attempt_at,
     last_response_status: int | None, last_error: str | None,
     created_at, updated_at}

``next_attempt_at`` is both the schedule and the lease: the dispatcher that sends a delivery
first moves it a lease ahead (longer than an attempt can take), so a ``kill -9`` mid-delivery
leaves a delivery that falls due again when the lease runs out and is sent again (at least
once, same ``webhook-id``). ``webhook_sequences`` holds ``{_id: connection_id, last: int}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: Every public event type a customer can subscribe to, in documentation order.
EVENT_TYPES: tuple[str, ...] = (
    "connection.created",
    "connection.updated",
    "connection.reauth_required",
    "connection.disconnected",
    "calendar.created",
    "calendar.updated",
    "calendar.removed",
    "event.created",
    "event.updated",
    "event.deleted",
    "sync.failed",
)
#: The type of the test delivery (``POST /v1/webhook_endpoints/{id}/test``); not subscribable.
PING = "ping"
#: ``enabled_events: ["*"]``: every type of :data:`EVENT_TYPES`.
ALL = "*"


@dataclass(frozen=True)
class PublicEvent:
    """One event to tell one application about (before it is fanned out to its endpoints)."""

    type: str  # one of EVENT_TYPES
    application_id: str
    connection_id: str | None
    occurred_at: datetime
    #: the object as the REST API shows it (connection, calendar, event) or the sync failure
    object: dict[str, Any]
    #: connection.updated: the old values of the fields that changed
    previous: dict[str, Any] | None = None
    #: the object's updated_at (a receiver drops what is older than what it holds)
    updated_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)
