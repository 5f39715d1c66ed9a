"""Calendar-view delta of the Microsoft emulator: paging, incremental rounds, @removed, 410s."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from test_microsoft_harness import (
    WINDOW,
    Emulator,
    calendar_id,
    full_delta_round,
    running_emulator,
    timed_event,
)


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with running_emulator() as emu:
        yield emu


@pytest.fixture
async def token(emulator: Emulator) -> str:
    return str((await emulator.sign_in())["access_token"])


async def test_delta_pages_to_a_delta_link_then_returns_only_changes(emulator: Emulator, token: str) -> None:
    work = await calendar_id(emulator, token, "Work")
    url = f"/me/calendars/{work}/calendarView/delta?{WINDOW}"
    items, delta_link, pages = await full_delta_round(emulator, token, url)
    assert pages > 1
    assert "$deltatoken=" in delta_link
    assert all(item["type"] in ("singleInstance", "occurrence", "exception") for item in items)
    assert len({item["id"] for item in items}) == len(items)
    changes, delta_link, _ = await full_delta_round(emulator, token, delta_link)
    assert changes == []

    _, created, _ = await emulator.graph("POST", f"/me/calendars/{work}/events", token, timed_event("New"))
    _, other, _ = await emulator.graph(
        "POST", f"/me/calendars/{work}/events", token, timed_event("Doomed", "2026-04-01")
    )
    changes, delta_link, _ = await full_delta_round(emulator, token, delta_link)
    assert {c["id"] for c in changes} == {created["id"], other["id"]}

    await emulator.graph("PATCH", f"/me/events/{created['id']}", token, {"subject": "Renamed"})
    await emulator.graph("DELETE", f"/me/events/{other['id']}", token)
    changes, delta_link, _ = await full_delta_round(emulator, token, delta_link)
    by_id = {c["id"]: c for c in changes}
    assert by_id[created["id"]]["subject"] == "Renamed"
    assert by_id[other["id"]] == {
        "@odata.type": "#microsoft.graph.event",
        "id": other["id"],
        "@removed": {"reason": "deleted"},
    }


async def test_delta_shows_a_cancelled_occurrence_as_removed(emulator: Emulator, token: str) -> None:
    work = await calendar_id(emulator, token, "Work")
    items, delta_link, _ = await full_delta_round(
        emulator, token, f"/me/calendars/{work}/calendarView/delta?{WINDOW}", 200
    )
    occurrence = next(i for i in items if i["type"] == "occurrence" and i["subject"] == "Team stand-up")
    status, _, _ = await emulator.graph("DELETE", f"/me/events/{occurrence['id']}", token)
    assert status == 204
    changes, _, _ = await full_delta_round(emulator, token, delta_link, 1000)
    removed = [c for c in changes if "@removed" in c]
    assert [c["id"] for c in removed] == [occurrence["id"]]
    status, _, _ = await emulator.graph("GET", f"/me/events/{occurrence['id']}", token)
    assert status == 404


async def test_patching_an_occurrence_makes_an_exception(emulator: Emulator, token: str) -> None:
    work = await calendar_id(emulator, token, "Work")
    items, delta_link, _ = await full_delta_round(
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
    changes, _, _ = await full_delta_round(emulator, token, delta_link, 1000)
    exception = next(c for c in changes if c["id"] == occurrence["id"])
    assert exception["subject"] == "Special"
    assert exception["type"] == "exception"


async def test_default_calendar_delta_and_the_sdk_style_path(emulator: Emulator, token: str) -> None:
    status, body, _ = await emulator.graph("GET", f"/me/calendarView/delta()?{WINDOW}", token)
    assert status == 200
    assert body["value"]
    assert "@odata.nextLink" in body or "@odata.deltaLink" in body


async def test_unknown_and_expired_delta_tokens_answer_410(emulator: Emulator, token: str) -> None:
    work = await calendar_id(emulator, token, "Work")
    status, body, _ = await emulator.graph(
        "GET", f"/me/calendars/{work}/calendarView/delta?$deltatoken=bogus", token
    )
    assert status == 410
    assert body["error"]["code"] == "SyncStateNotFound"
    assert set(body["error"]["innerError"]) == {"date", "request-id", "client-request-id"}
    _, delta_link, _ = await full_delta_round(
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
    work = await calendar_id(emulator, token, "Work")
    _, delta_link, _ = await full_delta_round(
        emulator, token, f"/me/calendars/{work}/calendarView/delta?{WINDOW}", 1000
    )
    created = await emulator.admin("POST", f"calendars/{work}/events", timed_event("By the user"))
    changes, _, _ = await full_delta_round(emulator, token, delta_link, 1000)
    assert [c["id"] for c in changes] == [created["id"]]


async def test_a_change_outside_the_window_surfaces_as_removed(emulator: Emulator, token: str) -> None:
    work = await calendar_id(emulator, token, "Work")
    narrow = "startDateTime=2026-03-01T00:00:00Z&endDateTime=2026-03-08T00:00:00Z"
    _, delta_link, _ = await full_delta_round(
        emulator, token, f"/me/calendars/{work}/calendarView/delta?{narrow}", 1000
    )
    _, inside, _ = await emulator.graph(
        "POST", f"/me/calendars/{work}/events", token, timed_event("In", "2026-03-02")
    )
    _, outside, _ = await emulator.graph(
        "POST", f"/me/calendars/{work}/events", token, timed_event("Out", "2026-09-01")
    )
    changes, _, _ = await full_delta_round(emulator, token, delta_link, 1000)
    by_id = {c["id"]: c for c in changes}
    assert by_id[inside["id"]]["subject"] == "In"
    assert by_id[outside["id"]]["@removed"] == {"reason": "deleted"}


async def test_combined_prefer_header_applies_page_size_zone_and_text_body(
    emulator: Emulator, token: str
) -> None:
    work = await calendar_id(emulator, token, "Work")
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


async def test_delta_tokens_older_than_the_kept_change_log_answer_410(emulator: Emulator, token: str) -> None:
    work = await calendar_id(emulator, token, "Work")
    _, delta_link, _ = await full_delta_round(
        emulator, token, f"/me/calendars/{work}/calendarView/delta?{WINDOW}", 1000
    )
    await emulator.admin("PATCH", "settings", {"change_log_limit": 4})
    _, created, _ = await emulator.graph("POST", f"/me/calendars/{work}/events", token, timed_event("one"))
    for n in range(5):
        await emulator.graph("PATCH", f"/me/events/{created['id']}", token, {"subject": f"v{n}"})
    status, body, _ = await emulator.graph("GET", delta_link, token)
    assert status == 410 and body["error"]["code"] == "SyncStateNotFound"


async def test_delta_quirks_give_empty_first_pages_and_replays(emulator: Emulator, token: str) -> None:
    await emulator.admin("PATCH", "settings", {"delta_quirks": True})
    work = await calendar_id(emulator, token, "Work")
    url = f"/me/calendars/{work}/calendarView/delta?{WINDOW}"
    status, first, _ = await emulator.graph("GET", url, token, headers={"Prefer": "odata.maxpagesize=50"})
    assert status == 200
    assert first["value"] == [] and "@odata.nextLink" in first
    _, delta_link, _ = await full_delta_round(emulator, token, first["@odata.nextLink"], 50)
    _, created, _ = await emulator.graph(
        "POST", f"/me/calendars/{work}/events", token, timed_event("Replayed")
    )
    changes, delta_link, _ = await full_delta_round(emulator, token, delta_link, 50)
    assert [c["id"] for c in changes] == [created["id"]]
    replayed, _, _ = await full_delta_round(emulator, token, delta_link, 50)
    assert [c["id"] for c in replayed] == [created["id"]]  # the same change again: must be harmless
