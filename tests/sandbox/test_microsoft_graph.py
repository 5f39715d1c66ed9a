"""Graph subset of the Microsoft emulator: calendars, events, calendar-view delta, errors, throttling."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from test_microsoft_harness import (
    WINDOW,
    Emulator,
    calendar_id,
    running_emulator,
    running_receiver,
    timed_event,
)

from helpers import eventually


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with running_emulator() as emu:
        yield emu


@pytest.fixture
async def token(emulator: Emulator) -> str:
    return str((await emulator.sign_in())["access_token"])


async def test_calendars_list_the_demo_calendars(emulator: Emulator, token: str) -> None:
    status, body, _ = await emulator.graph("GET", "/me/calendars", token)
    assert status == 200
    names = [c["name"] for c in body["value"]]
    assert names == ["Calendar", "Family", "Work"]
    default = body["value"][0]
    assert default["isDefaultCalendar"] is True
    for key in (
        "id",
        "color",
        "hexColor",
        "changeKey",
        "canShare",
        "canViewPrivateItems",
        "canEdit",
        "owner",
    ):
        assert key in default
    assert default["owner"]["address"] == "demo.microsoft@sandbox.chronapilot.dev"


async def test_calendars_page_with_next_links(emulator: Emulator, token: str) -> None:
    status, body, _ = await emulator.graph("GET", "/me/calendars?$top=2", token)
    assert status == 200
    assert len(body["value"]) == 2
    status, rest, _ = await emulator.graph("GET", body["@odata.nextLink"], token)
    assert [c["name"] for c in rest["value"]] == ["Work"]
    assert "@odata.nextLink" not in rest


async def test_event_create_patch_delete(emulator: Emulator, token: str) -> None:
    work = await calendar_id(emulator, token, "Work")
    status, created, headers = await emulator.graph(
        "POST", f"/me/calendars/{work}/events", token, timed_event("Plan")
    )
    assert status == 201
    assert created["type"] == "singleInstance"
    assert created["subject"] == "Plan"
    assert created["start"] == {"dateTime": "2026-03-02T08:00:00.0000000", "timeZone": "UTC"}
    assert created["originalStartTimeZone"] == "Europe/Berlin"
    assert created["@odata.etag"] == f'W/"{created["changeKey"]}"'
    status, patched, _ = await emulator.graph(
        "PATCH", f"/me/events/{created['id']}", token, {"subject": "Plan B"}
    )
    assert status == 200
    assert patched["subject"] == "Plan B"
    assert patched["changeKey"] != created["changeKey"]
    status, shown, headers = await emulator.graph(
        "GET",
        f"/me/events/{created['id']}",
        token,
        headers={"Prefer": 'outlook.timezone="Pacific Standard Time"'},
    )
    assert shown["start"] == {"dateTime": "2026-03-02T00:00:00.0000000", "timeZone": "Pacific Standard Time"}
    assert headers["Preference-Applied"] == 'outlook.timezone="Pacific Standard Time"'
    status, _, _ = await emulator.graph("DELETE", f"/me/events/{created['id']}", token)
    assert status == 204
    status, body, _ = await emulator.graph("DELETE", f"/me/events/{created['id']}", token)
    assert status == 404
    assert body["error"]["code"] == "ErrorItemNotFound"


async def test_invalid_event_bodies_are_refused(emulator: Emulator, token: str) -> None:
    status, body, _ = await emulator.graph("POST", "/me/events", token, {"subject": "no times"})
    assert status == 400
    assert body["error"]["code"] == "ErrorInvalidParameter"
    bad_zone = timed_event("x", tz="Mars/Olympus")
    status, body, _ = await emulator.graph("POST", "/me/events", token, bad_zone)
    assert status == 400


async def test_read_only_consent_cannot_write(emulator: Emulator) -> None:
    token = await emulator.sign_in(scope="offline_access openid User.Read Calendars.Read")
    status, _, _ = await emulator.graph("GET", "/me/calendars", token["access_token"])
    assert status == 200
    status, body, _ = await emulator.graph("POST", "/me/events", token["access_token"], timed_event("nope"))
    assert status == 403
    assert body["error"]["code"] == "ErrorAccessDenied"


async def test_throttling_fault_answers_429_with_retry_after(emulator: Emulator, token: str) -> None:
    await emulator.admin(
        "POST", "faults", {"route": "/v1.0/me/calendars", "status": 429, "retry_after": 7, "times": 1}
    )
    status, body, headers = await emulator.graph("GET", "/me/calendars", token)
    assert status == 429
    assert headers["Retry-After"] == "7"
    assert body["error"]["code"] in ("ApplicationThrottled", "TooManyRequests")
    status, _, _ = await emulator.graph("GET", "/me/calendars", token)
    assert status == 200
    counters = await emulator.admin("GET", "counters")
    assert counters["requests"]["GET /v1.0/me/calendars"] == 2


async def test_calendar_view_lists_occurrences_and_exceptions(emulator: Emulator, token: str) -> None:
    work = await calendar_id(emulator, token, "Work")
    status, body, _ = await emulator.graph(
        "GET", f"/me/calendars/{work}/calendarView?{WINDOW}&$top=1000", token
    )
    assert status == 200
    kinds = {item["type"] for item in body["value"]}
    assert {"occurrence", "exception", "singleInstance"} <= kinds
    assert "seriesMaster" not in kinds


async def test_instances_of_a_series_and_attendee_defaults(emulator: Emulator, token: str) -> None:
    series = {
        **timed_event("Weekly", "2026-03-03"),
        "attendees": [{"emailAddress": {"address": "x@example.com", "name": "X"}}],
        "recurrence": {
            "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["tuesday"]},
            "range": {"type": "numbered", "startDate": "2026-03-03", "numberOfOccurrences": 4},
        },
    }
    status, master, _ = await emulator.graph("POST", "/me/events", token, series)
    assert status == 201
    assert master["type"] == "seriesMaster"
    assert master["attendees"][0]["type"] == "required"
    assert master["attendees"][0]["status"]["response"] == "none"
    status, body, _ = await emulator.graph("GET", f"/me/events/{master['id']}/instances?{WINDOW}", token)
    assert status == 200
    assert [i["type"] for i in body["value"]] == ["occurrence"] * 4
    assert {i["seriesMasterId"] for i in body["value"]} == {master["id"]}


async def test_mailbox_limits_throttle_with_retry_after_when_enabled(emulator: Emulator, token: str) -> None:
    await emulator.admin("PATCH", "settings", {"mailbox_requests_per_10_minutes": 2})
    statuses = [(await emulator.graph("GET", "/me", token))[0] for _ in range(3)]
    assert statuses == [200, 200, 429]
    status, body, headers = await emulator.graph("GET", "/me", token)
    assert status == 429 and body["error"]["code"] == "ApplicationThrottled"
    assert int(headers["Retry-After"]) > 0
    await emulator.admin("POST", "clock/advance", {"seconds": 601})
    assert (await emulator.graph("GET", "/me", token))[0] == 200
    await emulator.admin("PATCH", "settings", {"mailbox_requests_per_10_minutes": None})


async def test_mailbox_concurrency_limit(emulator: Emulator, token: str) -> None:
    await emulator.admin(
        "PATCH", "settings", {"mailbox_concurrency_limit": 1, "validation_timeout_seconds": 1.5}
    )
    async with running_receiver("silent") as slow_receiver:
        subscription = {
            "changeType": "created",
            "notificationUrl": slow_receiver.url,
            "resource": "me/events",
            "expirationDateTime": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        }
        # A subscription whose handshake hangs keeps one request in flight for 1.5 s.
        slow = asyncio.create_task(emulator.graph("POST", "/subscriptions", token, subscription))
        await eventually(lambda: slow_receiver.handshakes, timeout_s=2, interval_s=0.01)  # in flight
        status, _, headers = await emulator.graph("GET", "/me", token)
        assert status == 429
        assert headers["Retry-After"] == "1"
        assert (await slow)[0] == 400
    assert (await emulator.graph("GET", "/me", token))[0] == 200


async def test_rescheduling_a_series_drops_its_exceptions(emulator: Emulator, token: str) -> None:
    series = {
        **timed_event("Series", "2026-03-03"),
        "recurrence": {
            "pattern": {"type": "daily", "interval": 1},
            "range": {"type": "numbered", "startDate": "2026-03-03", "numberOfOccurrences": 3},
        },
    }
    _, master, _ = await emulator.graph("POST", "/me/events", token, series)
    _, body, _ = await emulator.graph("GET", f"/me/events/{master['id']}/instances?{WINDOW}", token)
    first, second, _third = (i["id"] for i in body["value"])
    await emulator.graph("PATCH", f"/me/events/{first}", token, {"subject": "Special"})
    await emulator.graph("DELETE", f"/me/events/{second}", token)
    _, body, _ = await emulator.graph("GET", f"/me/events/{master['id']}/instances?{WINDOW}", token)
    assert [i["type"] for i in body["value"]] == ["exception", "occurrence"]
    later = {
        "start": {"dateTime": "2026-03-03T11:00:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2026-03-03T12:00:00", "timeZone": "Europe/Berlin"},
    }
    status, _, _ = await emulator.graph("PATCH", f"/me/events/{master['id']}", token, later)
    assert status == 200
    _, body, _ = await emulator.graph("GET", f"/me/events/{master['id']}/instances?{WINDOW}", token)
    assert [i["type"] for i in body["value"]] == ["occurrence"] * 3
    assert {i["start"]["dateTime"][11:16] for i in body["value"]} == {"10:00"}


async def test_the_default_calendar_paths(emulator: Emulator, token: str) -> None:
    status, created, _ = await emulator.graph("POST", "/me/calendar/events", token, timed_event("Default"))
    assert status == 201
    status, body, _ = await emulator.graph("GET", f"/me/calendar/calendarView?{WINDOW}&$top=1000", token)
    assert status == 200 and created["id"] in {i["id"] for i in body["value"]}
    status, body, _ = await emulator.graph("GET", f"/me/calendar/calendarView/delta?{WINDOW}", token)
    assert status == 200 and body["value"]
