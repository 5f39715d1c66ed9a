"""The occurrences of a calendar's mirrored events in a window: recurring series expanded,
exceptions in place of the occurrences they replace, cancelled ones left out.

Pure, no I/O: :func:`expand` takes stored event documents (those
:meth:`~chronapilot.common.store.events.Events.in_window` reads for the window) and returns
one :class:`Occurrence` per instance, sorted by ``(start_at, id)``. The recurrence itself is
computed by ``recurring-ical-events`` (RFC 5545 as dateutil and icalendar read it); this module
only builds the iCalendar VEVENT of each master and lays the stored exceptions over the result.

What the stored documents look like (see ``providers/sync.py``):

- a **single** event: no ``recurrence``, no ``recurring_event_id``: one occurrence, its own id;
- a **master**: ``recurrence`` lines (RRULE, EXDATE, RDATE, EXRULE). Its VEVENT is built from
  the document: ``DTSTART;TZID=<timezone>`` (the series recurs in its own zone, so a 09:00
  Europe/Berlin weekly event stays 09:00 across DST), ``VALUE=DATE`` when all-day, floating
  when ``timezone`` is None (CalDAV's DTSTART without TZID, mirrored as its wall time read as
  UTC, as here), or taken from the CalDAV resource itself (``raw["ics"]``) when the mirror kept
  it whole, which also resolves custom VTIMEZONEs;
- an **exception** (``recurring_event_id`` = the master's provider id, ``original_start`` =
  the slot it replaces): it takes the place of that slot, at its own (possibly moved) time;
  ``status: cancelled`` removes the slot (Google's cancelled instances);
- an **occurrence whose master is not mirrored** (Microsoft's calendar view stores occurrences
  and exceptions already expanded, never the master; a CalDAV resource holding only overrides):
  one occurrence as stored, its own id.

Ids are stable across calls: a generated occurrence, and the exception that replaces it, are
``<master evt_ id>_<original start>`` (UTC, ISO 8601 basic: ``20260316T080000Z``; the date
``20260316`` when all-day); any other occurrence has its document's ``evt_`` id.

Times keep the stored shape: ``start``/``end`` are ``{"date_time", "date", "timezone"}``;
``start_at``/``end_at`` are aware UTC instants, for an all-day occurrence midnight UTC of its
dates (end exclusive) and for a floating one its wall time read as UTC, as the mirror stores
them. A generated timed instance lasts its master's exact duration (RFC 5545 3.8.5.3: six
hours for 23:00-05:00 on a DST night too; one whose local start falls in the spring gap starts
after it, as Google shows it). The window selects occurrences with ``start_at < end`` and
``end_at > start`` (an occurrence of no duration: ``start <= start_at < end``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

from chronapilot.common.errors import InvalidRequest
from chronapilot.common.providers.zones import open_zone
from chronapilot.common.recurrence_cost import recurs_within_a_day, steps

__all__ = [
    "EARLIEST",
    "LATEST",
    "MAX_OCCURRENCES",
    "MAX_WINDOW",
    "Occurrence",
    "TooManyOccurrences",
    "expand",
    "occurrence_key",
    "occurrence_slot",
]

Document = Mapping[str, Any]

#: The instants a window may reach (UTC): any calendar's dates, far enough from ``datetime``'s
#: limits (years 1 and 9999) that the arithmetic around a window cannot overflow.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
#: The longest window :func:`expand` accepts (a year, leap day included).
MAX_WINDOW = timedelta(days=366)
#: The most occurrences one expansion returns; a denser window is refused.
MAX_OCCURRENCES = 20_000
#: An expansion whose rules would take more steps than this before the window's end (about a
#: second of the library's time; see :mod:`chronapilot.common.recurrence_cost`) is refused.
_MAX_RULE_STEPS = 200_000
#: Extra span asked of the library around the window (all-day and floating occurrences are
#: placed in UTC here, the library places them in the window's zone); the exact test follows.
_SLACK = timedelta(days=2)


class TooManyOccurrences(InvalidRequest):
    """The window holds more than :data:`MAX_OCCURRENCES` occurrences (or a rule too dense to
    walk): ask for a shorter window."""

    code = "window_too_dense"


@dataclass(frozen=True)
class Occurrence:
    """One instance of an event in a window.

    ``source`` is the stored document it comes from: the master for a generated occurrence, the
    exception's own document, or the single event. ``original_start`` is the slot in the
    series (None for a single event); ``recurring_event_id`` the master's *provider* id.
    ``floating``: a timed occurrence without a zone (CalDAV's DTSTART without TZID), whose
    ``start_at``/``end_at`` are wall times read as UTC, not instants.
    """

    id: str
    source: Document
    start: dict[str, Any]
    end: dict[str, Any]
    start_at: datetime
    end_at: datetime
    original_start: dict[str, Any] | None
    recurring_event_id: str | None
    status: str
    floating: bool = False


def expand(docs: Iterable[Document], start: datetime, end: datetime) -> list[Occurrence]:
    """Every occurrence of ``docs`` (stored, non-deleted events of one or more calendars)
    overlapping [``start``, ``end``), sorted by ``(start_at, id)``.

    Raises :class:`InvalidRequest` for a window that is empty, reversed, longer than
    :data:`MAX_WINDOW` or not in aware datetimes, and :class:`TooManyOccurrences`.
    """
    _check_window(start, end)
    docs = [d for d in docs if not d.get("deleted")]
    # a master whose occurrences the sync mirrors one by one (``instances_mirrored``) is not
    # expanded: they are shown as they are (an occurrence cancelled at the provider is gone)
    docs = [d for d in docs if not (d.get("recurrence") and d.get("instances_mirrored"))]
    masters = {_series_key(d, d["provider_event_id"]): d for d in docs if d.get("recurrence")}
    found: list[Occurrence] = []
    calendars: dict[tuple[str, str, str], icalendar.Calendar] = {}
    walked = 0
    for series, master in masters.items():
        expandable = _expandable(master, end + _SLACK)
        if expandable is None:
            if master.get("status") != "cancelled":
                found.append(_as_stored(master, master["_id"]))
            continue
        calendars[series], cost = expandable
        walked += 0 if master.get("status") == "cancelled" else cost
    if walked > _MAX_RULE_STEPS:  # refused before the library walks any of them
        raise _too_many()
    exceptions: dict[tuple[str, str, str], dict[str, Document]] = {}
    for doc in docs:
        if doc.get("recurrence"):
            continue
        master_id = doc.get("recurring_event_id")
        of_series = _series_key(doc, master_id) if master_id else None
        its_master = masters.get(of_series) if of_series else None
        if its_master is None or of_series is None:
            if doc.get("status") != "cancelled":
                found.append(_as_stored(doc, doc["_id"]))
            continue
        key = _slot_key(doc.get("original_start"), _first_start(calendars.get(of_series)))
        if key is None:
            found.append(_as_stored(doc, doc["_id"]))  # cannot be matched to a slot
            continue
        exceptions.setdefault(of_series, {})[key] = doc
        if doc.get("status") != "cancelled":
            found.append(_as_stored(doc, f"{its_master['_id']}_{key}"))
    for series, calendar in calendars.items():
        if masters[series].get("status") == "cancelled":
            continue
        replaced = exceptions.get(series, {})
        for occurrence in _generated(masters[series], calendar, start, end):
            if occurrence_key(occurrence.original_start) not in replaced:
                found.append(occurrence)
                if len(found) > 2 * MAX_OCCURRENCES:  # a bound on the work; the exact count below
                    raise _too_many()
    kept = sorted((o for o in found if _overlaps(o, start, end)), key=lambda o: (o.start_at, o.id))
    if len(kept) > MAX_OCCURRENCES:
        raise _too_many()
    return kept


def occurrence_key(value: Mapping[str, Any] | None) -> str | None:
    """A slot as ids name it: ``20260316T080000Z`` (UTC), or ``20260316`` (all-day)."""
    if not value:
        return None
    if value.get("date"):
        return date.fromisoformat(str(value["date"])).strftime("%Y%m%d")
    instant = value.get("date_time")
    if isinstance(instant, datetime):
        return _utc(instant).strftime("%Y%m%dT%H%M%SZ")
    return None


_GENERATED_ID = re.compile(r"^(evt_[0-9a-z]{26})_(\d{8}(?:T\d{6}Z)?)$")


def occurrence_slot(occurrence_id: str) -> tuple[str, datetime] | None:
    """The master's ``evt_`` id and the original start (UTC; an all-day slot: midnight UTC of
    its date) a generated occurrence id names; None for any other id."""
    match = _GENERATED_ID.match(occurrence_id)
    if match is None:
        return None
    master_id, key = match.groups()
    try:
        slot = datetime.strptime(key, "%Y%m%dT%H%M%SZ" if "T" in key else "%Y%m%d")
    except ValueError:
        return None
    return master_id, slot.replace(tzinfo=UTC)


def _slot_key(original: Mapping[str, Any] | None, first: date | datetime | None) -> str | None:
    """The key of the slot an exception replaces, read in the kind of its master's DTSTART
    ``first`` as the generated ids are. RFC 5545 wants a RECURRENCE-ID of DTSTART's value
    type; some clients write a DATE-TIME for an all-day series (the slot: the date it names
    in its own zone) or a TZID for a floating one (the slot: its wall time in that zone)."""
    key = occurrence_key(original)
    instant = (original or {}).get("date_time")
    if key is None or first is None or not isinstance(instant, datetime):
        return key
    zone = open_zone((original or {}).get("timezone"))
    if not isinstance(first, datetime):
        return _utc(instant).astimezone(zone or UTC).strftime("%Y%m%d")
    if first.tzinfo is None and zone is not None:
        return _utc(instant).astimezone(zone).strftime("%Y%m%dT%H%M%SZ")  # the wall time, as UTC
    return key


def _first_start(calendar: icalendar.Calendar | None) -> date | datetime | None:
    """The DTSTART of the master in ``calendar``: a date, a floating or an aware datetime."""
    for component in calendar.walk("VEVENT") if calendar is not None else ():
        value = getattr(component.get("DTSTART"), "dt", None)
        if isinstance(value, date):
            return value
    return None


# -- the window ---------------------------------------------------------------------------------


def _check_window(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidRequest("The window needs aware datetimes.", param="start", code="parameter_invalid")
    for name, instant in (("start", start), ("end", end)):
        if not _supported(instant):
            raise InvalidRequest(
                f"{name} must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (UTC).",
                param=name,
                code="parameter_invalid",
            )
    if start >= end:
        raise InvalidRequest("start must be before end.", param="start", code="parameter_invalid")
    if end - start > MAX_WINDOW:
        raise InvalidRequest(
            f"The window is longer than {MAX_WINDOW.days} days.", param="end", code="parameter_invalid"
        )


def _supported(instant: datetime) -> bool:
    try:
        return EARLIEST <= instant.astimezone(UTC) <= LATEST
    except OverflowError:  # an offset that takes year 1 or 9999 out of datetime's range
        return False


def _overlaps(occurrence: Occurrence, start: datetime, end: datetime) -> bool:
    if occurrence.start_at >= end:
        return False
    if occurrence.end_at > occurrence.start_at:
        return occurrence.end_at > start
    return occurrence.start_at >= start


def _too_many() -> TooManyOccurrences:
    return TooManyOccurrences(
        f"The window holds more than {MAX_OCCURRENCES} occurrences: ask for a shorter one.", param="end"
    )


# -- stored occurrences -------------------------------------------------------------------------


def _series_key(doc: Document, provider_event_id: str) -> tuple[str, str, str]:
    """A series across calendars: (connection, provider calendar, the master's provider id)."""
    return (str(doc.get("connection_id")), str(doc.get("provider_calendar_id")), provider_event_id)


def _as_stored(doc: Document, occurrence_id: str) -> Occurrence:
    start = _time(doc.get("start"))
    end = _time(doc.get("end")) or start
    start_at = _instant(start) or _utc(doc["start_at"])
    end_at = _instant(end) or start_at
    return Occurrence(
        id=occurrence_id,
        source=doc,
        start=start,
        end=end,
        start_at=start_at,
        end_at=max(end_at, start_at),
        original_start=_time(doc.get("original_start")) if doc.get("original_start") else None,
        recurring_event_id=doc.get("recurring_event_id"),
        status=str(doc.get("status") or "confirmed"),
        floating=start.get("date_time") is not None and start.get("timezone") is None,
    )


def _time(value: Mapping[str, Any] | None) -> dict[str, Any]:
    value = value or {}
    instant = value.get("date_time")
    return {
        "date_time": _utc(instant) if isinstance(instant, datetime) else None,
        "date": value.get("date"),
        "timezone": value.get("timezone"),
    }


def _instant(value: Mapping[str, Any]) -> datetime | None:
    if value.get("date_time") is not None:
        return _utc(value["date_time"])
    if value.get("date"):
        return datetime.combine(date.fromisoformat(str(value["date"])), time(0), tzinfo=UTC)
    return None


def _utc(value: datetime) -> datetime:
    """Aware UTC (PyMongo hands back naive UTC datetimes unless told otherwise)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# -- generated occurrences ----------------------------------------------------------------------


def _expandable(master: Document, end: datetime) -> tuple[icalendar.Calendar, int] | None:
    """The master's VCALENDAR and the steps (:func:`~chronapilot.common.recurrence_cost.steps`)
    expanding it up to ``end`` takes,
    or None when it cannot be expanded: its recurrence does not parse, or an all-day series
    recurs more than once a day (a date has no time of day to place the instances at). Such
    a master is one occurrence, as stored (the provider accepted it; the mirror shows it)."""
    try:
        calendar = _calendar_of(master)
        if any(recurs_within_a_day(component) for component in calendar.walk("VEVENT")):
            return None
        return calendar, steps(calendar, end)
    except (ValueError, TypeError, KeyError):
        return None


def _generated(
    master: Document, calendar: icalendar.Calendar, start: datetime, end: datetime
) -> Iterator[Occurrence]:
    """The master's occurrences near the window; a master whose recurrence the library
    refuses is one occurrence, as stored."""
    try:
        components = recurring_ical_events.of(calendar).between(start - _SLACK, end + _SLACK)
    except (ValueError, TypeError, KeyError):
        yield _as_stored(master, master["_id"])
        return
    zone = (master.get("start") or {}).get("timezone")
    for component in components:
        begin = component["DTSTART"].dt
        first = _from_ical(begin, zone)
        last = _from_ical(_exact_end(begin, component["DTEND"].dt), zone) if "DTEND" in component else first
        start_at = _instant(first)
        assert start_at is not None
        yield Occurrence(
            id=f"{master['_id']}_{occurrence_key(first)}",
            source=master,
            start=first,
            end=last,
            start_at=start_at,
            end_at=max(_instant(last) or start_at, start_at),
            original_start=first,
            recurring_event_id=master.get("provider_event_id"),
            status=str(master.get("status") or "confirmed"),
            floating=isinstance(begin, datetime) and begin.tzinfo is None,
        )


def _exact_end(begin: date | datetime, end: date | datetime) -> date | datetime:
    """An instance's end its start plus the series' duration in exact time (RFC 5545
    3.8.5.3: a DTEND's duration is exact): the library adds the duration to the local wall
    time, which on a DST night makes a 23:00-05:00 instance five hours long and one starting
    in the spring gap (02:30, placed at 03:30) zero. All-day and floating ends are kept."""
    if not (isinstance(begin, datetime) and isinstance(end, datetime) and begin.tzinfo and end.tzinfo):
        return end
    added = end.replace(tzinfo=None) - begin.replace(tzinfo=None)  # what the library added
    return begin.astimezone(UTC) + added


def _from_ical(value: date | datetime, zone: str | None) -> dict[str, Any]:
    """A generated DTSTART/DTEND in the stored shape (floating: its wall time read as UTC)."""
    if not isinstance(value, datetime):
        return {"date_time": None, "date": value.isoformat(), "timezone": None}
    if value.tzinfo is None:
        return {"date_time": value.replace(tzinfo=UTC), "date": None, "timezone": None}
    return {"date_time": value.astimezone(UTC), "date": None, "timezone": zone}


def _calendar_of(master: Document) -> icalendar.Calendar:
    """A VCALENDAR holding the master alone: from the CalDAV resource the mirror kept, else
    built from the stored fields."""
    return _from_resource(master) or _from_fields(master)


def _from_resource(master: Document) -> icalendar.Calendar | None:
    raw = master.get("raw")
    ics = raw.get("ics") if isinstance(raw, Mapping) and not raw.get("_truncated") else None
    if not isinstance(ics, str):
        return None
    try:
        parsed = icalendar.Calendar.from_ical(ics)
    except ValueError:
        return None
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//ChronaPilot//occurrences//EN")
    calendar.add("version", "2.0")
    for zone in parsed.walk("VTIMEZONE"):
        calendar.add_component(zone)
    uid = master.get("ical_uid")
    cores = [
        c
        for c in parsed.walk("VEVENT")
        if "RECURRENCE-ID" not in c and (uid is None or str(c.get("UID")) == uid)
    ]
    if len(cores) != 1:
        return None
    calendar.add_component(cores[0])  # the overrides come from their own stored documents
    return calendar


def _from_fields(master: Document) -> icalendar.Calendar:
    start_zone = (master.get("start") or {}).get("timezone")
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//ChronaPilot//occurrences//EN",
        "BEGIN:VEVENT",
        f"UID:{master['_id']}",
        _content_line("DTSTART", master.get("start"), zone=start_zone),
    ]
    if master.get("end"):
        lines.append(_content_line("DTEND", master["end"], zone=start_zone))
    lines += [line.replace("\r", "").replace("\n", "") for line in master.get("recurrence") or []]
    lines += ["END:VEVENT", "END:VCALENDAR", ""]
    return icalendar.Calendar.from_ical("\r\n".join(lines))


def _content_line(name: str, value: Mapping[str, Any] | None, *, zone: str | None) -> str:
    """``DTSTART;TZID=Europe/Berlin:20260305T090000`` and the like, from a stored time. An end
    is written in the start's zone (RFC 5545 wants them alike for the duration to hold)."""
    value = value or {}
    if value.get("date"):
        return f"{name};VALUE=DATE:{date.fromisoformat(str(value['date'])).strftime('%Y%m%d')}"
    instant = value.get("date_time")
    if not isinstance(instant, datetime):
        raise ValueError(f"a stored {name} without a date or a time")
    if zone is None:
        return f"{name}:{_utc(instant).strftime('%Y%m%dT%H%M%S')}"  # floating
    known = _zone(zone)
    if known is None:
        return f"{name}:{_utc(instant).strftime('%Y%m%dT%H%M%SZ')}"
    local = _utc(instant).astimezone(known)
    return f"{name};TZID={known.key}:{local.strftime('%Y%m%dT%H%M%S')}"


def _zone(name: str) -> ZoneInfo | None:
    zone = open_zone(name)
    return None if zone is None or zone.key == "UTC" else zone
