"""A provider-neutral view of synced events, and the dataset every provider must normalise alike.

:func:`occurrences` turns what a provider's ``sync_events`` returned into the occurrences a user
sees, keyed by their original start: masters are expanded (``RRULE`` minus ``EXDATE``, in the
series' zone, so a 09:00 meeting stays at 09:00 local across a DST change), exceptions replace
the occurrence they moved, cancelled instances remove it, and Microsoft's already-expanded
occurrences land on their own keys. Two providers holding the same calendar give equal views.

:data:`DATASET` is that calendar, described once (dated next year, see :class:`Dataset`): a
weekly series in Europe/Berlin across the March DST change with one moved and one cancelled
instance and four attendees with different responses, an all-day event of two days, an event in
America/New_York just after the US DST change, and one in UTC. Each driver writes it in its
provider's own terms.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil import rrule

from chronapilot.common.providers.sync import EventData, EventTime

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"

SERIES_TITLE = "Weekly planning"
SERIES_COUNT = 8  # Mondays, across the EU's March change to summer time
SERIES_MINUTES = 30
MOVED_WEEK = 2  # the third Monday moves from 09:00 to 11:00
CANCELLED_WEEK = 5  # the sixth Monday, after the change, is cancelled
MOVED_TITLE = "Weekly planning (moved)"
SERIES_LOCATION = "Room 1"
SERIES_DESCRIPTION = "Agenda in the shared doc"
#: (e-mail, name, response, optional)
ATTENDEES = (
    ("ann@example.com", "Ann", "accepted", False),
    ("bob@example.com", "Bob", "declined", False),
    ("cid@example.com", "Cid", "tentative", True),
    ("dee@example.com", "Dee", "needsAction", False),
)
ALL_DAY_TITLE = "Offsite"
NY_TITLE = "Call with New York"
NY_MINUTES = 60
UTC_TITLE = "UTC check"
UTC_MINUTES = 15


@dataclass(frozen=True)
class Dataset:
    """The dataset's dates for one year: every local time is a plain office hour (09:00, 10:00,
    11:00) on a weekday, hours away from any DST change, so adding a duration to a wall time is
    exact here; the series still crosses the EU change and the New York call falls on the day
    after the US change. Local times are naive walls in their zone (:func:`local` gives the
    instant)."""

    year: int
    series_first: datetime  # local, Europe/Berlin: the first Monday of March, 09:00
    moved_original: datetime
    moved_to: datetime
    cancelled_original: datetime
    all_day_first: date
    all_day_end: date  # exclusive
    ny_start: datetime  # local, America/New_York: the Monday after the second Sunday of March
    utc_start: datetime

    @classmethod
    def for_year(cls, year: int) -> Dataset:
        march = date(year, 3, 1)
        first_monday = march + timedelta(days=(7 - march.weekday()) % 7)
        second_sunday = march + timedelta(days=(6 - march.weekday()) % 7 + 7)
        series_first = datetime.combine(first_monday, time(9, 0))
        moved = series_first + timedelta(weeks=MOVED_WEEK)
        return cls(
            year=year,
            series_first=series_first,
            moved_original=moved,
            moved_to=moved.replace(hour=11),
            cancelled_original=series_first + timedelta(weeks=CANCELLED_WEEK),
            all_day_first=date(year, 4, 9),
            all_day_end=date(year, 4, 11),
            ny_start=datetime.combine(second_sunday + timedelta(days=1), time(10, 0)),
            utc_start=datetime(year, 3, 5, 12, 0, tzinfo=UTC),
        )

    @classmethod
    def for_day(cls, today: date) -> Dataset:
        """Next year's March and April: 2.5 to 15.5 months ahead, so inside every provider's sync
        window (Microsoft's calendar view: a year back, two ahead) whatever day the suite runs."""
        return cls.for_year(today.year + 1)

    def series_walls(self) -> list[datetime]:
        return [self.series_first + timedelta(weeks=week) for week in range(SERIES_COUNT)]


#: The dataset the drivers write today.
DATASET = Dataset.for_day(datetime.now(UTC).date())


def local(wall: datetime, zone: str) -> datetime:
    return wall.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


@dataclass(frozen=True)
class Occurrence:
    """What a user sees of one occurrence, whatever the provider."""

    title: str | None
    description: str | None
    location: str | None
    start: EventTime | None
    end: EventTime | None
    all_day: bool
    status: str
    attendees: frozenset[tuple[str, str, bool]]


def _timed(instant: datetime, zone: str) -> EventTime:
    return EventTime(date_time=instant, date=None, timezone=zone)


def expected_occurrences(dataset: Dataset = DATASET) -> dict[datetime | date, Occurrence]:
    """The occurrences ``dataset`` must normalise to, for every provider."""
    attendees = frozenset((email, response, optional) for email, _, response, optional in ATTENDEES)
    view: dict[datetime | date, Occurrence] = {}
    for wall in dataset.series_walls():
        if wall == dataset.cancelled_original:
            continue
        moved = wall == dataset.moved_original
        start_wall, title = (dataset.moved_to, MOVED_TITLE) if moved else (wall, SERIES_TITLE)
        view[local(wall, BERLIN)] = Occurrence(
            title,
            SERIES_DESCRIPTION,
            SERIES_LOCATION,
            _timed(local(start_wall, BERLIN), BERLIN),
            _timed(local(start_wall + timedelta(minutes=SERIES_MINUTES), BERLIN), BERLIN),
            False,
            "confirmed",
            attendees,
        )
    view[dataset.all_day_first] = Occurrence(
        ALL_DAY_TITLE,
        None,
        None,
        EventTime(None, dataset.all_day_first, None),
        EventTime(None, dataset.all_day_end, None),
        True,
        "confirmed",
        frozenset(),
    )
    ny = local(dataset.ny_start, NEW_YORK)
    view[ny] = Occurrence(
        NY_TITLE,
        None,
        None,
        _timed(ny, NEW_YORK),
        _timed(ny + timedelta(minutes=NY_MINUTES), NEW_YORK),
        False,
        "confirmed",
        frozenset(),
    )
    view[dataset.utc_start] = Occurrence(
        UTC_TITLE,
        None,
        None,
        _timed(dataset.utc_start, "UTC"),
        _timed(dataset.utc_start + timedelta(minutes=UTC_MINUTES), "UTC"),
        False,
        "confirmed",
        frozenset(),
    )
    return view


def _key(time: EventTime | None) -> datetime | date:
    assert time is not None
    if time.date_time is not None:
        return time.date_time
    assert time.date is not None
    return time.date


def _occurrence(event: EventData, start: EventTime | None = None, end: EventTime | None = None) -> Occurrence:
    return Occurrence(
        event.title,
        event.description,
        event.location,
        start or event.start,
        end or event.end,
        event.all_day,
        event.status,
        frozenset((a.email, a.response_status, a.optional) for a in event.attendees),
    )


def _expand(master: EventData) -> dict[datetime | date, Occurrence]:
    assert master.start is not None and master.end is not None
    if master.all_day:
        assert master.start.date is not None and master.end.date is not None
        first = datetime.combine(master.start.date, datetime.min.time())
        length = master.end.date - master.start.date
        zone = ZoneInfo("UTC")
    else:
        assert master.start.date_time is not None and master.end.date_time is not None
        zone = ZoneInfo(master.start.timezone or "UTC")
        first = master.start.date_time.astimezone(zone).replace(tzinfo=None)
        length = master.end.date_time.astimezone(zone).replace(tzinfo=None) - first
    rules = rrule.rruleset()
    for line in master.recurrence:
        name, _, value = line.partition(":")
        kind, _, params = name.partition(";")
        if kind == "RRULE":
            rules.rrule(rrule.rrulestr(value, dtstart=first))
        elif kind == "EXDATE":
            tzid = next((p[5:] for p in params.split(";") if p.startswith("TZID=")), None)
            for item in value.split(","):
                rules.exdate(_exdate(item, tzid, zone))
    view: dict[datetime | date, Occurrence] = {}
    for wall in rules:
        if master.all_day:
            day = wall.date()
            view[day] = _occurrence(master, EventTime(None, day, None), EventTime(None, day + length, None))
        else:
            start = wall.replace(tzinfo=zone).astimezone(UTC)
            end = (wall + length).replace(tzinfo=zone).astimezone(UTC)
            zone_name = master.start.timezone or "UTC"
            view[start] = _occurrence(master, _timed(start, zone_name), _timed(end, zone_name))
    return view


def _exdate(value: str, tzid: str | None, zone: ZoneInfo) -> datetime:
    if len(value) == 8:
        return datetime.strptime(value, "%Y%m%d")
    if value.endswith("Z"):
        instant = datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        return instant.astimezone(zone).replace(tzinfo=None)
    wall = datetime.strptime(value, "%Y%m%dT%H%M%S")
    if tzid:
        return wall.replace(tzinfo=ZoneInfo(tzid)).astimezone(zone).replace(tzinfo=None)
    return wall


def occurrences(events: Iterable[EventData]) -> dict[datetime | date, Occurrence]:
    """The occurrences a user sees, keyed by original start (UTC instant, or date when all-day)."""
    events = list(events)
    view: dict[datetime | date, Occurrence] = {}
    for event in events:
        if event.recurrence:
            view.update(_expand(event))
        elif event.recurring_event_id is None and event.status != "cancelled":
            view[_key(event.start)] = _occurrence(event)
    for event in events:
        if event.recurring_event_id is None or event.recurrence:
            continue
        key = _key(event.original_start or event.start)
        if event.status == "cancelled":
            view.pop(key, None)
        else:
            view[key] = _occurrence(event)
    return view
