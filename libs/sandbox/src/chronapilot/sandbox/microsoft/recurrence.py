"""Expanding an event into the items a calendar view shows: singles, occurrences, exceptions.

Graph's `recurrence` (`pattern` + `range`) maps onto an RFC 5545 rule expanded in the series'
own zone, so a 09:00 meeting stays at 09:00 local across a daylight-saving change. Occurrences
are keyed by their original start in UTC (`20260301T090000Z`; `20260301` for all-day series):
the key names exceptions and cancellations, and is part of the occurrence's id.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from dateutil import rrule

from .times import InvalidTime, localize, parse_local, zone

_DAYS = {
    "monday": rrule.MO,
    "tuesday": rrule.TU,
    "wednesday": rrule.WE,
    "thursday": rrule.TH,
    "friday": rrule.FR,
    "saturday": rrule.SA,
    "sunday": rrule.SU,
}
_INDEX = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
_OCCURRENCE_PREFIX = "AAMkADOc"


@dataclass(frozen=True, slots=True)
class Instance:
    """One item of a calendar view."""

    item_id: str
    kind: str  # singleInstance | occurrence | exception
    start: datetime  # aware UTC
    end: datetime
    key: str | None = None  # occurrence key, for occurrences and exceptions
    original_start: datetime | None = None


def occurrence_id(master_id: str, key: str) -> str:
    raw = f"{master_id}\x00{key}".encode()
    return _OCCURRENCE_PREFIX + base64.urlsafe_b64encode(raw).decode()


def split_occurrence_id(item_id: str) -> tuple[str, str] | None:
    """(master id, occurrence key) of an occurrence id, or None for any other id."""
    if not item_id.startswith(_OCCURRENCE_PREFIX):
        return None
    try:
        raw = base64.urlsafe_b64decode(item_id[len(_OCCURRENCE_PREFIX) :].encode()).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    master, sep, key = raw.partition("\x00")
    return (master, key) if sep else None


def bounds(fields: dict[str, Any]) -> tuple[datetime, datetime]:
    """The UTC start and end of an event's `start`/`end` fields."""
    start = _instant(fields["start"])
    end = _instant(fields["end"])
    return start, end


def _instant(value: dict[str, Any]) -> datetime:
    return _parsed_instant(value["dateTime"], value.get("timeZone"))


@lru_cache(maxsize=65_536)
def _parsed_instant(wall: str, tz_name: str | None) -> datetime:
    return localize(parse_local(wall), zone(tz_name))


def occurrence_key(original_start: datetime, all_day: bool, tz_name: str | None) -> str:
    if all_day:
        return original_start.astimezone(zone(tz_name)).strftime("%Y%m%d")
    return original_start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def validate_recurrence(recurrence: dict[str, Any]) -> None:
    """Raise InvalidTime for a pattern or range Graph would refuse."""
    _rule(recurrence, datetime(2000, 1, 1))


def _rule(recurrence: dict[str, Any], first_wall: datetime) -> rrule.rrule:
    pattern = recurrence.get("pattern") or {}
    rng = recurrence.get("range") or {}
    kind = pattern.get("type")
    interval = int(pattern.get("interval") or 1)
    if interval < 1:
        raise InvalidTime("recurrence interval must be at least 1")
    days = [_DAYS[d.lower()] for d in pattern.get("daysOfWeek") or [] if d.lower() in _DAYS]
    index = _INDEX.get(str(pattern.get("index") or "first").lower(), 1)
    wkst = _DAYS.get(str(pattern.get("firstDayOfWeek") or "sunday").lower(), rrule.SU)
    kwargs: dict[str, Any] = {"interval": interval, "wkst": wkst}
    if kind == "daily":
        freq = rrule.DAILY
    elif kind == "weekly":
        if not days:
            raise InvalidTime("a weekly pattern needs daysOfWeek")
        freq, kwargs["byweekday"] = rrule.WEEKLY, days
    elif kind == "absoluteMonthly":
        freq, kwargs["bymonthday"] = rrule.MONTHLY, int(pattern.get("dayOfMonth") or 0)
    elif kind == "relativeMonthly":
        if not days:
            raise InvalidTime("a relativeMonthly pattern needs daysOfWeek")
        freq, kwargs["byweekday"] = rrule.MONTHLY, [d(index) for d in days]
    elif kind == "absoluteYearly":
        freq = rrule.YEARLY
        kwargs["bymonth"] = int(pattern.get("month") or 0)
        kwargs["bymonthday"] = int(pattern.get("dayOfMonth") or 0)
    elif kind == "relativeYearly":
        if not days:
            raise InvalidTime("a relativeYearly pattern needs daysOfWeek")
        freq = rrule.YEARLY
        kwargs["bymonth"] = int(pattern.get("month") or 0)
        kwargs["byweekday"] = [d(index) for d in days]
    else:
        raise InvalidTime(f"unknown recurrence pattern type {kind!r}")
    if kwargs.get("bymonthday") == 0 or kwargs.get("bymonth") == 0:
        raise InvalidTime("dayOfMonth and month are required for this pattern")
    range_type = rng.get("type") or "noEnd"
    start_date = _date(rng.get("startDate")) or first_wall.date()
    dtstart = datetime.combine(start_date, first_wall.time())
    if range_type == "numbered":
        count = int(rng.get("numberOfOccurrences") or 0)
        if count < 1:
            raise InvalidTime("numberOfOccurrences must be at least 1")
        kwargs["count"] = count
    elif range_type == "endDate":
        end_date = _date(rng.get("endDate"))
        if end_date is None or end_date < start_date:
            raise InvalidTime("range endDate must be on or after startDate")
        kwargs["until"] = datetime.combine(end_date, datetime.max.time())
    elif range_type != "noEnd":
        raise InvalidTime(f"unknown recurrence range type {range_type!r}")
    try:
        return rrule.rrule(freq, dtstart=dtstart, **kwargs)
    except ValueError as exc:
        raise InvalidTime(str(exc)) from exc


def _date(value: Any) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise InvalidTime(f"invalid date {value!r}") from exc


def expand(
    event_id: str,
    fields: dict[str, Any],
    exceptions: dict[str, dict[str, Any]],
    cancelled: set[str] | frozenset[str],
    window_start: datetime,
    window_end: datetime,
) -> list[Instance]:
    """The items of one stored event that overlap [window_start, window_end)."""
    start, end = bounds(fields)
    recurrence = fields.get("recurrence")
    if not recurrence:
        if start < window_end and end > window_start:
            return [Instance(event_id, "singleInstance", start, end)]
        if start == end and window_start <= start < window_end:
            return [Instance(event_id, "singleInstance", start, end)]
        return []
    tz_name = (recurrence.get("range") or {}).get("recurrenceTimeZone") or fields["start"].get("timeZone")
    tz = zone(tz_name)
    all_day = bool(fields.get("isAllDay"))
    duration = end - start
    first_wall = start.astimezone(tz).replace(tzinfo=None)
    rule = _rule(recurrence, first_wall)
    lo = (window_start - duration).astimezone(tz).replace(tzinfo=None) - timedelta(days=1)
    hi = window_end.astimezone(tz).replace(tzinfo=None) + timedelta(days=1)
    items: list[Instance] = []
    for wall in rule.between(lo, hi, inc=True):
        occ_start = localize(wall, tz)
        key = occurrence_key(occ_start, all_day, tz_name)
        if key in cancelled or key in exceptions:
            continue
        occ_end = localize(wall + duration, tz) if all_day else occ_start + duration
        if occ_start < window_end and occ_end > window_start:
            items.append(
                Instance(occurrence_id(event_id, key), "occurrence", occ_start, occ_end, key, occ_start)
            )
    for key, override in exceptions.items():
        if key in cancelled:
            continue
        original = original_start_of(key, tz_name, first_wall)
        ex_start, ex_end = _exception_bounds(fields, override, original, duration)
        if ex_start < window_end and ex_end > window_start:
            items.append(Instance(occurrence_id(event_id, key), "exception", ex_start, ex_end, key, original))
    items.sort(key=lambda item: item.start)
    return items


def original_start_of(key: str, tz_name: str | None, first_wall: datetime) -> datetime:
    """The UTC original start an occurrence key stands for."""
    if "T" in key:
        return datetime.strptime(key, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    day = datetime.strptime(key, "%Y%m%d")
    return localize(day.replace(hour=first_wall.hour, minute=first_wall.minute), zone(tz_name))


def find_occurrence(
    event_id: str, fields: dict[str, Any], key: str, exceptions: dict[str, dict[str, Any]]
) -> Instance | None:
    """The occurrence (or exception) with this key, whether or not it is cancelled."""
    recurrence = fields.get("recurrence")
    if not recurrence:
        return None
    start, end = bounds(fields)
    tz_name = (recurrence.get("range") or {}).get("recurrenceTimeZone") or fields["start"].get("timeZone")
    tz = zone(tz_name)
    first_wall = start.astimezone(tz).replace(tzinfo=None)
    try:
        original = original_start_of(key, tz_name, first_wall)
    except ValueError:
        return None
    wall = original.astimezone(tz).replace(tzinfo=None)
    rule = _rule(recurrence, first_wall)
    hits = rule.between(wall - timedelta(minutes=1), wall + timedelta(minutes=1), inc=True)
    if not any(localize(hit, tz) == original for hit in hits):
        return None
    duration = end - start
    if key in exceptions:
        ex_start, ex_end = _exception_bounds(fields, exceptions[key], original, duration)
        return Instance(occurrence_id(event_id, key), "exception", ex_start, ex_end, key, original)
    occ_end = localize(wall + duration, tz) if fields.get("isAllDay") else original + duration
    return Instance(occurrence_id(event_id, key), "occurrence", original, occ_end, key, original)


def _exception_bounds(
    fields: dict[str, Any], override: dict[str, Any], original: datetime, duration: timedelta
) -> tuple[datetime, datetime]:
    """Where an exception lies: its own start/end when it moved, else its occurrence's slot
    (an exception that only changed, say, its subject stays where the occurrence was)."""
    changed = override.get("fields", {})
    if "start" in changed or "end" in changed:
        return bounds({**fields, **changed})
    return original, original + duration
