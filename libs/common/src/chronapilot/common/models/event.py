"""The mirror's events: one normalized shape for all providers, keyed by
(connection, provider calendar id, provider event id)."""

from __future__ import annotations

import hashlib
import json
from collections import deque
from dataclasses import asdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from dateutil.rrule import rrulestr

from chronapilot.common.providers.sync import Attendee, EventData, EventTime

COLLECTION = "events"
#: Provider payloads kept for debugging are cut to this many bytes of JSON.
RAW_MAX_BYTES = 32 * 1024


def _time(value: EventTime | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {
        "date_time": value.date_time,
        "date": value.date.isoformat() if value.date else None,
        "timezone": value.timezone,
    }


def _instant(value: EventTime | None) -> datetime | None:
    """An orderable UTC instant for range queries (all-day: midnight UTC of the date)."""
    if value is None:
        return None
    if value.date_time is not None:
        return value.date_time.astimezone(UTC)
    if value.date is not None:
        return datetime.combine(value.date, time(0), tzinfo=UTC)
    return None


def _person(value: Attendee | None) -> dict[str, Any] | None:
    return None if value is None else asdict(value)


def series_end(event: EventData) -> datetime | None:
    """When a recurring master's last occurrence ends (its last start, walked in UTC, plus the
    master's duration); None when it never ends (or no rule)."""
    start = _instant(event.start)
    rules = [line for line in event.recurrence if line.upper().startswith("RRULE")]
    if start is None or not rules:
        return None
    try:
        rule = rrulestr(rules[0].split(":", 1)[-1], dtstart=start, ignoretz=False)
    except (ValueError, TypeError):
        return None
    if getattr(rule, "_until", None) is None and getattr(rule, "_count", None) is None:
        return None
    tail = deque(rule, maxlen=1)  # finite: UNTIL or COUNT
    last = tail[0].astimezone(UTC) if tail and isinstance(tail[0], datetime) else start
    return last + max(_duration(event), timedelta(0))


def _duration(event: EventData) -> timedelta:
    start, end = _instant(event.start), _instant(event.end)
    return end - start if start is not None and end is not None else timedelta(0)


def capped_raw(raw: Any, limit: int = RAW_MAX_BYTES) -> Any:
    text = json.dumps(raw, default=str, sort_keys=True)
    if len(text.encode()) <= limit:
        return json.loads(text)
    return {"_truncated": True, "_size": len(text.encode()), "head": text[: limit // 2]}


def mirror_fields(event: EventData) -> dict[str, Any]:
    """The document fields that mirror ``event`` (everything but ids and bookkeeping)."""
    fields: dict[str, Any] = {
        "ical_uid": event.ical_uid,
        "title": event.title,
        "description": event.description,
        "location": event.location,
        "start": _time(event.start),
        "end": _time(event.end),
        "start_at": _instant(event.start),
        "end_at": _instant(event.end) or _instant(event.start),
        "all_day": event.all_day,
        "status": event.status,
        "transparency": event.transparency,
        "own_response": event.own_response,
        "recurrence": list(event.recurrence),
        "recurring_event_id": event.recurring_event_id,
        "original_start": _time(event.original_start),
        "organizer": _person(event.organizer),
        "attendees": [asdict(a) for a in event.attendees],
        "etag": event.etag,
        "provider_updated_at": event.updated_at,
        "series_end_at": series_end(event) if event.recurrence else None,
    }
    fields["content_hash"] = content_hash(fields)
    return fields


def content_hash(fields: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, default=_json_default, sort_keys=True).encode()).hexdigest()


def _json_default(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)
