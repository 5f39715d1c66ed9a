"""Event writes as Google performs them: insert, patch, update (PUT) and delete.

The Calendar API handlers and the admin API (changes "as an end user would") both go through
:class:`EventWriter`, so every write gets a new ``etag`` and ``updated``, a new change sequence
(incremental sync) and a push notification. Writing to an instance id that has no exception
yet (``<masterId>_<originalStart>``) turns that instance into an exception; deleting one
records a cancelled instance. Deleting a master cancels its exceptions too.
"""

from __future__ import annotations

import base64
import re
import secrets
from datetime import datetime
from typing import Any

from chronapilot.sandbox.google.errors import (
    bad_request,
    condition_not_met,
    deleted,
    duplicate,
    invalid_value,
    not_found,
    time_range_empty,
)
from chronapilot.sandbox.google.event_times import EventTime, format_timestamp, read_event_time
from chronapilot.sandbox.google.recurrence import find_occurrence, instance_resource, validate_recurrence
from chronapilot.sandbox.google.store import Calendar, Change, GoogleStore
from chronapilot.sandbox.shared.clock import SandboxClock

_CLIENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")
_BASE32HEX = "0123456789abcdefghijklmnopqrstuv"
_COPIED_FIELDS = (
    "summary",
    "description",
    "location",
    "colorId",
    "start",
    "end",
    "endTimeUnspecified",
    "recurrence",
    "recurringEventId",
    "originalStartTime",
    "transparency",
    "visibility",
    "iCalUID",
    "sequence",
    "attendees",
    "attendeesOmitted",
    "extendedProperties",
    "hangoutLink",
    "conferenceData",
    "anyoneCanAddSelf",
    "guestsCanInviteOthers",
    "guestsCanModify",
    "guestsCanSeeOtherGuests",
    "privateCopy",
    "locked",
    "reminders",
    "source",
    "attachments",
    "eventType",
)
_TIME_FIELDS = ("start", "end", "recurrence")
_STATUSES = ("confirmed", "tentative", "cancelled")
_TRANSPARENCIES = ("opaque", "transparent")
_VISIBILITIES = ("default", "public", "private", "confidential")
_RESPONSES = ("needsAction", "declined", "tentative", "accepted")


def new_event_id() -> str:
    """A 26-character base32hex id, the shape of Google's generated ids."""
    return "".join(secrets.choice(_BASE32HEX) for _ in range(26))


def unmodified_instance(calendar: Calendar, event_id: str) -> dict[str, Any]:
    """The instance ``<masterId>_<originalStart>`` of a live series, or 404 ``notFound``."""
    master_id, underscore, _ = event_id.rpartition("_")
    master = calendar.log.get(master_id) if underscore else None
    if master is None or master.cancelled or "recurrence" not in master.resource:
        raise not_found()
    occurrence = find_occurrence(master.resource, event_id, calendar.time_zone)
    if occurrence is None:
        raise not_found()
    return instance_resource(master.resource, occurrence, calendar.time_zone)


class EventWriter:
    """Applies writes to a calendar's event log and announces them."""

    def __init__(self, store: GoogleStore, clock: SandboxClock, base_url: str) -> None:
        self._store = store
        self._clock = clock
        self._base_url = base_url.rstrip("/")

    def insert(
        self, calendar: Calendar, body: dict[str, Any], *, keep_organizer: bool = False
    ) -> dict[str, Any]:
        """events.insert: a new event (``id`` optional, base32hex, 5-1024 characters). An id the
        calendar holds answers ``409 duplicate``, also when that event was deleted: Google keeps
        a deleted event's id taken (clients meet this when they re-create a deleted event)."""
        event_id = body.get("id")
        if event_id is None:
            event_id = new_event_id()
        elif not isinstance(event_id, str) or not _CLIENT_ID.match(event_id):
            raise invalid_value("Invalid resource id value.")
        if calendar.log.get(event_id) is not None:  # a deleted event's id stays taken, as at Google
            raise duplicate()
        fields = {key: body[key] for key in (*_COPIED_FIELDS, "status", "organizer") if key in body}
        if not keep_organizer:
            fields.pop("organizer", None)
        fields.setdefault("sequence", 0)
        return self._store_event(calendar, event_id, fields, created=None)

    def patch(
        self, calendar: Calendar, event_id: str, body: dict[str, Any], if_match: str | None = None
    ) -> dict[str, Any]:
        """events.patch: merge the given fields into the event (``null`` removes a field)."""
        current = self._writable(calendar, event_id, if_match)
        fields = {key: current[key] for key in (*_COPIED_FIELDS, "status", "organizer") if key in current}
        changes = {key: body[key] for key in (*_COPIED_FIELDS, "status") if key in body}
        return self._rewrite(calendar, event_id, current, merge_patch(fields, changes))

    def update(
        self, calendar: Calendar, event_id: str, body: dict[str, Any], if_match: str | None = None
    ) -> dict[str, Any]:
        """events.update (PUT): replace the event's fields with the body's."""
        current = self._writable(calendar, event_id, if_match)
        fields = {key: body[key] for key in (*_COPIED_FIELDS, "status") if key in body}
        for kept in ("organizer", "recurringEventId", "originalStartTime", "iCalUID"):
            if kept in current:
                fields.setdefault(kept, current[kept])
        return self._rewrite(calendar, event_id, current, fields)

    def delete(self, calendar: Calendar, event_id: str, if_match: str | None = None) -> None:
        """events.delete: a deletion, or a cancelled instance for an instance id."""
        current = self._writable(calendar, event_id, if_match)
        now = self._clock.now()
        if current.get("recurringEventId"):
            self._put(calendar, _cancelled(current, now, keep_instance=True, etag=self._etag(calendar, now)))
        else:
            self._put(calendar, _cancelled(current, now, keep_instance=False, etag=self._etag(calendar, now)))
            self._cancel_exceptions(calendar, event_id, now)
        self._store.changed(Change(events_of=calendar))

    def _writable(self, calendar: Calendar, event_id: str, if_match: str | None) -> dict[str, Any]:
        stored = calendar.log.get(event_id)
        if stored is None:
            current = unmodified_instance(calendar, event_id)
        elif stored.cancelled:
            raise deleted()
        else:
            current = stored.resource
        if if_match is not None and if_match.strip().removeprefix("W/") not in ("*", current["etag"]):
            raise condition_not_met()
        return current

    def _rewrite(
        self, calendar: Calendar, event_id: str, current: dict[str, Any], fields: dict[str, Any]
    ) -> dict[str, Any]:
        if any(fields.get(key) != current.get(key) for key in _TIME_FIELDS):
            fields["sequence"] = int(current.get("sequence", 0)) + 1
        if fields.get("status") == "cancelled":
            self.delete(calendar, event_id)
            return calendar.log.events[event_id].resource
        return self._store_event(calendar, event_id, fields, created=current.get("created"))

    def _store_event(
        self, calendar: Calendar, event_id: str, fields: dict[str, Any], created: str | None
    ) -> dict[str, Any]:
        now = self._clock.now()
        resource = self._compose(calendar, event_id, fields, now=now, created=created)
        self._put(calendar, resource)
        self._store.changed(Change(events_of=calendar))
        return resource

    def _put(self, calendar: Calendar, resource: dict[str, Any]) -> None:
        calendar.log.put(resource)

    def _etag(self, calendar: Calendar, now: float) -> str:
        return f'"{int(now * 1000)}{calendar.log.seq + 1:09d}"'

    def _compose(
        self, calendar: Calendar, event_id: str, fields: dict[str, Any], *, now: float, created: str | None
    ) -> dict[str, Any]:
        start = read_event_time(fields.get("start"), "start")
        end = read_event_time(fields.get("end"), "end")
        _check_range(start, end)
        if fields.get("recurrence"):
            if fields.get("recurringEventId"):
                raise bad_request("An instance of a recurring event cannot itself recur.", "invalid")
            validate_recurrence(fields["recurrence"], start, calendar.time_zone)
        _check_choice(fields, "status", _STATUSES)
        _check_choice(fields, "transparency", _TRANSPARENCIES)
        _check_choice(fields, "visibility", _VISIBILITIES)
        owner = self._store.accounts[calendar.owner_sub]
        organizer = fields.get("organizer") or {"email": calendar.id, "displayName": calendar.summary}
        if not isinstance(organizer, dict) or not isinstance(organizer.get("email"), str):
            raise invalid_value("Invalid value for: organizer")
        organizer = {**organizer, "self": True} if organizer.get("email") == calendar.id else dict(organizer)
        stamp = format_timestamp(now)
        resource: dict[str, Any] = {
            "kind": "calendar#event",
            "etag": self._etag(calendar, now),
            "id": event_id,
            "status": fields.get("status", "confirmed"),
            "htmlLink": self._html_link(calendar, event_id),
            "created": created or stamp,
            "updated": stamp,
            "summary": fields.get("summary"),
            "description": fields.get("description"),
            "location": fields.get("location"),
            "colorId": fields.get("colorId"),
            "creator": {"email": owner.email, "displayName": owner.name, "self": True},
            "organizer": organizer,
            "start": start.to_json(calendar.time_zone),
            "end": end.to_json(calendar.time_zone),
            "endTimeUnspecified": fields.get("endTimeUnspecified"),
            "recurrence": fields.get("recurrence") or None,
            "recurringEventId": fields.get("recurringEventId"),
            "originalStartTime": fields.get("originalStartTime"),
            "transparency": fields.get("transparency"),
            "visibility": fields.get("visibility"),
            "iCalUID": fields.get("iCalUID") or f"{event_id.partition('_')[0]}@google.com",
            "sequence": int(fields.get("sequence", 0)),
            "attendees": _attendees(fields.get("attendees"), calendar.id, organizer.get("email")),
            "guestsCanInviteOthers": fields.get("guestsCanInviteOthers"),
            "guestsCanModify": fields.get("guestsCanModify"),
            "extendedProperties": fields.get("extendedProperties"),
            "hangoutLink": fields.get("hangoutLink"),
            "conferenceData": fields.get("conferenceData"),
            "reminders": fields.get("reminders") or {"useDefault": True},
            "attachments": fields.get("attachments"),
            "eventType": fields.get("eventType", "default"),
        }
        return {key: value for key, value in resource.items() if value is not None}

    def _html_link(self, calendar: Calendar, event_id: str) -> str:
        eid = base64.urlsafe_b64encode(f"{event_id} {calendar.id}".encode()).decode().rstrip("=")
        return f"{self._base_url}/calendar/event?eid={eid}"

    def _cancel_exceptions(self, calendar: Calendar, master_id: str, now: float) -> None:
        exceptions = [
            stored.resource
            for stored in calendar.log.events.values()
            if stored.resource.get("recurringEventId") == master_id and not stored.cancelled
        ]
        for resource in exceptions:
            self._put(calendar, _cancelled(resource, now, keep_instance=True, etag=self._etag(calendar, now)))


def merge_patch(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Patch semantics: objects merge recursively, arrays and scalars replace, ``null`` removes.

    Giving ``date`` in ``start``/``end`` drops the old ``dateTime`` (and the reverse), so an event
    can switch between all-day and timed.
    """
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            base = dict(merged[key])
            if "date" in value:
                base.pop("dateTime", None)
            if "dateTime" in value:
                base.pop("date", None)
            merged[key] = merge_patch(base, value)
        else:
            merged[key] = value
    return merged


def _check_range(start: EventTime, end: EventTime) -> None:
    if start.all_day != end.all_day:
        raise bad_request("Start and end times must either both be date or both be dateTime.", "invalid")
    if isinstance(start.value, datetime) and isinstance(end.value, datetime):
        empty = end.value < start.value
    else:
        empty = end.value <= start.value
    if empty:
        raise time_range_empty()


def _check_choice(fields: dict[str, Any], name: str, allowed: tuple[str, ...]) -> None:
    if name in fields and fields[name] not in allowed:
        raise invalid_value(f"Invalid value for: {name}")


def _attendees(raw: Any, calendar_id: str, organizer_email: str | None) -> list[dict[str, Any]] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(item, dict) and item.get("email") for item in raw):
        raise bad_request("Invalid attendee email.", "invalid")
    attendees = []
    for item in raw:
        attendee = {**item, "responseStatus": item.get("responseStatus", "needsAction")}
        if attendee["responseStatus"] not in _RESPONSES:
            raise invalid_value("Invalid value for: responseStatus")
        if attendee["email"] == organizer_email:
            attendee["organizer"] = True
        if attendee["email"] == calendar_id:
            attendee["self"] = True
        attendees.append(attendee)
    return attendees or None


def _cancelled(resource: dict[str, Any], now: float, *, keep_instance: bool, etag: str) -> dict[str, Any]:
    cancelled: dict[str, Any] = {
        "kind": "calendar#event",
        "etag": etag,
        "id": resource["id"],
        "status": "cancelled",
    }
    if keep_instance:
        cancelled["recurringEventId"] = resource["recurringEventId"]
        cancelled["originalStartTime"] = resource["originalStartTime"]
    cancelled["updated"] = format_timestamp(now)
    return cancelled
