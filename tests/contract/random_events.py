"""Random timed events for the big-calendar tests and benches, correct on any day.

Two rules make them so, whatever "now" is and whatever the zone:

- **Durations are added on absolute time.** ``start + timedelta(minutes=90)`` on an aware
  datetime in a zone adds *wall* time: across a DST change the result is off by the change (in
  Pacific/Chatham a 15-minute event ended 45 minutes before it began). :func:`end_after` adds in
  UTC and converts back, so the event lasts exactly what was asked.
- **Every wall time names exactly one instant.** A zone's overlap hour (the clocks go back) shows
  the same wall time twice, and a writer that sends wall times (Graph's ``dateTime`` +
  ``timeZone``, iCalendar's ``TZID``) cannot say which one it means; its gap hour (the clocks go
  forward) never happens. Start times come from instants, so they are never in a gap; a slot whose
  start or end would fall in an overlap moves forward by a quarter of an hour until neither does
  (:func:`slot`). Events that *cross* a change (start before, end after) stay: they are the
  interesting ones.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

#: The zones the big calendars use: whole, half-hour and 45-minute offsets, DST north and south,
#: a 30-minute DST shift (Lord Howe) and a zone without DST (Kolkata).
ZONES = (
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/Sao_Paulo",
)
DURATIONS = (15, 30, 60, 90)  # minutes
DAYS_BACK, DAYS_AHEAD = 200, 400  # where random events fall, relative to now
STEP = timedelta(minutes=15)


@dataclass(frozen=True)
class Slot:
    """An event's start and end, aware datetimes in the event's zone, ``minutes`` apart."""

    start: datetime
    end: datetime
    minutes: int


def end_after(start: datetime, minutes: float) -> datetime:
    """``start`` plus ``minutes`` of real time, shown in ``start``'s zone."""
    assert start.tzinfo is not None, "an aware start"
    return (start.astimezone(UTC) + timedelta(minutes=minutes)).astimezone(start.tzinfo)


def unambiguous(value: datetime) -> bool:
    """True when ``value``'s wall time in its zone names one instant (neither overlap nor gap)."""
    wall = value.replace(tzinfo=None)
    return (
        wall.replace(tzinfo=value.tzinfo, fold=0).utcoffset()
        == wall.replace(tzinfo=value.tzinfo, fold=1).utcoffset()
    )


def slot(instant: datetime, zone: ZoneInfo, minutes: int) -> Slot:
    """An event of ``minutes`` starting at ``instant`` (or the first quarter hour after it whose
    start and end both have unambiguous wall times), shown in ``zone``."""
    start = instant.astimezone(zone)
    for _ in range(4 * 24):  # overlaps last an hour or two; a day is far beyond any zone's
        end = end_after(start, minutes)
        if unambiguous(start) and unambiguous(end):
            return Slot(start, end, minutes)
        start = (start.astimezone(UTC) + STEP).astimezone(zone)
    raise AssertionError(f"no unambiguous slot near {instant} in {zone}")


def random_slot(rng: random.Random, now: datetime) -> Slot:
    """A random event between :data:`DAYS_BACK` days before ``now`` and :data:`DAYS_AHEAD` after,
    on a quarter hour of ``now``'s hour, in one of :data:`ZONES`."""
    base = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    zone = ZoneInfo(rng.choice(ZONES))
    offset = timedelta(days=rng.randint(-DAYS_BACK, DAYS_AHEAD), minutes=15 * rng.randint(0, 60))
    return slot(base + offset, zone, rng.choice(DURATIONS))


def hourly_slots(now: datetime, total: int, *, days_back: int = 100, minutes: int = 30) -> list[Slot]:
    """``total`` UTC events, one an hour from ``days_back`` days before ``now`` (the benches')."""
    base = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=days_back)
    return [slot(base + timedelta(hours=n), ZoneInfo("UTC"), minutes) for n in range(total)]
