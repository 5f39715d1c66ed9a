"""Expanding recurring masters (RFC 5545 ``RRULE``/``RDATE``/``EXDATE``/``EXRULE``) into instances.

Timed series recur in the master's own ``timeZone`` (so 09:00 stays 09:00 across a DST change);
all-day series recur by date. Instance ids are ``<masterId>_<yyyymmddThhmmssZ>`` (timed, UTC)
or ``<masterId>_<yyyymmdd>`` (all-day). Series without an end are expanded up to a horizon the
caller passes, and never beyond ``MAX_INSTANCES`` instances.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from dateutil.rrule import rruleset, rrulestr

from chronapilot.sandbox.google.errors import ApiError, required_field
from chronapilot.sandbox.google.event_times import EventTime, read_event_time, zone

MAX_INSTANCES = 1000
_DATE_ONLY_UNTIL = re.compile(r"UNTIL=(\d{8})(?=;|$)")


@dataclass(frozen=True)
class Occurrence:
    """One instance of a series: its original start, and its start and end."""

    original_start: EventTime
    start: EventTime
    end: EventTime


def instance_id(master_id: str, original_start: EventTime) -> str:
    """The id Google gives the instance starting at ``original_start``."""
    value = original_start.value
    if isinstance(value, datetime):
        return f"{master_id}_{value.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    return f"{master_id}_{value.strftime('%Y%m%d')}"


def _series_anchor(start: EventTime, calendar_zone: str) -> datetime:
    if isinstance(start.value, datetime):
        return start.value.astimezone(zone(start.time_zone or calendar_zone))
    return datetime.combine(start.value, time())


@lru_cache(maxsize=1024)
def _rule_set(lines: tuple[str, ...], anchor: datetime) -> rruleset:
    """The series as a dateutil rule set; dates in ``RDATE``/``EXDATE`` are read here, with
    their ``TZID`` (dateutil refuses ``TZID`` on ``RDATE`` and upper-cases zone names)."""
    rules = rruleset()
    for line in lines:
        name, _, value = line.strip().partition(":")
        prop, *parameters = name.split(";")
        prop = prop.upper()
        if prop in ("RRULE", "EXRULE"):
            rule = rrulestr(_until_for(value, anchor), dtstart=anchor)
            (rules.rrule if prop == "RRULE" else rules.exrule)(rule)
        elif prop in ("RDATE", "EXDATE"):
            options = dict(parameter.split("=", 1) for parameter in parameters if "=" in parameter)
            for item in value.split(","):
                moment = _date_value(item.strip(), options, anchor)
                (rules.rdate if prop == "RDATE" else rules.exdate)(moment)
        else:
            raise ValueError(f"unsupported recurrence line {line!r}")
    return rules


def _until_for(rule: str, anchor: datetime) -> str:
    """Make ``UNTIL`` comparable with the anchor (UTC for timed series, local for all-day)."""
    if anchor.tzinfo is not None:
        return _DATE_ONLY_UNTIL.sub(r"UNTIL=\1T235959Z", rule)
    return re.sub(r"UNTIL=(\d{8})(T\d{6}Z?)?", r"UNTIL=\1T235959", rule)


def _date_value(text: str, options: dict[str, str], anchor: datetime) -> datetime:
    """One ``RDATE``/``EXDATE`` value as a datetime comparable with the series' anchor."""
    if options.get("VALUE") == "DATE" or len(text) == 8:
        day = datetime.strptime(text[:8], "%Y%m%d")
        return day.replace(hour=anchor.hour, minute=anchor.minute, tzinfo=anchor.tzinfo)
    if anchor.tzinfo is None:
        return datetime.strptime(text[:8], "%Y%m%d")
    local = datetime.strptime(text.rstrip("Z"), "%Y%m%dT%H%M%S")
    if text.endswith("Z"):
        return local.replace(tzinfo=UTC).astimezone(anchor.tzinfo)
    return local.replace(tzinfo=zone(options["TZID"]) if "TZID" in options else anchor.tzinfo)


def validate_recurrence(lines: Any, start: EventTime, calendar_zone: str) -> None:
    """Raise a 400 :class:`ApiError` unless ``lines`` is a usable recurrence for ``start``."""
    if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
        raise ApiError(400, "invalid", "Invalid recurrence rule.")
    if isinstance(start.value, datetime) and start.time_zone is None:
        raise required_field("Missing time zone definition for start time.")
    try:
        rules = _rule_set(tuple(lines), _series_anchor(start, calendar_zone))
        next(iter(rules), None)
    except (ValueError, TypeError, KeyError):
        raise ApiError(400, "invalid", "Invalid recurrence rule.") from None


def _from_anchor(value: datetime, start: EventTime) -> EventTime:
    if isinstance(start.value, datetime):
        return EventTime(value, start.time_zone)
    return EventTime(value.date(), start.time_zone)


def _exactly_after(value: datetime, duration: timedelta) -> datetime:
    """``value`` plus ``duration`` in exact time (Google keeps an instance's length across
    DST: 23:00-05:00 is six hours on the change's night too); all-day: in days."""
    if value.tzinfo is None:
        return value + duration
    return (value.astimezone(UTC) + duration).astimezone(value.tzinfo)


def occurrences(
    master: dict[str, Any],
    calendar_zone: str,
    *,
    window_start: datetime | None,
    window_end: datetime | None,
    horizon_end: datetime,
) -> Iterator[Occurrence]:
    """Instances of ``master`` overlapping ``[window_start, window_end)``, in start order."""
    start = read_event_time(master["start"], "start")
    end = read_event_time(master["end"], "end")
    duration = _as_datetime(end.value) - _as_datetime(start.value)
    anchor = _series_anchor(start, calendar_zone)
    rules = _rule_set(tuple(master.get("recurrence", ())), anchor)
    limit = min(window_end, horizon_end) if window_end else horizon_end
    local_limit = limit.astimezone(anchor.tzinfo) if anchor.tzinfo else _naive_local(limit, calendar_zone)
    if window_start is None:
        candidates = iter(rules)
    else:
        after = window_start - duration
        after_local = after.astimezone(anchor.tzinfo) if anchor.tzinfo else _naive_local(after, calendar_zone)
        candidates = rules.xafter(after_local, inc=False)
    for count, value in enumerate(candidates):
        if value >= local_limit or count >= MAX_INSTANCES:
            return
        original = _from_anchor(value, start)
        yield Occurrence(original, original, _from_anchor(_exactly_after(value, duration), start))


def find_occurrence(master: dict[str, Any], event_id: str, calendar_zone: str) -> Occurrence | None:
    """The instance of ``master`` whose id is ``event_id``, if the series has one."""
    suffix = event_id.removeprefix(f"{master['id']}_")
    try:
        if "T" in suffix:
            moment = datetime.strptime(suffix, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            window_start = moment - timedelta(seconds=1)
        else:
            day = datetime.strptime(suffix, "%Y%m%d").date()
            moment = datetime.combine(day, time(), zone(calendar_zone)).astimezone(UTC)
            window_start = moment - timedelta(days=2)
    except ValueError:
        return None
    horizon = moment + timedelta(days=2)
    for occurrence in occurrences(
        master, calendar_zone, window_start=window_start, window_end=horizon, horizon_end=horizon
    ):
        if instance_id(master["id"], occurrence.original_start) == event_id:
            return occurrence
    return None


def instance_resource(master: dict[str, Any], occurrence: Occurrence, calendar_zone: str) -> dict[str, Any]:
    """The Event an unmodified instance is served as."""
    resource = {key: value for key, value in master.items() if key != "recurrence"}
    resource["id"] = instance_id(master["id"], occurrence.original_start)
    resource["recurringEventId"] = master["id"]
    resource["originalStartTime"] = _original_start_json(master, occurrence.original_start, calendar_zone)
    resource["start"] = occurrence.start.to_json(calendar_zone)
    resource["end"] = occurrence.end.to_json(calendar_zone)
    return resource


def _original_start_json(master: dict[str, Any], original: EventTime, calendar_zone: str) -> dict[str, Any]:
    shown = original.to_json(calendar_zone)
    time_zone = master.get("start", {}).get("timeZone")
    if time_zone and "dateTime" in shown:
        shown["timeZone"] = time_zone
    return shown


def _as_datetime(value: date | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.combine(value, time())


def _naive_local(instant: datetime, calendar_zone: str) -> datetime:
    return instant.astimezone(zone(calendar_zone)).replace(tzinfo=None)
