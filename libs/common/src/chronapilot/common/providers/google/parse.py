"""Google Calendar ``Event`` resources as :class:`~chronapilot.common.providers.sync.EventData`.

Pure functions, no I/O, tested on recorded payloads. Google's quirks kept here:

- ``status: cancelled`` means two things (developers.google.com/calendar/api/v3/reference/events):
  with ``recurringEventId`` it is a cancelled instance of a live series (an exclusion, kept as an
  event with status ``cancelled``); without, it is a deletion (only ``id`` is guaranteed);
- ``start``/``end`` hold ``date`` (all-day, end exclusive) or ``dateTime`` with an offset and an
  optional ``timeZone``; without one the event is in the calendar's zone (the listing's
  ``timeZone``);
- ``recurrence`` lines (``RRULE``, ``EXDATE``, ``RDATE``…) are on masters only;
- ``transparency`` is ``opaque`` (the default: the event blocks time) or ``transparent``; the
  attendee flagged ``self`` is "the calendar on which this copy of the event appears", whose
  ``responseStatus`` is the calendar owner's own answer; only that flag says who the owner
  is (a secondary calendar's copy may list the account's e-mail as another attendee).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from chronapilot.common.providers.sync import OPAQUE, TRANSPARENT, Attendee, EventData, EventTime

_STATUSES = frozenset({"confirmed", "tentative", "cancelled"})
_RESPONSES = frozenset({"needsAction", "accepted", "declined", "tentative"})


def is_deletion(item: Mapping[str, Any]) -> bool:
    """A cancelled event that is not an instance of a series: the event is gone."""
    return item.get("status") == "cancelled" and not item.get("recurringEventId")


def parse_event(item: Mapping[str, Any], calendar_zone: str | None) -> EventData:
    """One ``Event`` resource (not a deletion: see :func:`is_deletion`)."""
    start = event_time(item.get("start"), calendar_zone)
    end = event_time(item.get("end"), calendar_zone)
    organizer = _organizer(item.get("organizer"), item.get("attendees"))
    return EventData(
        provider_event_id=str(item["id"]),
        ical_uid=_text(item.get("iCalUID")),
        title=_text(item.get("summary")),
        description=_text(item.get("description")),
        location=_text(item.get("location")),
        start=start,
        end=end,
        all_day=start is not None and start.date is not None,
        status=str(item["status"]) if item.get("status") in _STATUSES else "confirmed",
        recurrence=tuple(str(line) for line in item.get("recurrence") or ()),
        recurring_event_id=_text(item.get("recurringEventId")),
        original_start=event_time(item.get("originalStartTime"), calendar_zone),
        organizer=organizer,
        attendees=tuple(_attendee(a) for a in item.get("attendees") or () if a.get("email")),
        etag=_text(item.get("etag")),
        updated_at=_instant(item.get("updated")),
        raw=item,
        transparency=TRANSPARENT if item.get("transparency") == TRANSPARENT else OPAQUE,
        own_response=_own_response(item.get("attendees"), item.get("organizer")),
    )


def _own_response(attendees: object, organizer: object) -> str | None:
    """The calendar owner's answer: that of the attendee flagged ``self``; with attendees but
    none flagged, the calendar's owner is not among them (``accepted`` on the organizer's own
    copy, else ``needsAction``, as Graph's ``none``: nothing declined, whoever's e-mail is
    listed); None without attendees (no invitation)."""
    if not isinstance(attendees, list) or not attendees:
        return None
    own = next((a for a in attendees if isinstance(a, Mapping) and a.get("self") is True), None)
    if own is None:
        organizing = isinstance(organizer, Mapping) and organizer.get("self") is True
        return "accepted" if organizing else "needsAction"
    status = own.get("responseStatus")
    return status if status in _RESPONSES else "needsAction"


def event_time(value: object, calendar_zone: str | None) -> EventTime | None:
    """A ``start``/``end``/``originalStartTime`` value; None when absent."""
    if not isinstance(value, Mapping):
        return None
    if value.get("date"):
        return EventTime(date_time=None, date=date.fromisoformat(str(value["date"])), timezone=None)
    instant = _instant(value.get("dateTime"))
    if instant is None:
        return None
    return EventTime(date_time=instant, date=None, timezone=_text(value.get("timeZone")) or calendar_zone)


def _organizer(value: object, attendees: object) -> Attendee | None:
    if not isinstance(value, Mapping) or not value.get("email"):
        return None
    email = str(value["email"])
    listed = (
        next(
            (a for a in attendees if isinstance(a, Mapping) and a.get("email") == email),
            None,
        )
        if isinstance(attendees, list)
        else None
    )
    status = listed.get("responseStatus") if listed is not None else "accepted"
    return Attendee(
        email=email,
        name=_text(value.get("displayName")),
        response_status=status if status in _RESPONSES else "accepted",
        optional=False,
        organizer=True,
    )


def _attendee(value: Mapping[str, Any]) -> Attendee:
    status = value.get("responseStatus")
    return Attendee(
        email=str(value["email"]),
        name=_text(value.get("displayName")),
        response_status=status if status in _RESPONSES else "needsAction",
        optional=bool(value.get("optional", False)),
        organizer=bool(value.get("organizer", False)),
    )


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None
