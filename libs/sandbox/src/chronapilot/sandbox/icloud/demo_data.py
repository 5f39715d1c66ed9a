"""The demo iCloud account's calendars and events, as iCalendar documents ready to PUT.

Deterministic: the same `seed` and `anchor` (the Monday the data is built around) give the same
bytes. Two VEVENT calendars and one VTODO-only list (a legacy Reminders list, which ChronaPilot
must skip). The events cover what a sync has to get right (providers.md 3.6):

- a weekday series in America/New_York with `EXDATE`s and `RECURRENCE-ID` overrides (one moved,
  one renamed), all in one resource;
- a weekly Europe/Berlin series that crosses a daylight-saving change, so its UTC time shifts;
- all-day events (`VALUE=DATE`, exclusive `DTEND`), one of them yearly;
- events in Asia/Tokyo, Asia/Kolkata (+05:30), Australia/Sydney, America/Los_Angeles and UTC,
  each zone with its `VTIMEZONE`;
- an organizer and attendees with every `PARTSTAT`, both as organizer and as invitee;
- an Apple-style alarm (`X-WR-ALARMUID`, `X-APPLE-DEFAULT-ALARM`) to round-trip;
- a few seed-chosen filler events.

Every timed VEVENT has a `DTEND` (iCloud rejects one without, providers.md 3.7). Resource names
are random UUIDs unrelated to the UIDs, as Apple's are.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar

PRODID = "-//ChronaPilot//Sandbox iCloud seed//EN"
_VTIMEZONE_SPAN = (timedelta(days=-400), timedelta(days=3 * 366))


@dataclass(frozen=True)
class DemoCalendar:
    """A collection to MKCALENDAR under the user's home: `/<email>/<slug>/`."""

    slug: str
    display_name: str
    component: str
    color: str
    order: int


@dataclass(frozen=True)
class DemoResource:
    """One calendar object resource: `PUT /<email>/<calendar_slug>/<name>`."""

    calendar_slug: str
    name: str
    uid: str
    summary: str
    ical: bytes


@dataclass(frozen=True)
class DemoDataset:
    calendars: tuple[DemoCalendar, ...]
    resources: tuple[DemoResource, ...]


HOME = DemoCalendar("home", "Home", "VEVENT", "#34AADCFF", 1)
WORK = DemoCalendar("work", "Work", "VEVENT", "#FF2968FF", 2)
REMINDERS = DemoCalendar("reminders", "Reminders", "VTODO", "#FF9500FF", 3)

_COLLEAGUES = (
    ("Amara Okafor", "amara.okafor@example.com"),
    ("Jonas Weber", "jonas.weber@example.de"),
    ("Mei Tanaka", "mei.tanaka@example.jp"),
    ("Priya Raman", "priya.raman@example.in"),
    ("Liam O'Brien", "liam.obrien@example.com.au"),
)
_FILLER_TITLES = (
    "Coffee with a friend",
    "Book club",
    "Piano lesson",
    "Grocery run",
    "Gym",
    "Call parents",
    "Haircut",
    "Bike repair",
    "Cinema",
    "Volunteer shift",
)
_FILLER_ZONES = ("Europe/London", "Europe/Berlin", "America/New_York", "America/Los_Angeles", "Asia/Tokyo")


def week_anchor(today: date) -> date:
    """The Monday of `today`'s week: the default anchor of the demo data."""
    return today - timedelta(days=today.weekday())


def build_demo_dataset(*, owner_email: str, owner_name: str, seed: int, anchor: date) -> DemoDataset:
    """Every calendar and resource of the demo account, built around the Monday `anchor`."""
    builder = _Builder(owner_email=owner_email, owner_name=owner_name, rng=random.Random(seed), anchor=anchor)
    resources = (
        builder.standup_series(),
        builder.dst_crossing_series(),
        builder.planning_in_tokyo(),
        builder.vendor_review_in_kolkata(),
        builder.call_with_sydney(),
        builder.release_window_utc(),
        builder.offsite_all_day(),
        builder.birthday_yearly(),
        builder.public_holiday(),
        builder.dentist_in_los_angeles(),
        *builder.fillers(count=6),
        *builder.reminders(),
    )
    return DemoDataset(calendars=(HOME, WORK, REMINDERS), resources=resources)


class _Builder:
    def __init__(self, *, owner_email: str, owner_name: str, rng: random.Random, anchor: date) -> None:
        self.owner_email = owner_email
        self.owner_name = owner_name
        self.rng = rng
        self.anchor = anchor
        self.stamp = datetime.combine(anchor - timedelta(days=7), time(8, 0), tzinfo=UTC)

    # -- the Work calendar ----------------------------------------------------------------

    def standup_series(self) -> DemoResource:
        """Weekdays for four weeks; two days excluded, one instance moved, one renamed."""
        tz = ZoneInfo("America/New_York")
        first = datetime.combine(self.anchor, time(9, 30), tzinfo=tz)
        days = [d for d in (self.anchor + timedelta(days=i) for i in range(28)) if d.weekday() < 5]
        master = self._event("Daily standup", first, timedelta(minutes=15), location="Zoom")
        master.add("rrule", {"FREQ": "WEEKLY", "BYDAY": ["MO", "TU", "WE", "TH", "FR"], "COUNT": 20})
        master.add("exdate", [datetime.combine(days[3], time(9, 30), tzinfo=tz)])
        master.add("exdate", [datetime.combine(days[12], time(9, 30), tzinfo=tz)])
        self._invite(master, organizer_is_owner=True, people=_COLLEAGUES[:3])
        moved_from = datetime.combine(days[5], time(9, 30), tzinfo=tz)
        moved = self._event(
            "Daily standup",
            moved_from.replace(hour=11),
            timedelta(minutes=15),
            uid=str(master["uid"]),
            sequence=1,
        )
        moved.add("recurrence-id", moved_from)
        self._invite(moved, organizer_is_owner=True, people=_COLLEAGUES[:3])
        renamed_from = datetime.combine(days[9], time(9, 30), tzinfo=tz)
        renamed = self._event(
            "Daily standup: sprint demo",
            renamed_from,
            timedelta(minutes=45),
            uid=str(master["uid"]),
            sequence=1,
        )
        renamed.add("recurrence-id", renamed_from)
        self._invite(renamed, organizer_is_owner=True, people=_COLLEAGUES[:3])
        return self._resource(WORK, master, moved, renamed)

    def dst_crossing_series(self) -> DemoResource:
        """Weekly at 10:00 Berlin time, from 18 days before the offset change nearest the anchor."""
        tz = ZoneInfo("Europe/Berlin")
        change = _nearest_offset_change(tz, self.anchor)
        first = datetime.combine(change - timedelta(days=18), time(10, 0), tzinfo=tz)
        master = self._event("Team sync (Berlin)", first, timedelta(minutes=45), location="Room Spree")
        master.add("rrule", {"FREQ": "WEEKLY", "COUNT": 6})
        self._invite(master, organizer_is_owner=True, people=_COLLEAGUES[:2])
        self._alarm(master)
        return self._resource(WORK, master)

    def planning_in_tokyo(self) -> DemoResource:
        """Organized by someone else: the owner is an attendee who has accepted."""
        start = datetime.combine(self.anchor + timedelta(days=2), time(17, 0), tzinfo=ZoneInfo("Asia/Tokyo"))
        event = self._event("Quarterly planning", start, timedelta(hours=2), location="Tokyo office")
        self._invite(event, organizer_is_owner=False, people=_COLLEAGUES[2:4])
        return self._resource(WORK, event)

    def vendor_review_in_kolkata(self) -> DemoResource:
        start = datetime.combine(
            self.anchor + timedelta(days=3), time(15, 30), tzinfo=ZoneInfo("Asia/Kolkata")
        )
        return self._resource(WORK, self._event("Vendor review", start, timedelta(minutes=50)))

    def call_with_sydney(self) -> DemoResource:
        start = datetime.combine(
            self.anchor + timedelta(days=8), time(8, 0), tzinfo=ZoneInfo("Australia/Sydney")
        )
        event = self._event("Call with the Sydney office", start, timedelta(minutes=30))
        self._invite(event, organizer_is_owner=True, people=_COLLEAGUES[4:])
        return self._resource(WORK, event)

    def release_window_utc(self) -> DemoResource:
        start = datetime.combine(self.anchor + timedelta(days=4), time(22, 0), tzinfo=UTC)
        event = self._event("Release window", start, timedelta(hours=3))
        event.add("transp", "TRANSPARENT")
        return self._resource(WORK, event)

    def offsite_all_day(self) -> DemoResource:
        first = self.anchor + timedelta(days=15)
        return self._resource(WORK, self._all_day("Team offsite", first, days=2, location="Lisbon"))

    # -- the Home calendar ----------------------------------------------------------------

    def birthday_yearly(self) -> DemoResource:
        event = self._all_day("Alex's birthday", self.anchor + timedelta(days=9), days=1)
        event.add("rrule", {"FREQ": "YEARLY"})
        return self._resource(HOME, event)

    def public_holiday(self) -> DemoResource:
        return self._resource(HOME, self._all_day("Public holiday", self.anchor + timedelta(days=21), days=1))

    def dentist_in_los_angeles(self) -> DemoResource:
        start = datetime.combine(
            self.anchor + timedelta(days=1), time(8, 15), tzinfo=ZoneInfo("America/Los_Angeles")
        )
        event = self._event("Dentist", start, timedelta(minutes=40), location="Sunset Blvd 1")
        return self._resource(HOME, event)

    def fillers(self, *, count: int) -> list[DemoResource]:
        resources = []
        for _ in range(count):
            zone = ZoneInfo(self.rng.choice(_FILLER_ZONES))
            day = self.anchor + timedelta(days=self.rng.randrange(-14, 42))
            start = datetime.combine(day, time(self.rng.randrange(7, 21), self.rng.choice((0, 15, 30, 45))))
            duration = timedelta(minutes=self.rng.choice((30, 45, 60, 90, 120)))
            event = self._event(self.rng.choice(_FILLER_TITLES), start.replace(tzinfo=zone), duration)
            resources.append(self._resource(HOME, event))
        return resources

    # -- the Reminders list (VTODO only) --------------------------------------------------

    def reminders(self) -> list[DemoResource]:
        resources = []
        for offset, summary in ((1, "Renew passport"), (4, "Pay electricity bill"), (10, "Water plants")):
            todo = icalendar.Todo()
            todo.add("uid", self._uuid())
            todo.add("dtstamp", self.stamp)
            todo.add("summary", summary)
            todo.add("due", self.anchor + timedelta(days=offset))
            todo.add("status", "NEEDS-ACTION")
            resources.append(self._resource(REMINDERS, todo))
        return resources

    # -- building blocks ------------------------------------------------------------------

    def _event(
        self,
        summary: str,
        start: datetime,
        duration: timedelta,
        *,
        uid: str | None = None,
        location: str | None = None,
        sequence: int = 0,
    ) -> icalendar.Event:
        event = icalendar.Event()
        event.add("uid", uid or self._uuid())
        event.add("dtstamp", self.stamp)
        event.add("created", self.stamp)
        event.add("last-modified", self.stamp)
        event.add("summary", summary)
        event.add("dtstart", start)
        # on absolute time: `start + duration` would add wall time, wrong across a DST change
        event.add("dtend", (start.astimezone(UTC) + duration).astimezone(start.tzinfo))
        event.add("sequence", sequence)
        if location:
            event.add("location", location)
        return event

    def _all_day(
        self, summary: str, first: date, *, days: int, location: str | None = None
    ) -> icalendar.Event:
        event = icalendar.Event()
        event.add("uid", self._uuid())
        event.add("dtstamp", self.stamp)
        event.add("summary", summary)
        event.add("dtstart", first)
        event.add("dtend", first + timedelta(days=days))
        event.add("transp", "TRANSPARENT")
        if location:
            event.add("location", location)
        return event

    def _invite(
        self, event: icalendar.Event, *, organizer_is_owner: bool, people: tuple[tuple[str, str], ...]
    ) -> None:
        owner = (self.owner_name, self.owner_email)
        organizer = owner if organizer_is_owner else people[0]
        event.add("organizer", f"mailto:{organizer[1]}", parameters={"CN": organizer[0]})
        attendees = [owner, *people]
        statuses = ("ACCEPTED", "TENTATIVE", "DECLINED", "NEEDS-ACTION")
        for index, (name, email) in enumerate(attendees):
            partstat = "ACCEPTED" if (name, email) in (owner, organizer) else statuses[index % 4]
            event.add(
                "attendee",
                f"mailto:{email}",
                parameters={"CN": name, "PARTSTAT": partstat, "ROLE": "REQ-PARTICIPANT", "RSVP": "TRUE"},
            )

    def _alarm(self, event: icalendar.Event) -> None:
        alarm = icalendar.Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", "Reminder")
        alarm.add("trigger", timedelta(minutes=-10))
        alarm.add("uid", self._uuid())
        alarm.add("x-wr-alarmuid", str(alarm["uid"]))
        alarm.add("x-apple-default-alarm", "FALSE")
        event.add_component(alarm)

    def _resource(self, calendar: DemoCalendar, *components: icalendar.Component) -> DemoResource:
        document = icalendar.Calendar()
        document.add("prodid", PRODID)
        document.add("version", "2.0")
        document.add("calscale", "GREGORIAN")
        for component in components:
            document.add_component(component)
        first_day, last_day = (self.anchor + delta for delta in _VTIMEZONE_SPAN)
        document.add_missing_timezones(first_date=first_day, last_date=last_day)
        # VTIMEZONEs go first, as Apple writes them.
        document.subcomponents.sort(key=lambda c: c.name != "VTIMEZONE")
        return DemoResource(
            calendar_slug=calendar.slug,
            name=f"{self._uuid().upper()}.ics",
            uid=str(components[0]["uid"]),
            summary=str(components[0]["summary"]),
            ical=document.to_ical(),
        )

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))


def _nearest_offset_change(tz: ZoneInfo, anchor: date) -> date:
    """The day nearest `anchor` (within a year) whose UTC offset differs from the day before's."""
    for distance in range(1, 366):
        for day in (anchor - timedelta(days=distance - 1), anchor + timedelta(days=distance)):
            before = datetime.combine(day - timedelta(days=1), time(12), tzinfo=tz).utcoffset()
            if datetime.combine(day, time(12), tzinfo=tz).utcoffset() != before:
                return day
    raise ValueError(f"{tz.key} has no offset change within a year of {anchor}")
