"""Graph ``event`` resources as :class:`~chronapilot.common.providers.sync.EventData`.

Pure functions, no I/O, tested on recorded payloads. Graph's quirks kept here
(learn.microsoft.com/graph/api/resources/event):

- ``start``/``end`` are ``dateTimeTimeZone`` values: a wall time without offset (up to seven
  fractional digits) and the zone it is in; the sync asks for UTC (``Prefer:
  outlook.timezone="UTC"``), the zone the event was written in is ``originalStartTimeZone`` /
  ``originalEndTimeZone``, often a Windows name (``W. Europe Standard Time``), mapped to IANA;
- all-day events (``isAllDay``) start and end at midnight in the event's zone, end exclusive:
  their date is the wall time's date;
- calendar-view items are single events, occurrences and exceptions (``type``, with
  ``seriesMasterId`` and ``originalStart``), never the master;
- attendees answer ``none`` / ``notResponded`` / ``tentativelyAccepted`` / ``accepted`` /
  ``declined`` / ``organizer``;
- a deleted item is ``{"id", "@removed": {"reason"}}``;
- ``showAs`` (``free``, ``tentative``, ``busy``, ``oof``, ``workingElsewhere``, ``unknown``) is
  how the event shows in the owner's free/busy: ``free`` and ``workingElsewhere`` are
  transparent (Exchange's iCalendar export writes ``TRANSP:TRANSPARENT`` for both, MS-OXCICAL
  §2.1.3.1.1.20.25), the others and a missing one opaque;
- ``responseStatus.response`` is the mailbox owner's own answer (``organizer`` on their own
  events).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from chronapilot.common.providers.sync import OPAQUE, TRANSPARENT, Attendee, EventData, EventTime
from chronapilot.common.providers.zones import iana_zone, open_zone

_RESPONSES = {
    "none": "needsAction",
    "notResponded": "needsAction",
    "organizer": "accepted",
    "accepted": "accepted",
    "declined": "declined",
    "tentativelyAccepted": "tentative",
}
_FREE = frozenset({"free", "workingElsewhere"})
_TAGS = re.compile(r"<[^>]+>")
_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def is_removed(item: Mapping[str, Any]) -> bool:
    """A deleted item of a delta page."""
    return "@removed" in item


def parse_event(item: Mapping[str, Any]) -> EventData:
    """One event (not a removed item: see :func:`is_removed`)."""
    all_day = bool(item.get("isAllDay"))
    start = event_time(item.get("start"), item.get("originalStartTimeZone"), all_day)
    end = event_time(item.get("end"), item.get("originalEndTimeZone"), all_day)
    original = _instant(item.get("originalStart"))
    return EventData(
        provider_event_id=str(item["id"]),
        ical_uid=_text(item.get("uid")) or _text(item.get("iCalUId")),
        title=_text(item.get("subject")),
        description=_description(item.get("body")),
        location=_text((item.get("location") or {}).get("displayName")),
        start=start,
        end=end,
        all_day=all_day,
        status="cancelled" if item.get("isCancelled") else "confirmed",
        recurrence=(),
        recurring_event_id=_text(item.get("seriesMasterId")),
        original_start=None
        if original is None
        else EventTime(original, None, iana_zone(item.get("originalStartTimeZone"))),
        organizer=_organizer(item.get("organizer")),
        attendees=tuple(
            attendee
            for attendee in (_attendee(a) for a in item.get("attendees") or ())
            if attendee is not None
        ),
        etag=_text(item.get("changeKey")) or _text(item.get("@odata.etag")),
        updated_at=_instant(item.get("lastModifiedDateTime")),
        raw=item,
        transparency=TRANSPARENT if item.get("showAs") in _FREE else OPAQUE,
        own_response=_own_response(item.get("responseStatus")),
    )


def _own_response(value: object) -> str | None:
    response = value.get("response") if isinstance(value, Mapping) else None
    return _RESPONSES.get(str(response)) if response else None


def event_time(value: object, original_zone: object, all_day: bool) -> EventTime | None:
    """A ``dateTimeTimeZone`` as an :class:`EventTime` (the zone: the event's own, mapped)."""
    if not isinstance(value, Mapping) or not value.get("dateTime"):
        return None
    wall = _wall(str(value["dateTime"]))
    if all_day:
        return EventTime(date_time=None, date=wall.date(), timezone=None)
    shown_in = iana_zone(value.get("timeZone")) or "UTC"
    instant = wall.replace(tzinfo=open_zone(shown_in) or UTC).astimezone(UTC)
    return EventTime(date_time=instant, date=None, timezone=iana_zone(original_zone) or shown_in)


def _wall(value: str) -> datetime:
    return datetime.fromisoformat(_FRACTION.sub(r"\1", value.rstrip("Z"))).replace(tzinfo=None)


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = _FRACTION.sub(r"\1", value)
    parsed = datetime.fromisoformat(text)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _description(body: object) -> str | None:
    if not isinstance(body, Mapping):
        return None
    content = str(body.get("content") or "")
    if str(body.get("contentType") or "").lower() == "html":
        content = html.unescape(_TAGS.sub(" ", content))
        content = "\n".join(" ".join(line.split()) for line in content.splitlines()).strip()
    return content or None


def _organizer(value: object) -> Attendee | None:
    address = value.get("emailAddress") if isinstance(value, Mapping) else None
    if not isinstance(address, Mapping) or not address.get("address"):
        return None
    return Attendee(
        email=str(address["address"]),
        name=_text(address.get("name")),
        response_status="accepted",
        optional=False,
        organizer=True,
    )


def _attendee(value: object) -> Attendee | None:
    if not isinstance(value, Mapping):
        return None
    address = value.get("emailAddress") or {}
    if not address.get("address"):
        return None
    response = (value.get("status") or {}).get("response")
    return Attendee(
        email=str(address["address"]),
        name=_text(address.get("name")),
        response_status=_RESPONSES.get(str(response), "needsAction"),
        optional=value.get("type") == "optional",
        organizer=response == "organizer",
    )


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None
