"""Free/busy: which mirrored events block a user's time, and the merged busy intervals.

Pure functions over stored event documents and their occurrences (no I/O); the API reads the
documents and renders the result. The rules, the same for every provider:

- an occurrence blocks time unless it is cancelled (the expansion already leaves out cancelled
  and deleted events and a series' cancelled instances), transparent (``transparency``: Google
  "Available", iCalendar ``TRANSP:TRANSPARENT``, Graph ``showAs`` ``free`` or
  ``workingElsewhere``), or declined by the calendar's owner (an exception by its own answer);
  tentative events and unanswered invitations block time;
- the owner's answer is ``own_response`` when the provider said it (Google's attendee flagged
  ``self``, and ``needsAction`` when it lists attendees but flags none: only ``self`` says
  whose copy it is; Graph's ``responseStatus``), else that of the attendee whose e-mail is the
  connection's account e-mail (CalDAV, and events mirrored before ``own_response`` existed);
- a timed occurrence blocks [start, end); one without a duration blocks nothing;
- an all-day occurrence blocks its dates from midnight to midnight (end exclusive) in a time
  zone the caller chooses (the API: the request's ``timezone``, else the calendar's, else UTC):
  a date is not an instant until a zone is chosen; a floating occurrence (a CalDAV time
  without TZID, mirrored as its wall time read as UTC) is not an instant either, and blocks
  its wall times in that same zone;
- intervals are clipped to the window, sorted, and merged where they overlap or touch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from chronapilot.common.occurrences import EARLIEST, LATEST, MAX_WINDOW, Occurrence, expand
from chronapilot.common.providers.sync import TRANSPARENT

DECLINED = "declined"
CANCELLED = "cancelled"
#: How far an all-day date or a floating time can lie from its UTC reading once read in a
#: time zone (UTC-12 to UTC+14), rounded up: the events are read over the window widened by
#: this each way.
ALL_DAY_REACH = timedelta(days=1)


@dataclass(frozen=True, order=True)
class Interval:
    """[start, end): aware UTC instants."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class Busy:
    """A merged busy interval and the calendars whose events make it busy (in the order the
    calendars were given)."""

    start: datetime
    end: datetime
    calendar_ids: tuple[str, ...]


def declined_by_owner(doc: Mapping[str, Any], account_email: str) -> bool:
    """The calendar's owner declined this event (see the module docstring)."""
    own = doc.get("own_response")
    if own is not None:
        return bool(own == DECLINED)
    email = account_email.casefold()
    return any(
        str(attendee.get("email") or "").casefold() == email and attendee.get("response_status") == DECLINED
        for attendee in doc.get("attendees") or ()
    )


def blocks_time(occurrence: Occurrence, account_email: str) -> bool:
    """Whether ``occurrence`` makes its calendar's owner busy."""
    doc = occurrence.source  # the exception's own document for a modified instance
    return not (
        occurrence.status == CANCELLED
        or doc.get("transparency") == TRANSPARENT
        or declined_by_owner(doc, account_email)
    )


def day_start(day: date, zone: tzinfo) -> datetime:
    """Midnight at the start of ``day`` in ``zone``, as a UTC instant."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def wall_time(floating: datetime, zone: tzinfo) -> datetime:
    """A floating time (its wall time read as UTC) at that wall time in ``zone``, as a UTC
    instant (in the spring gap: as the offset before it reads it)."""
    return floating.replace(tzinfo=zone).astimezone(UTC)


def span(occurrence: Occurrence, all_day_zone: tzinfo) -> Interval:
    """The instants ``occurrence`` covers; an all-day one's dates and a floating one's wall
    times read in ``all_day_zone``."""
    if occurrence.floating:
        return Interval(
            wall_time(occurrence.start_at, all_day_zone), wall_time(occurrence.end_at, all_day_zone)
        )
    first_day = occurrence.start.get("date")
    if not first_day:
        return Interval(occurrence.start_at, occurrence.end_at)
    first = date.fromisoformat(str(first_day))
    end_day = occurrence.end.get("date")
    last = date.fromisoformat(str(end_day)) if end_day else first + timedelta(days=1)
    return Interval(
        day_start(first, all_day_zone), day_start(max(last, first + timedelta(days=1)), all_day_zone)
    )


def occurrences_around(docs: Sequence[Mapping[str, Any]], window: Interval) -> list[Occurrence]:
    """The occurrences of one calendar's ``docs`` that may fall in ``window`` once their all-day
    dates are placed in any zone: :func:`~chronapilot.common.occurrences.expand` (which places
    them at midnight UTC) over the window widened by :data:`ALL_DAY_REACH` each way, in pieces
    of at most :data:`~chronapilot.common.occurrences.MAX_WINDOW`, each occurrence once;
    nothing before :data:`~chronapilot.common.occurrences.EARLIEST` or after
    :data:`~chronapilot.common.occurrences.LATEST` is read."""
    found: dict[str, Occurrence] = {}
    start = max(window.start, EARLIEST + ALL_DAY_REACH) - ALL_DAY_REACH
    end = min(window.end, LATEST - ALL_DAY_REACH) + ALL_DAY_REACH
    while start < end:
        stop = min(start + MAX_WINDOW, end)
        for occurrence in expand(docs, start, stop):
            found.setdefault(occurrence.id, occurrence)
        start = stop
    return list(found.values())


def busy_intervals(
    occurrences: Iterable[Occurrence], window: Interval, *, account_email: str, all_day_zone: tzinfo
) -> list[Interval]:
    """One calendar's busy time inside ``window``: merged, sorted."""
    spans = (span(o, all_day_zone) for o in occurrences if blocks_time(o, account_email))
    return merge(clip(s, window) for s in spans)


def clip(interval: Interval, window: Interval) -> Interval:
    return Interval(max(interval.start, window.start), min(interval.end, window.end))


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, with overlapping and touching intervals merged; empty ones dropped."""
    return [Interval(b.start, b.end) for b in merge_calendars({"": list(intervals)})]


def merge_calendars(busy: Mapping[str, Sequence[Interval]]) -> list[Busy]:
    """Every calendar's busy intervals merged into one sorted list, each with the calendars
    that contribute to it (in ``busy``'s order)."""
    rank = {calendar_id: n for n, calendar_id in enumerate(busy)}
    labelled = sorted(
        (interval, calendar_id)
        for calendar_id, intervals in busy.items()
        for interval in intervals
        if interval.end > interval.start
    )
    merged: list[tuple[datetime, datetime, set[str]]] = []
    for interval, calendar_id in labelled:
        if merged and interval.start <= merged[-1][1]:
            start, end, calendars = merged[-1]
            merged[-1] = (start, max(end, interval.end), calendars | {calendar_id})
        else:
            merged.append((interval.start, interval.end, {calendar_id}))
    return [
        Busy(start, end, tuple(sorted(calendars, key=rank.__getitem__))) for start, end, calendars in merged
    ]
