"""The Microsoft emulator's seeded demo data and its optional JSON state file."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from test_microsoft_harness import Emulator, running_emulator

from chronapilot.sandbox.microsoft.seed import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET

from helpers import eventually


def _window(days_back: int, days_ahead: int) -> str:
    now = datetime.now(UTC)
    start = (now - timedelta(days=days_back)).strftime("%Y-%m-%dT00:00:00Z")
    end = (now + timedelta(days=days_ahead)).strftime("%Y-%m-%dT00:00:00Z")
    return f"startDateTime={start}&endDateTime={end}"


async def _view(emu: Emulator, token: str, calendar: str, window: str) -> list[dict[str, Any]]:
    _, cals, _ = await emu.graph("GET", "/me/calendars", token)
    cal_id = next(c["id"] for c in cals["value"] if c["name"] == calendar)
    status, body, _ = await emu.graph("GET", f"/me/calendars/{cal_id}/calendarView?{window}&$top=1000", token)
    assert status == 200
    return list(body["value"])


async def _snapshot(emu: Emulator) -> list[tuple[str, str]]:
    token = (await emu.sign_in())["access_token"]
    items = []
    for name in ("Calendar", "Work", "Family"):
        items += [(i["id"], i["subject"]) for i in await _view(emu, token, name, _window(200, 400))]
    return items


async def test_the_same_seed_gives_the_same_demo_data() -> None:
    async with running_emulator(seed=11) as first:
        a = await _snapshot(first)
    async with running_emulator(seed=11) as second:
        b = await _snapshot(second)
    assert a == b
    assert len(a) > 100


async def test_the_stand_up_series_keeps_local_time_across_daylight_saving() -> None:
    async with running_emulator() as emu:
        token = (await emu.sign_in())["access_token"]
        items = await _view(emu, token, "Work", _window(190, 200))
    occurrences = [i for i in items if i["type"] == "occurrence" and i["subject"] == "Team stand-up"]
    berlin = ZoneInfo("Europe/Berlin")
    utc_hours = set()
    for item in occurrences:
        start = datetime.fromisoformat(item["start"]["dateTime"][:26]).replace(tzinfo=UTC)
        assert item["start"]["timeZone"] == "UTC"
        assert start.astimezone(berlin).hour == 9
        utc_hours.add(start.hour)
    assert utc_hours == {7, 8}  # summer and winter time
    assert {i["originalStartTimeZone"] for i in occurrences} == {"Europe/Berlin"}


async def test_demo_data_has_exceptions_cancellations_all_day_and_attendees() -> None:
    async with running_emulator() as emu:
        token = (await emu.sign_in())["access_token"]
        window = _window(14, 30)
        work = await _view(emu, token, "Work", window)
        family = await _view(emu, token, "Family", window)
        default = await _view(emu, token, "Calendar", window)
    moved = [i for i in work if i["type"] == "exception"]
    assert [m["subject"] for m in moved] == ["Team stand-up (moved)"]
    assert moved[0]["seriesMasterId"] and moved[0]["originalStart"]
    standups = [i for i in work if i["seriesMasterId"] == moved[0]["seriesMasterId"]]
    week = sorted(i["originalStart"] for i in standups)
    gaps = {
        (datetime.fromisoformat(b[:19]) - datetime.fromisoformat(a[:19])).days
        for a, b in itertools.pairwise(week)
    }
    assert 4 in gaps or 5 in gaps  # the cancelled occurrence leaves a hole in Mon/Wed/Fri
    all_day = [i for i in work + family if i["isAllDay"]]
    assert all_day
    assert all(i["start"]["dateTime"].endswith("T00:00:00.0000000") for i in all_day)
    attendees = [a for i in work for a in i["attendees"]]
    responses = {a["status"]["response"] for a in attendees}
    assert {"accepted", "tentativelyAccepted", "declined", "none"} <= responses
    invitation = next(i for i in default if i["subject"].startswith("Architecture review"))
    assert invitation["isOrganizer"] is False
    assert invitation["responseStatus"]["response"] == "tentativelyAccepted"
    zones = {i["originalStartTimeZone"] for i in work + family + default}
    assert {"Europe/Berlin", "Asia/Tokyo", "Pacific Standard Time"} <= zones


async def test_state_file_keeps_data_tokens_and_delta_links(tmp_path: Path) -> None:
    state_file = tmp_path / "microsoft.json"
    async with running_emulator(state_file=state_file) as emu:
        token = await emu.sign_in()
        status, created, _ = await emu.graph(
            "POST",
            "/me/events",
            token["access_token"],
            {
                "subject": "Persisted",
                "start": {"dateTime": "2026-07-01T09:00:00", "timeZone": "UTC"},
                "end": {"dateTime": "2026-07-01T10:00:00", "timeZone": "UTC"},
            },
        )
        assert status == 201
        _, body, _ = await emu.graph(
            "GET",
            "/me/calendarView/delta?startDateTime=2026-01-01T00:00:00Z&endDateTime=2027-01-01T00:00:00Z",
            token["access_token"],
            headers={"Prefer": "odata.maxpagesize=1000"},
        )
        delta_link = body["@odata.deltaLink"]
        base_url = emu.base_url
    assert state_file.exists()
    async with running_emulator(state_file=state_file, seed=None) as again:
        link = delta_link.replace(base_url, again.base_url)
        status, _, _ = await again.graph("GET", f"/me/events/{created['id']}", token["access_token"])
        assert status == 200
        status, body, _ = await again.graph("GET", link, token["access_token"])
        assert status == 200
        assert body["value"] == []
        async with httpx.AsyncClient() as client:
            refreshed = await client.post(
                f"{again.base_url}/common/oauth2/v2.0/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": token["refresh_token"],
                    "client_id": SANDBOX_CLIENT_ID,
                    "client_secret": SANDBOX_CLIENT_SECRET,
                },
            )
        assert refreshed.status_code == 200


async def test_a_fresh_state_file_is_written_at_start(tmp_path: Path) -> None:
    state_file = tmp_path / "fresh.json"
    async with running_emulator(state_file=state_file, seed=5) as emu:
        await eventually(state_file.exists, timeout_s=5, interval_s=0.05)  # the save is debounced
        first = await emu.admin("GET", "users/demo.microsoft@sandbox.chronapilot.dev/calendars")
    assert state_file.exists()
    async with running_emulator(state_file=state_file, seed=99) as again:
        assert await again.admin("GET", "users/demo.microsoft@sandbox.chronapilot.dev/calendars") == first
