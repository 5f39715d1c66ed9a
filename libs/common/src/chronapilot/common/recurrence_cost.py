"""What expanding a recurrence costs before the window is reached: ``recurring-ical-events``
(through dateutil) walks a rule from its DTSTART, an instance at a time, whatever the window.
Pure, no I/O; :mod:`chronapilot.common.occurrences` refuses an expansion that would walk too
far, and will not expand an all-day series that recurs more than once a day.

A rule's *spacing* is the shortest time between two of its instances: its FREQ's period times
INTERVAL, divided by the BYHOUR/BYMINUTE/BYSECOND values that expand it (``FREQ=DAILY;
BYHOUR=9,17``: twelve hours). Its *steps* up to a time are ``min(COUNT, (min(that time,
UNTIL) - DTSTART) / spacing)``: COUNT bounds them, but does not make a rule cheap.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import icalendar

__all__ = ["DAY", "recurs_within_a_day", "spacing", "steps"]

DAY = timedelta(days=1)
_PERIODS = {
    "SECONDLY": timedelta(seconds=1),
    "MINUTELY": timedelta(minutes=1),
    "HOURLY": timedelta(hours=1),
    "DAILY": DAY,
    "WEEKLY": timedelta(weeks=1),
    "MONTHLY": timedelta(days=28),
    "YEARLY": timedelta(days=365),
}
#: The BYxxx parts that multiply a period's instances when the period is longer than theirs.
_EXPANDING = (
    ("BYHOUR", timedelta(hours=1)),
    ("BYMINUTE", timedelta(minutes=1)),
    ("BYSECOND", timedelta(seconds=1)),
)


def steps(calendar: icalendar.Calendar, end: datetime) -> int:
    """How many instances the library may generate walking the rules (RRULE and EXRULE) of
    ``calendar``'s VEVENTs that recur more than once a day, from DTSTART to ``end`` (or
    UNTIL, or COUNT). Rules of at most one a day are not counted: from 1900, a daily rule is
    some 110,000 steps, a bounded cost."""
    total = 0
    for component in calendar.walk("VEVENT"):
        first = getattr(component.get("DTSTART"), "dt", None)
        if not isinstance(first, date):
            continue
        first_utc = _utc(first if isinstance(first, datetime) else datetime.combine(first, time(0)))
        for rule in _rules(component):
            apart = spacing(rule)
            if apart >= DAY:
                continue
            last = end
            for until in rule.get("UNTIL") or ():
                until = until if isinstance(until, datetime) else datetime.combine(until, time(0))
                last = min(last, _utc(until) + DAY)  # a floating UNTIL: a day of slack
            walked = max(0, int((last - first_utc) / apart) + 1)
            for count in rule.get("COUNT") or ():
                walked = min(walked, int(count))
            total += walked
    return total


def recurs_within_a_day(component: icalendar.cal.Component) -> bool:
    """An all-day VEVENT with a rule of more than one instance a day (a date has no time of
    day to place them at)."""
    first = getattr(component.get("DTSTART"), "dt", None)
    if not isinstance(first, date) or isinstance(first, datetime):
        return False
    return any(spacing(rule) < DAY for rule in _rules(component))


def spacing(rule: Any) -> timedelta:
    """The shortest time between two instances of ``rule`` (an icalendar ``vRecur``); an
    unknown FREQ: a day (the library refuses such a rule)."""
    period = _PERIODS.get(str((rule.get("FREQ") or [""])[0]).upper())
    if period is None:
        return DAY
    period *= max(int((rule.get("INTERVAL") or [1])[0]), 1)
    per_period = 1
    for part, unit in _EXPANDING:
        if unit < period:
            per_period *= max(len(rule.get(part) or ()), 1)
    return period / per_period


def _rules(component: icalendar.cal.Component) -> list[Any]:
    found: list[Any] = []
    for name in ("RRULE", "EXRULE"):
        value = component.get(name)
        found += [] if value is None else list(value) if isinstance(value, list) else [value]
    return found


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
