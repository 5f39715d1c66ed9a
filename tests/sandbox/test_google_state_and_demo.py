"""Google emulator: the JSON state file, and the seeded demo account."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

from google_harness import start_google

from chronapilot.sandbox.google import DEMO_EMAIL, build_app
from chronapilot.sandbox.google.emulator import EMULATOR


async def test_state_survives_a_restart_with_a_state_file(tmp_path: Path) -> None:
    state_file = tmp_path / "google.json"
    first, server = await start_google(state_file=state_file)
    token = await first.sign_in()
    path = f"/calendars/{quote(DEMO_EMAIL)}/events"
    listed = await first.api("GET", path, token["access_token"])
    created = await first.api(
        "POST",
        path,
        token["access_token"],
        body={"summary": "Persisted", "start": {"date": "2026-12-09"}, "end": {"date": "2026-12-10"}},
    )
    await first.http.close()
    await server.runner.cleanup()
    saved = json.loads(state_file.read_text())
    assert saved["format"] == 1
    assert not list(tmp_path.glob(".google.json.*"))

    second, server = await start_google(state_file=state_file, seed=99)
    try:
        changes = await second.api(
            "GET", path, token["access_token"], params={"syncToken": listed.body["nextSyncToken"]}
        )
        assert changes.status == 200
        assert [item["id"] for item in changes.body["items"]] == [created.body["id"]]
        async with second.oauth_client() as client:
            refreshed = await client.refresh_token(
                f"{second.base_url}/token", refresh_token=token["refresh_token"]
            )
        assert refreshed["access_token"]
    finally:
        await second.http.close()
        await server.runner.cleanup()


def test_the_same_seed_gives_the_same_demo_data() -> None:
    def demo(seed: int) -> list[tuple[str, ...]]:
        app = build_app(base_url="http://127.0.0.1:8090", seed=seed)
        store = app[EMULATOR].store
        return [
            (calendar.id, stored.id, str(stored.resource.get("summary")))
            for calendar in store.calendars.values()
            for stored in calendar.log.events.values()
        ]

    assert demo(3) == demo(3)
    assert demo(3) != demo(4)


def test_the_demo_account_covers_what_a_sync_must_get_right() -> None:
    app = build_app(base_url="http://127.0.0.1:8090", seed=5)
    store = app[EMULATOR].store
    account = store.account_by_email(DEMO_EMAIL)
    assert account is not None and account.password
    events = [
        stored.resource for calendar in store.calendars.values() for stored in calendar.log.events.values()
    ]
    assert len(account.calendar_ids) == 3
    assert any("recurrence" in event for event in events)
    exceptions = [event for event in events if "recurringEventId" in event]
    assert any(event["status"] == "cancelled" for event in exceptions)
    assert any(event["status"] == "confirmed" and "originalStartTime" in event for event in exceptions)
    assert any("date" in event.get("start", {}) for event in events)
    zones = {event["start"].get("timeZone") for event in events if "start" in event}
    assert {"Europe/Berlin", "America/New_York", "America/Los_Angeles", "Asia/Kolkata"} <= zones
    assert any(
        event.get("organizer", {}).get("email") != DEMO_EMAIL for event in events if "organizer" in event
    )
    statuses = {attendee["responseStatus"] for event in events for attendee in event.get("attendees", [])}
    assert statuses == {"needsAction", "declined", "tentative", "accepted"}


async def test_the_access_token_lifetime_is_configurable() -> None:
    sandbox, server = await start_google(access_token_ttl=120)
    try:
        token = await sandbox.sign_in()
        assert token["expires_in"] == 119
        await sandbox.admin("POST", "clock/advance", {"seconds": 121})
        answer = await sandbox.api("GET", "/users/me/calendarList", token["access_token"])
        assert answer.status == 401
    finally:
        await sandbox.http.close()
        await server.runner.cleanup()


async def test_faults_on_the_token_endpoint_use_the_oauth_error_shape_and_spare_the_admin_api() -> None:
    sandbox, server = await start_google()
    try:
        await sandbox.admin("POST", "faults", {"route": "*", "status": 503, "retry_after": 3, "times": 1})
        await sandbox.admin("GET", "counters")
        async with sandbox.http.post(
            f"{sandbox.base_url}/token", data={"grant_type": "refresh_token"}
        ) as answer:
            assert answer.status == 503
            assert answer.headers["Retry-After"] == "3"
            assert (await answer.json())["error"] == "temporarily_unavailable"
        counters = await sandbox.admin("GET", "counters")
        assert counters["requests"] == {"POST /token": 1}
    finally:
        await sandbox.http.close()
        await server.runner.cleanup()
