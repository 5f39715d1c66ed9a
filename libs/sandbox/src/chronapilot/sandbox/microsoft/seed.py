"""The sandbox OAuth app and the seeded demo account.

With a seed, `demo.microsoft@sandbox.chronapilot.dev` gets three calendars holding: a weekly
series in Europe/Berlin that crosses a daylight-saving change, with one occurrence moved and one
cancelled; a weekday series in America/New_York with a cancellation; a monthly series in
Europe/London; single and multi-day all-day events; a yearly all-day series; meetings in
Asia/Tokyo and UTC; an invitation organised by someone else; attendees with every response.
Dates are relative to the Monday of the current week (UTC), ids follow the seed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from .credentials import OAuthApp
from .recurrence import expand
from .state import MicrosoftState
from .times import format_local

SANDBOX_CLIENT_ID = "5d3b8a9e-2c41-4f7a-8e6b-c0a1b2c3d4e5"
SANDBOX_CLIENT_SECRET = "chronapilot-sandbox-microsoft-secret"
SANDBOX_APP_NAME = "ChronaPilot (sandbox)"
DEFAULT_REDIRECT_URIS = ["http://127.0.0.1:*", "http://localhost:*"]
DEMO_EMAIL = "demo.microsoft@sandbox.chronapilot.dev"
DEMO_PASSWORD = "demo-password"
DEMO_NAME = "Demo Microsoft"


def register_sandbox_app(state: MicrosoftState, redirect_uris: list[str] | None) -> OAuthApp:
    app = OAuthApp(
        SANDBOX_CLIENT_ID,
        SANDBOX_CLIENT_SECRET,
        SANDBOX_APP_NAME,
        list(redirect_uris or DEFAULT_REDIRECT_URIS),
    )
    state.identity.apps[app.client_id] = app
    return app


def _when(day: date, hour: int, minute: int = 0) -> str:
    return format_local(datetime(day.year, day.month, day.day, hour, minute))


def _slot(day: date, hour: int, minutes: int, tz: str, minute: int = 0) -> dict[str, Any]:
    start = datetime(day.year, day.month, day.day, hour, minute)
    return {
        "start": {"dateTime": format_local(start), "timeZone": tz},
        "end": {"dateTime": format_local(start + timedelta(minutes=minutes)), "timeZone": tz},
    }


def _all_day(day: date, days: int, tz: str = "UTC") -> dict[str, Any]:
    return {
        "isAllDay": True,
        "start": {"dateTime": _when(day, 0), "timeZone": tz},
        "end": {"dateTime": _when(day + timedelta(days=days), 0), "timeZone": tz},
        "showAs": "free",
    }


def _person(name: str, address: str) -> dict[str, Any]:
    return {"name": name, "address": address}


def _attendee(name: str, address: str, response: str, kind: str = "required") -> dict[str, Any]:
    stamp = "0001-01-01T00:00:00Z" if response == "none" else "2026-01-05T08:00:00Z"
    return {
        "type": kind,
        "status": {"response": response, "time": stamp},
        "emailAddress": _person(name, address),
    }


COLLEAGUES = [
    ("Ada Lovelace", "ada@sandbox.chronapilot.dev"),
    ("Grace Hopper", "grace@sandbox.chronapilot.dev"),
    ("Alan Turing", "alan@sandbox.chronapilot.dev"),
    ("Katherine Johnson", "katherine@sandbox.chronapilot.dev"),
]


def seed_demo(state: MicrosoftState, today: date | None = None) -> None:
    store = state.store
    user = store.add_user(DEMO_EMAIL, DEMO_NAME, DEMO_PASSWORD)
    me = _person(user.display_name, user.user_principal_name)
    default = store.default_calendar(user.id)
    work = store.add_calendar(user.id, "Work", color="lightBlue", hex_color="#0078d4")
    family = store.add_calendar(user.id, "Family", color="lightGreen", hex_color="#13a10e")
    now = today or datetime.now(UTC).date()
    monday = now - timedelta(days=now.weekday())
    team = [
        _attendee(n, a, r)
        for (n, a), r in zip(COLLEAGUES, ["accepted", "tentativelyAccepted", "declined", "none"], strict=True)
    ]

    standup = store.create_event(
        work.id,
        {
            "subject": "Team stand-up",
            "body": {"contentType": "html", "content": "<p>Daily sync. <b>Keep it short.</b></p>"},
            "location": {"displayName": "Berlin office, room 4.12"},
            "attendees": team,
            "organizer": {"emailAddress": me},
            **_slot(monday - timedelta(weeks=26), 9, 15, "Europe/Berlin"),
            "recurrence": {
                "pattern": {
                    "type": "weekly",
                    "interval": 1,
                    "daysOfWeek": ["monday", "wednesday", "friday"],
                    "firstDayOfWeek": "monday",
                },
                "range": {
                    "type": "noEnd",
                    "startDate": (monday - timedelta(weeks=26)).isoformat(),
                    "recurrenceTimeZone": "Europe/Berlin",
                },
            },
        },
    )
    occurrences = expand(
        standup.id,
        standup.fields,
        {},
        frozenset(),
        datetime.combine(monday, datetime.min.time(), UTC),
        datetime.combine(monday + timedelta(weeks=2), datetime.min.time(), UTC),
    )
    moved = occurrences[1]
    store.update_event(
        moved.item_id,
        {
            "subject": "Team stand-up (moved)",
            **_slot(monday + timedelta(days=2), 10, 15, "Europe/Berlin", 30),
        },
    )
    store.delete_event(occurrences[3].item_id)

    focus = store.create_event(
        default.id,
        {
            "subject": "Focus time",
            "showAs": "busy",
            "sensitivity": "private",
            **_slot(monday - timedelta(weeks=2), 14, 60, "Eastern Standard Time"),
            "recurrence": {
                "pattern": {
                    "type": "weekly",
                    "interval": 1,
                    "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                },
                "range": {
                    "type": "endDate",
                    "startDate": (monday - timedelta(weeks=2)).isoformat(),
                    "endDate": (monday + timedelta(weeks=10)).isoformat(),
                },
            },
        },
    )
    focus_items = expand(
        focus.id,
        focus.fields,
        {},
        frozenset(),
        datetime.combine(monday, datetime.min.time(), UTC),
        datetime.combine(monday + timedelta(days=7), datetime.min.time(), UTC),
    )
    store.delete_event(focus_items[2].item_id)

    store.create_event(
        work.id,
        {
            "subject": "Board review",
            "attendees": [
                _attendee(*COLLEAGUES[0], "accepted"),
                _attendee(*COLLEAGUES[1], "none", "optional"),
            ],
            **_slot(monday - timedelta(weeks=8), 16, 90, "GMT Standard Time"),
            "recurrence": {
                "pattern": {
                    "type": "relativeMonthly",
                    "interval": 1,
                    "daysOfWeek": ["tuesday"],
                    "index": "first",
                },
                "range": {
                    "type": "numbered",
                    "startDate": (monday - timedelta(weeks=8)).isoformat(),
                    "numberOfOccurrences": 12,
                },
            },
        },
    )
    store.create_event(
        work.id,
        {
            "subject": "Company offsite",
            "location": {"displayName": "Lake house"},
            **_all_day(monday + timedelta(days=10), 2),
        },
    )
    store.create_event(
        family.id, {"subject": "Public holiday", **_all_day(monday + timedelta(days=4), 1, "Europe/Berlin")}
    )
    birthday = monday + timedelta(days=12)
    store.create_event(
        family.id,
        {
            "subject": "Ada's birthday",
            **_all_day(birthday, 1),
            "recurrence": {
                "pattern": {
                    "type": "absoluteYearly",
                    "interval": 1,
                    "month": birthday.month,
                    "dayOfMonth": birthday.day,
                },
                "range": {"type": "noEnd", "startDate": birthday.isoformat()},
            },
        },
    )
    store.create_event(
        default.id,
        {
            "subject": "Call with the Tokyo office",
            "attendees": [_attendee(*COLLEAGUES[2], "accepted")],
            **_slot(monday + timedelta(days=1), 9, 45, "Asia/Tokyo"),
        },
    )
    store.create_event(
        family.id,
        {
            "subject": "Dentist",
            "location": {"displayName": "Dr. Smile"},
            **_slot(monday + timedelta(days=3), 7, 30, "UTC"),
        },
    )
    store.create_event(
        default.id,
        {
            "subject": "Architecture review (invitation)",
            "organizer": {"emailAddress": _person(*COLLEAGUES[1])},
            "attendees": [
                _attendee(*COLLEAGUES[1], "organizer"),
                _attendee(user.display_name, user.user_principal_name, "tentativelyAccepted"),
                _attendee(*COLLEAGUES[3], "accepted", "optional"),
                _attendee("Room Everest", "everest@sandbox.chronapilot.dev", "accepted", "resource"),
            ],
            **_slot(monday + timedelta(days=8), 11, 60, "Pacific Standard Time"),
        },
    )
    zones = ["Europe/Berlin", "America/Los_Angeles", "UTC", "Asia/Kolkata", "Australia/Sydney"]
    for index in range(12):
        day = monday + timedelta(days=store.rng.randint(-40, 60))
        store.create_event(
            default.id if index % 2 else work.id,
            {
                "subject": f"Meeting {index + 1}",
                **_slot(
                    day, store.rng.randint(8, 17), 30 * store.rng.randint(1, 4), zones[index % len(zones)]
                ),
            },
        )
