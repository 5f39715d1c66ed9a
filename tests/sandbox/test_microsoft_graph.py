"""Graph subset of the Microsoft emulator: calendars, events, calendar-view delta, errors, throttling."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from test_microsoft_harness import Emulator, running_emulator, running_receiver

WINDOW = "startDateTime=2020-01-01T00:00:00Z&endDateTime=2035-01-01T00:00:00Z"


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with running_emulator() as emu:
        yield emu


@pytest.fixture
async def token(emulator: Emulator) -> str:
    return str((await emulator.sign_in())["access_token"])


async def _calendar(emulator: Emulator, token: str, name: str) -> str:
    _, body, _ = await emulator.graph("GET", "/me/calendars", token)
    return next(c["id"] for c in body["value"] if c["name"] == name)


async def _full_round(
    emulator: Emulator, token: str, url: str, page: int = 5
) -> tuple[list[dict[str, Any]], str, int]:
    """Follow nextLinks to the deltaLink; returns (items, deltaLink, pages)."""
    items: list[dict[str, Any]] = []
    pages = 0
    while True:
        status, body, headers = await emulator.graph(
            "GET", url, token, headers={"Prefer": f"odata.maxpagesize={page}"}
        )
        assert status == 200, body
        assert headers["Preference-Applied"] == f"odata.maxpagesize={page}"
        assert len(body["value"]) <= page
        assert not ("@odata.nextLink" in body and "@odata.deltaLink" in body)
        items += body["value"]
        pages += 1
        if "@odata.deltaLink" in body:
            return items, body["@odata.deltaLink"], pages
        url = body["@odata.nextLink"]
        assert "$skiptoken=" in url


def _event(subject: str, day: str = "2026-03-02", tz: str = "Europe/Berlin") -> dict[str, Any]:
    return {
        "subject": subject,
        "start": {"dateTime": f"{day}T09:00:00", "timeZone": tz},
        "end": {"dateTime": f"{day}T10:00:00", "timeZone": tz},
    }


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
    work = await _calendar(emulator, token, "Work")
    status, created, headers = await emulator.graph(
        "POST", f"/me/calendars/{work}/events", token, _event("Plan")
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
    bad_zone = _event("x", tz="Mars/Olympus")
    status, body, _ = await emulator.graph("POST", "/me/events", token, bad_zone)
    assert status == 400


async def test_read_only_consent_cannot_write(emulator: Emulator) -> None:
    token = await emulator.sign_in(scope="offline_access openid User.Read Calendars.Read")
    status, _, _ = await emulator.graph("GET", "/me/calendars", token["access_token"])
    assert status == 200
    status, body, _ = await emulator.graph("POST", "/me/events", token["access_token"], _event("nope"))
    assert status == 403
    assert body["error"]["code"] == "ErrorAccessDenied"


async def test_delta_pages_to_a_delta_link_then_returns_only_changes(emulator: Emulator, token: str) -> None:
    work = await _calendar(emulator, token, "Work")
    url = f"/me/calendars/{work}/calendarView/delta?{WINDOW}"
    items, delta_link, pages = await _full_round(emulator, token, url)
    assert pages > 1
    assert "$deltatoken=" in delta_link
    assert all(item["type"] in ("singleInstance", "occurrence", "exception") for item in items)
    assert len({item["id"] for item in items}) == len(items)
    changes, delta_link, _ = await _full_round(emulator, token, delta_link)
    assert changes == []

    _, created, _ = await emulator.graph("POST", f"/me/calendars/{work}/events", token, _event("New"))
    _, other, _ = await emulator.graph(
        "POST", f"/me/calendars/{work}/events", token, _event("Doomed", "2026-04-01")
    )
    changes, delta_link, _ = await _full_round(emulator, token, delta_link)
    assert {c["id"] for c in changes} == {created["id"], other["id"]}

    await emulator.graph("PATCH", f"/me/events/{created['id']}", token, {"subject": "Renamed"})
    await emulator.graph("DELETE", f"/me/events/{other['id']}", token)
    changes, delta_link, _ = await _full_round(emulator, token, delta_link)
    by_id = {c["id"]: c for c in changes}
    assert by_id[created["id"]]["subject"] == "Renamed"
    assert by_id[other["id"]] == {
        "@odata.type": "#microsoft.graph.event",
        "id": other["id"],
        "@removed": {"reason": "deleted"},
    }


async def test_delta_shows_a_cancelled_occurrence_as_removed(emulator: Emulator, token: str) -> None:
    work = await _calendar(emulator, token, "Work")
    items, delta_link, _ = await _full_round(
        emulator, token, f"/me/calendars/{work}/calendarView/delta?{WINDOW}", 200
    )
    occurrence = next(i for i in items if i["type"] == "occurrence" and i["subject"] == "Team stand-up")
    status, _, _ = await emulator.graph("DELETE", f"/me/events/{occurrence['id']}", token)
    assert status == 204
    changes, _, _ = await _full_round(emulator, token, delta_link, 1000)
    removed = [c for c in changes if "@removed" in c]
    assert [c["id"] for c in removed] == [occurrence["id"]]
    status, _, _ = await emulator.graph("GET", f"/me/events/{occurrence['id']}", token)
    assert status == 404


async def test_patching_an_occurrence_makes_an_exception(emulator: Emulator, token: str) -> None:
    work = await _calendar(emulator, token, "Work")
    items, delta_link, _ = await _full_round(
        emulator, token, f"/me/calendars/{work}/calendarView/delta?{WINDOW}", 500
    )
    occurrence = next(i for i in items if i["type"] == "occurrence")
    status, patched, _ = await emulator.graph(
        "PATCH", f"/me/events/{occurrence['id']}", token, {"subject": "Special"}
    )
    assert status == 200
    assert patched["type"] == "exception"
    assert patched["id"] == occurrence["id"]
    assert patched["seriesMasterId"] == occurrence["seriesMasterId"]
    changes, _, _ = await _full_round(emulator, token, delta_link, 1000)
    exception = next(c for c in changes if c["id"] == occurrence["id"])
    assert exception["subject"] == "Special"
    assert exception["type"] == "exception"


async def test_default_calendar_delta_and_the_sdk_style_path(emulator: Emulator, token: str) -> None:
    status, body, _ = await emulator.graph("GET", f"/me/calendarView/delta()?{WINDOW}", token)
    assert status == 200
    assert body["value"]
    assert "@odata.nextLink" in body or "@odata.deltaLink" in body


async def test_unknown_and_expired_delta_tokens_answer_410(emulator: Emulator, token: str) -> None:
    work = await _calendar(emulator, token, "Work")
    status, body, _ = await emulator.graph(
        "GET", f"/me/calendars/{work}/calendarView/delta?$deltatoken=bogus", token
    )
    assert status == 410
    assert body["error"]["code"] == "SyncStateNotFound"
    assert set(body["error"]["innerError"]) == {"date", "request-id", "client-request-id"}
    _, delta_link, _ = await _full_round(
        emulator, token, f"/me/calendars/{work}/calendarView/delta?{WINDOW}", 1000
    )
    await emulator.admin("POST", "delta/expire", {"calendar_id": work})
    status, body, _ = await emulator.graph("GET", delta_link, token)
    assert status == 410
    assert body["error"]["code"] == "SyncStateNotFound"


async def test_delta_needs_a_window_and_refuses_filters(emulator: Emulator, token: str) -> None:
    status, body, _ = await emulator.graph("GET", "/me/calendarView/delta", token)
    assert status == 400
    assert body["error"]["code"] == "ErrorInvalidParameter"
    status, _, _ = await emulator.graph(
        "GET", f"/me/calendarView/delta?{WINDOW}&$filter=subject eq 'x'", token
    )
    assert status == 400


async def test_admin_changes_feed_delta(emulator: Emulator, token: str) -> None:
    work = await _calendar(emulator, token, "Work")
    _, delta_link, _ = await _full_round(
        emulator, token, f"/me/calendars/{work}/calendarView/delta?{WINDOW}", 1000
    )
    created = await emulator.admin("POST", f"calendars/{work}/events", _event("By the user"))
    changes, _, _ = await _full_round(emulator, token, delta_link, 1000)
    assert [c["id"] for c in changes] == [created["id"]]


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
    work = await _calendar(emulator, token, "Work")
    status, body, _ = await emulator.graph(
        "GET", f"/me/calendars/{work}/calendarView?{WINDOW}&$top=1000", token
    )
    assert status == 200
    kinds = {item["type"] for item in body["value"]}
    assert {"occurrence", "exception", "singleInstance"} <= kinds
    assert "seriesMaster" not in kinds


async def test_a_change_outside_the_window_surfaces_as_removed(emulator: Emulator, token: str) -> None:
    work = await _calendar(emulator, token, "Work")
    narrow = "startDateTime=2026-03-01T00:00:00Z&endDateTime=2026-03-08T00:00:00Z"
    _, delta_link, _ = await _full_round(
        emulator, token, f"/me/calendars/{work}/calendarView/delta?{narrow}", 1000
    )
    _, inside, _ = await emulator.graph(
        "POST", f"/me/calendars/{work}/events", token, _event("In", "2026-03-02")
    )
    _, outside, _ = await emulator.graph(
        "POST", f"/me/calendars/{work}/events", token, _event("Out", "2026-09-01")
    )
    changes, _, _ = await _full_round(emulator, token, delta_link, 1000)
    by_id = {c["id"]: c for c in changes}
    assert by_id[inside["id"]]["subject"] == "In"
    assert by_id[outside["id"]]["@removed"] == {"reason": "deleted"}


async def test_instances_of_a_series_and_attendee_defaults(emulator: Emulator, token: str) -> None:
    series = {
        **_event("Weekly", "2026-03-03"),
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
        for _ in range(200):
            if slow_receiver.handshakes:
                break
            await asyncio.sleep(0.01)
        status, _, headers = await emulator.graph("GET", "/me", token)
        assert status == 429
        assert headers["Retry-After"] == "1"
        assert (await slow)[0] == 400
    assert (await emulator.graph("GET", "/me", token))[0] == 200


async def test_combined_prefer_header_applies_page_size_zone_and_text_body(
    emulator: Emulator, token: str
) -> None:
    work = await _calendar(emulator, token, "Work")
    prefer = 'odata.maxpagesize=3, outlook.timezone="UTC", outlook.body-content-type="text"'
    status, body, headers = await emulator.graph(
        "GET", f"/me/calendars/{work}/calendarView/delta?{WINDOW}", token, headers={"Prefer": prefer}
    )
    assert status == 200 and len(body["value"]) == 3
    applied = {p.strip() for p in headers["Preference-Applied"].split(",")}
    assert applied == {"odata.maxpagesize=3", 'outlook.timezone="UTC"', 'outlook.body-content-type="text"'}
    stand_up = next(i for i in body["value"] if i["subject"].startswith("Team stand-up"))
    assert stand_up["body"] == {"contentType": "text", "content": "Daily sync. Keep it short."}
    assert all(i["start"]["timeZone"] == "UTC" for i in body["value"])


async def test_rescheduling_a_series_drops_its_exceptions(emulator: Emulator, token: str) -> None:
    series = {
        **_event("Series", "2026-03-03"),
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
    status, created, _ = await emulator.graph("POST", "/me/calendar/events", token, _event("Default"))
    assert status == 201
    status, body, _ = await emulator.graph("GET", f"/me/calendar/calendarView?{WINDOW}&$top=1000", token)
    assert status == 200 and created["id"] in {i["id"] for i in body["value"]}
    status, body, _ = await emulator.graph("GET", f"/me/calendar/calendarView/delta?{WINDOW}", token)
    assert status == 200 and body["value"]


async def test_delta_tokens_older_than_the_kept_change_log_answer_410(emulator: Emulator, token: str) -> None:
    work = await _calendar(emulator, token, "Work")
    _, delta_link, _ = await _full_round(
        emulator, token, f"/me/calendars/{work}/calendarView/delta?{WINDOW}", 1000
    )
    await emulator.admin("PATCH", "settings", {"change_log_limit": 4})
    _, created, _ = await emulator.graph("POST", f"/me/calendars/{work}/events", token, _event("one"))
    for n in range(5):
        await emulator.graph("PATCH", f"/me/events/{created['id']}", token, {"subject": f"v{n}"})
    status, body, _ = await emulator.graph("GET", delta_link, token)
    assert status == 410 and body["error"]["code"] == "SyncStateNotFound"


async def test_delta_quirks_give_empty_first_pages_and_replays(emulator: Emulator, token: str) -> None:
    await emulator.admin("PATCH", "settings", {"delta_quirks": True})
    work = await _calendar(emulator, token, "Work")
    url = f"/me/calendars/{work}/calendarView/delta?{WINDOW}"
    status, first, _ = await emulator.graph("GET", url, token, headers={"Prefer": "odata.maxpagesize=50"})
    assert status == 200
    assert first["value"] == [] and "@odata.nextLink" in first
    _, delta_link, _ = await _full_round(emulator, token, first["@odata.nextLink"], 50)
    _, created, _ = await emulator.graph("POST", f"/me/calendars/{work}/events", token, _event("Replayed"))
    changes, delta_link, _ = await _full_round(emulator, token, delta_link, 50)
    assert [c["id"] for c in changes] == [created["id"]]
    replayed, _, _ = await _full_round(emulator, token, delta_link, 50)
    assert [c["id"] for c in replayed] == [created["id"]]  # the same change again: must be harmless
