"""events.instances: the instances of one recurring event, exceptions and cancellations included.

Instances come from expanding the master (``recurrence``) between ``timeMin`` and ``timeMax`` (or
up to a year after the emulator's now), with stored exceptions in place of the instances they
modify; cancelled instances only with ``showDeleted=true``. Pages by offset; no sync token.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from chronapilot.sandbox.google.errors import invalid_value, not_found
from chronapilot.sandbox.google.event_listing import (
    DEFAULT_REMINDERS,
    EXPANSION_HORIZON,
    EventQuery,
)
from chronapilot.sandbox.google.event_times import parse_rfc3339, read_event_time
from chronapilot.sandbox.google.recurrence import instance_resource, occurrences
from chronapilot.sandbox.google.store import Calendar


def list_instances(
    calendar: Calendar, event_id: str, params: Mapping[str, str], now: float
) -> dict[str, Any]:
    """The events.instances response body."""
    master = calendar.log.get(event_id)
    if master is None or master.cancelled or "recurrence" not in master.resource:
        raise not_found()
    query = EventQuery.from_params({key: value for key, value in params.items() if key != "pageToken"})
    horizon = datetime.fromtimestamp(now, UTC) + EXPANSION_HORIZON
    exceptions = {
        stored.id: stored.resource
        for stored in calendar.log.events.values()
        if stored.resource.get("recurringEventId") == event_id
    }
    items = []
    for occurrence in occurrences(
        master.resource,
        calendar.time_zone,
        window_start=query.time_min,
        window_end=query.time_max,
        horizon_end=query.time_max or horizon,
    ):
        instance = instance_resource(master.resource, occurrence, calendar.time_zone)
        replacement = exceptions.get(instance["id"], instance)
        if replacement.get("status") != "cancelled" or query.show_deleted:
            items.append(replacement)
    if "originalStart" in params:
        wanted = _moment(params["originalStart"])
        items = [item for item in items if _original_moment(item) == wanted]
    offset = _offset(params.get("pageToken"))
    page = items[offset : offset + query.max_results]
    body: dict[str, Any] = {
        "kind": "calendar#events",
        "etag": master.resource["etag"],
        "summary": calendar.summary,
        "updated": master.resource["updated"],
        "timeZone": calendar.time_zone,
        "accessRole": "owner",
        "defaultReminders": DEFAULT_REMINDERS,
    }
    if offset + len(page) < len(items):
        body["nextPageToken"] = base64.urlsafe_b64encode(f"i:{offset + len(page)}".encode()).decode()
    body["items"] = page
    return body


def _moment(text: str) -> datetime | date:
    """An ``originalStart`` value: a date, or an RFC 3339 instant in UTC."""
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        return parse_rfc3339(text).astimezone(UTC)
    except ValueError:
        raise invalid_value(f"Invalid value for: originalStart: {text}") from None


def _original_moment(item: dict[str, Any]) -> datetime | date:
    original = read_event_time(item["originalStartTime"], "originalStartTime")
    return original.value if original.all_day else original.instant("UTC")


def _offset(token: str | None) -> int:
    if token is None:
        return 0
    try:
        kind, _, value = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if kind != "i":
            raise ValueError(token)
        return int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid_value("Invalid page token value.") from None
