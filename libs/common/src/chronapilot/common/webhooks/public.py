"""What customers are told: the public events (:data:`~chronapilot.common.webhooks.EVENT_TYPES`)
made from ChronaPilot's internal events.

:func:`public_events` maps one internal envelope to its public events, one per change, each
carrying the object it is about rendered *now* from the store, exactly as the REST API shows it
(:mod:`chronapilot.common.objects`): a receiver that gets an old event late still sees the
current object, and orders by ``updated_at``. The application an event goes to is read from
the stored object, never from the message alone, and an object that belongs to another
connection than the message's is never sent; an object that no longer exists is skipped.

=============================  ==========================================================
internal                       public
=============================  ==========================================================
connection.activated           ``connection.created``; a relink: ``connection.updated``
connection.status_changed      ``connection.updated`` (the changed fields' old values in
                               ``previous``), and ``connection.reauth_required`` when the
                               error became ``reauth_required``
connection.disconnected        ``connection.disconnected``
sync.failed                    ``sync.failed`` (a ``sync_failure`` object)
mirror.events_changed          ``event.created`` / ``event.updated`` / ``event.deleted``
mirror.calendars_changed       ``calendar.created`` / ``calendar.updated`` / ``calendar.removed``
=============================  ==========================================================
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chronapilot.common.bus.catalogue import (
    ConnectionActivated,
    ConnectionDisconnected,
    ConnectionStatusChanged,
    Event,
    MirrorCalendarsChanged,
    MirrorEventsChanged,
    SyncFailed,
    UnknownEvent,
    parse,
)
from chronapilot.common.bus.envelope import Envelope
from chronapilot.common.clock import isoformat_z
from chronapilot.common.connections import Code, Connections
from chronapilot.common.logging import get_logger
from chronapilot.common.objects import (
    dump,
    recurring_masters,
    render_calendar,
    render_connection,
    render_event,
)
from chronapilot.common.store import Document
from chronapilot.common.store.repositories import Repositories
from chronapilot.common.webhooks import PublicEvent

log = get_logger(__name__)


async def public_events(
    envelope: Envelope, repos: Repositories, connections: Connections
) -> list[PublicEvent]:
    """The public events ``envelope`` tells customers of (none for an internal-only event)."""
    try:
        event = parse(envelope)
    except UnknownEvent:
        return []
    mapping = _MAPPINGS.get(type(event))
    if mapping is None:
        return []
    return await mapping(_Source(envelope, repos, connections), event)


@dataclass(frozen=True)
class _Source:
    """The message being mapped, and where its objects are read."""

    envelope: Envelope
    repos: Repositories
    connections: Connections

    def told(
        self,
        event_type: str,
        stored: Document,
        body: dict[str, Any],
        *,
        previous: dict[str, Any] | None = None,
        updated_at: datetime | None = None,
    ) -> PublicEvent:
        """The public event about ``stored`` showing ``body``: to ``stored``'s application, with
        its ``updated_at`` (unless given)."""
        return PublicEvent(
            type=event_type,
            application_id=stored["application_id"],
            connection_id=self.envelope.connection_id,
            occurred_at=self.envelope.occurred_at,
            object=body,
            previous=previous,
            updated_at=updated_at or stored["updated_at"],
        )

    def owns(self, stored: Document | None, object_id: str) -> bool:
        """``stored`` exists and is the message's connection's (else it is skipped, logged)."""
        if stored is not None and stored["connection_id"] == self.envelope.connection_id:
            return True
        log.warning(
            "webhooks.object_skipped",
            message_id=self.envelope.id,
            type=self.envelope.type,
            object_id=object_id,
            reason="missing" if stored is None else "another_connection",
        )
        return False

    async def connection(self) -> Document | None:
        connection_id = self.envelope.connection_id
        found = await self.connections.get(connection_id)
        if found is None:
            log.warning("webhooks.object_skipped", message_id=self.envelope.id, object_id=connection_id)
        return found


# -- connections ------------------------------------------------------------------------------


def _error(code: Code | None, message: str | None, at: datetime | None) -> dict[str, Any] | None:
    """A connection's ``error`` as the connection object shows it (None: no error)."""
    if code is None:
        return None
    return {"code": code.value, "message": message, "at": None if at is None else isoformat_z(at)}


async def _activated(source: _Source, event: ConnectionActivated) -> list[PublicEvent]:
    stored = await source.connection()
    if stored is None:
        return []
    body = render_connection(stored)
    if not event.relinked:
        return [source.told("connection.created", stored, body)]
    previous: dict[str, Any] = {"status": event.previous_status.value if event.previous_status else None}
    if event.previous_error_code is not None:  # a relink clears the error
        previous["error"] = _error(
            event.previous_error_code, event.previous_error_message, event.previous_error_at
        )
    return [source.told("connection.updated", stored, body, previous=previous)]


def _changed(event: ConnectionStatusChanged) -> dict[str, Any]:
    """The old values of the fields ``event`` changed: ``status``, ``sync_mode``, ``error``."""
    previous: dict[str, Any] = {}
    if event.status != event.previous_status:
        previous["status"] = event.previous_status.value
    if event.previous_sync_mode is not None and event.sync_mode != event.previous_sync_mode:
        previous["sync_mode"] = event.previous_sync_mode.value
    if (event.error_code, event.error_message) != (event.previous_error_code, event.previous_error_message):
        previous["error"] = _error(
            event.previous_error_code, event.previous_error_message, event.previous_error_at
        )
    return previous


async def _status_changed(source: _Source, event: ConnectionStatusChanged) -> list[PublicEvent]:
    previous = _changed(event)
    if not previous:  # nothing a customer sees changed
        return []
    stored = await source.connection()
    if stored is None:
        return []
    body = render_connection(stored)
    told = [source.told("connection.updated", stored, body, previous=previous)]
    reauth = Code.REAUTH_REQUIRED
    if event.error_code == reauth and event.previous_error_code != reauth:
        told.append(source.told("connection.reauth_required", stored, body))
    return told


async def _disconnected(source: _Source, event: ConnectionDisconnected) -> list[PublicEvent]:
    stored = await source.connection()
    return (
        [] if stored is None else [source.told("connection.disconnected", stored, render_connection(stored))]
    )


async def _sync_failed(source: _Source, event: SyncFailed) -> list[PublicEvent]:
    """``sync.failed``: the failure itself is the object (``failed_at`` is its ``updated_at``)."""
    stored = await source.connection()
    if stored is None:
        return []
    failed_at = source.envelope.occurred_at
    failure = {
        "object": "sync_failure",
        "connection_id": source.envelope.connection_id,
        "calendar_id": event.calendar_id,
        "mode": event.mode.value,
        "reason": event.reason.value,
        "error": {"code": event.error_code, "message": event.error_message},
        "retryable": event.retryable,
        "failed_at": isoformat_z(failed_at),
    }
    return [source.told("sync.failed", stored, failure, updated_at=failed_at)]


# -- the mirror -------------------------------------------------------------------------------


async def _events_changed(source: _Source, event: MirrorEventsChanged) -> list[PublicEvent]:
    """One public event per changed event: every event of the message read in one query, the
    masters their exceptions point at in one more."""
    changes = {"event.created": event.created, "event.updated": event.updated, "event.deleted": event.deleted}
    stored = await source.repos.events.with_ids([i for ids in changes.values() for i in ids])
    masters = await recurring_masters(source.repos, stored.values())
    return _told_each(source, changes, stored, lambda doc: render_event(doc, masters))


async def _calendars_changed(source: _Source, event: MirrorCalendarsChanged) -> list[PublicEvent]:
    changes = {
        "calendar.created": event.created,
        "calendar.updated": event.updated,
        "calendar.removed": event.removed,
    }
    found = await source.repos.calendars.in_order([i for ids in changes.values() for i in ids])
    return _told_each(source, changes, {c["_id"]: c for c in found}, lambda doc: dump(render_calendar(doc)))


def _told_each(
    source: _Source,
    changes: Mapping[str, list[str]],
    stored: Mapping[str, Document],
    render: Callable[[Document], dict[str, Any]],
) -> list[PublicEvent]:
    """``changes`` (public type → ids) told one object at a time, in the message's order."""
    return [
        source.told(event_type, stored[object_id], render(stored[object_id]))
        for event_type, ids in changes.items()
        for object_id in ids
        if source.owns(stored.get(object_id), object_id)
    ]


#: The mapping of each internal event type customers are told of (each takes its own type).
_MAPPINGS: dict[type[Event], Callable[[_Source, Any], Awaitable[list[PublicEvent]]]] = {
    ConnectionActivated: _activated,
    ConnectionStatusChanged: _status_changed,
    ConnectionDisconnected: _disconnected,
    SyncFailed: _sync_failed,
    MirrorEventsChanged: _events_changed,
    MirrorCalendarsChanged: _calendars_changed,
}
