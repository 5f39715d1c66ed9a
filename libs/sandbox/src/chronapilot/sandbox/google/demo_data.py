"""The seeded demo account: deterministic for a given seed, rich enough to exercise a sync.

``DEMO_EMAIL`` / ``DEMO_PASSWORD`` sign in on the consent page. Three calendars (Europe/Berlin
primary, America/New_York team calendar, Asia/Tokyo travel calendar) hold: a DST-crossing weekly
series with a moved, a renamed and a cancelled instance; a daily series with a COUNT, crossing
the US DST change, with a cancelled instance; a monthly all-day series; single and multi-day
all-day events; events in Los Angeles, Kolkata and UTC; a flight starting and ending in different
zones; an invitation organised by someone else; attendees with every response status.
"""

from __future__ import annotations

import random
from typing import Any

from chronapilot.sandbox.google.event_log import EventLog
from chronapilot.sandbox.google.event_writes import EventWriter
from chronapilot.sandbox.google.store import Account, Calendar, GoogleStore

DEMO_EMAIL = "demo.google@sandbox.chronapilot.dev"
DEMO_PASSWORD = "sandbox-demo"
DEMO_NAME = "Dana Demo"
_BASE32HEX = "0123456789abcdefghijklmnopqrstuv"


def _event_id(rng: random.Random) -> str:
    return "".join(rng.choice(_BASE32HEX) for _ in range(26))


def _timed(local: str, zone: str) -> dict[str, str]:
    return {"dateTime": local, "timeZone": zone}


def seed_demo_account(store: GoogleStore, writer: EventWriter, seed: int) -> Account:
    """Create the demo account, its calendars and events."""
    rng = random.Random(seed)
    account = store.add_account(DEMO_EMAIL, DEMO_NAME, DEMO_PASSWORD, sub=str(rng.randrange(10**20, 10**21)))
    primary = store.add_calendar(
        account, Calendar(DEMO_EMAIL, account.sub, DEMO_EMAIL, "Europe/Berlin", EventLog())
    )
    team = store.add_calendar(
        account,
        Calendar(
            f"c_{rng.getrandbits(64):016x}@group.calendar.google.com",
            account.sub,
            "Team Operations",
            "America/New_York",
            EventLog(),
            description="Shared operations calendar",
            color_id="9",
            background_color="#7bd148",
        ),
    )
    travel = store.add_calendar(
        account,
        Calendar(
            f"c_{rng.getrandbits(64):016x}@group.calendar.google.com",
            account.sub,
            "Travel",
            "Asia/Tokyo",
            EventLog(),
            color_id="4",
            background_color="#fa573c",
        ),
    )
    _seed_primary(writer, primary, rng)
    _seed_team(writer, team, rng)
    _seed_travel(writer, travel, rng)
    return account


def _insert(writer: EventWriter, calendar: Calendar, rng: random.Random, body: dict[str, Any]) -> str:
    event = writer.insert(calendar, {"id": _event_id(rng), **body}, keep_organizer=True)
    return str(event["id"])


def _seed_primary(writer: EventWriter, calendar: Calendar, rng: random.Random) -> None:
    berlin = "Europe/Berlin"
    standup = _insert(
        writer,
        calendar,
        rng,
        {
            "summary": "Team stand-up",
            "location": "Room Spree",
            "start": _timed("2026-10-19T09:30:00", berlin),
            "end": _timed("2026-10-19T09:45:00", berlin),
            "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR"],
            "attendees": [
                {"email": DEMO_EMAIL, "displayName": DEMO_NAME, "responseStatus": "accepted"},
                {
                    "email": "alex.rivera@example.com",
                    "displayName": "Alex Rivera",
                    "responseStatus": "accepted",
                },
                {"email": "kim.lee@example.com", "displayName": "Kim Lee", "responseStatus": "tentative"},
                {"email": "sam.okafor@example.com", "responseStatus": "declined"},
            ],
        },
    )
    writer.patch(
        calendar,
        f"{standup}_20261028T083000Z",
        {"start": _timed("2026-10-28T10:00:00", berlin), "end": _timed("2026-10-28T10:15:00", berlin)},
    )
    writer.patch(calendar, f"{standup}_20261030T083000Z", {"summary": "Team stand-up (demo day)"})
    writer.delete(calendar, f"{standup}_20261102T083000Z")
    _insert(
        writer,
        calendar,
        rng,
        {
            "summary": "Christmas Eve (office closed)",
            "start": {"date": "2026-12-24"},
            "end": {"date": "2026-12-25"},
        },
    )
    _insert(
        writer,
        calendar,
        rng,
        {
            "summary": "CalDays conference",
            "location": "Lisbon",
            "start": {"date": "2026-11-16"},
            "end": {"date": "2026-11-19"},
            "transparency": "transparent",
        },
    )
    _insert(
        writer,
        calendar,
        rng,
        {
            "summary": "Call with the San Francisco office",
            "start": _timed("2026-11-10T17:00:00", "America/Los_Angeles"),
            "end": _timed("2026-11-10T17:30:00", "America/Los_Angeles"),
        },
    )
    _insert(
        writer,
        calendar,
        rng,
        {
            "summary": "Quarterly planning",
            "start": _timed("2026-11-12T14:00:00", berlin),
            "end": _timed("2026-11-12T16:00:00", berlin),
            "organizer": {"email": "alex.rivera@example.com", "displayName": "Alex Rivera"},
            "attendees": [
                {
                    "email": "alex.rivera@example.com",
                    "displayName": "Alex Rivera",
                    "responseStatus": "accepted",
                },
                {"email": DEMO_EMAIL, "displayName": DEMO_NAME, "responseStatus": "needsAction"},
            ],
        },
    )
    _insert(
        writer,
        calendar,
        rng,
        {
            "summary": "Pay rent",
            "start": {"date": "2026-11-01"},
            "end": {"date": "2026-11-02"},
            "recurrence": ["RRULE:FREQ=MONTHLY;BYMONTHDAY=1"],
            "visibility": "private",
        },
    )


def _seed_team(writer: EventWriter, calendar: Calendar, rng: random.Random) -> None:
    new_york = "America/New_York"
    handover = _insert(
        writer,
        calendar,
        rng,
        {
            "summary": "Ops handover",
            "start": _timed("2026-10-26T08:00:00", new_york),
            "end": _timed("2026-10-26T08:30:00", new_york),
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=30"],
        },
    )
    writer.delete(calendar, f"{handover}_20261103T130000Z")
    _insert(
        writer,
        calendar,
        rng,
        {
            "summary": "Vendor sync (Bengaluru)",
            "start": _timed("2026-11-11T19:30:00", "Asia/Kolkata"),
            "end": _timed("2026-11-11T20:00:00", "Asia/Kolkata"),
        },
    )
    _insert(
        writer,
        calendar,
        rng,
        {
            "summary": "Maintenance window",
            "start": {"dateTime": "2026-11-14T02:00:00Z", "timeZone": "UTC"},
            "end": {"dateTime": "2026-11-14T04:00:00Z", "timeZone": "UTC"},
            "transparency": "transparent",
        },
    )


def _seed_travel(writer: EventWriter, calendar: Calendar, rng: random.Random) -> None:
    _insert(
        writer,
        calendar,
        rng,
        {
            "summary": "Flight FRA → HND",
            "start": _timed("2026-11-20T13:30:00", "Europe/Berlin"),
            "end": _timed("2026-11-21T09:10:00", "Asia/Tokyo"),
        },
    )
    _insert(
        writer,
        calendar,
        rng,
        {"summary": "Trip to Tokyo", "start": {"date": "2026-11-21"}, "end": {"date": "2026-11-28"}},
    )
