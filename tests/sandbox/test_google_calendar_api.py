"""Google emulator, Calendar API v3: calendar list, authentication, event writes, errors, faults."""

from __future__ import annotations

import gzip
from urllib.parse import quote

import aiohttp
from google_harness import PRIMARY, GoogleSandbox, timed

from chronapilot.sandbox.google import DEMO_EMAIL

UNAUTHENTICATED_MESSAGE = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
    "other valid authentication credential. "
    "See https://developers.google.com/identity/sign-in/web/devconsole-project."
)


async def test_calendar_list_shows_the_primary_calendar_first(
    google: GoogleSandbox, google_token: str
) -> None:
    answer = await google.api("GET", "/users/me/calendarList", google_token)
    assert answer.status == 200
    assert answer.body["kind"] == "calendar#calendarList"
    entries = answer.body["items"]
    assert [entry["kind"] for entry in entries] == ["calendar#calendarListEntry"] * 3
    assert entries[0]["id"] == DEMO_EMAIL
    assert entries[0]["primary"] is True
    assert all("primary" not in entry for entry in entries[1:])
    assert {entry["timeZone"] for entry in entries} == {"Europe/Berlin", "America/New_York", "Asia/Tokyo"}
    assert answer.body["nextSyncToken"]


async def test_calendar_list_pages(google: GoogleSandbox, google_token: str) -> None:
    first = await google.api("GET", "/users/me/calendarList", google_token, params={"maxResults": "2"})
    assert len(first.body["items"]) == 2 and "nextSyncToken" not in first.body
    second = await google.api(
        "GET",
        "/users/me/calendarList",
        google_token,
        params={"maxResults": "2", "pageToken": first.body["nextPageToken"]},
    )
    assert len(second.body["items"]) == 1 and "nextPageToken" not in second.body


async def test_calls_without_credentials_get_401_login_required(google: GoogleSandbox) -> None:
    answer = await google.api("GET", "/users/me/calendarList", None)
    assert answer.status == 401
    assert answer.body["error"]["errors"][0]["reason"] == "required"
    assert answer.body["error"]["status"] == "UNAUTHENTICATED"


async def test_unknown_tokens_get_googles_401_body_and_header(google: GoogleSandbox) -> None:
    answer = await google.api("GET", PRIMARY, "ya29.unknown")
    assert answer.status == 401
    assert answer.body == {
        "error": {
            "code": 401,
            "message": UNAUTHENTICATED_MESSAGE,
            "errors": [
                {
                    "message": "Invalid Credentials",
                    "domain": "global",
                    "reason": "authError",
                    "location": "Authorization",
                    "locationType": "header",
                }
            ],
            "status": "UNAUTHENTICATED",
        }
    }
    assert (
        answer.headers["WWW-Authenticate"]
        == 'Bearer realm="https://accounts.google.com/", error="invalid_token"'
    )
    counters = await google.admin("GET", "counters")
    assert counters["unauthorized"] == 1


async def test_primary_alias_and_unknown_calendars(google: GoogleSandbox, google_token: str) -> None:
    by_alias = await google.api("GET", "/calendars/primary/events", google_token)
    by_id = await google.api("GET", PRIMARY, google_token)
    assert by_alias.body["items"] == by_id.body["items"]
    assert by_alias.body["summary"] == DEMO_EMAIL
    missing = await google.api("GET", "/calendars/nobody%40example.com/events", google_token)
    assert missing.status == 404
    assert missing.body["error"]["errors"][0] == {
        "message": "Not Found",
        "domain": "global",
        "reason": "notFound",
    }


async def test_insert_returns_200_with_the_event(google: GoogleSandbox, google_token: str) -> None:
    answer = await google.api(
        "POST",
        PRIMARY,
        google_token,
        body={
            "summary": "Lunch",
            "start": timed("2026-11-20T12:00:00"),
            "end": timed("2026-11-20T13:00:00"),
            "attendees": [{"email": "guest@example.com"}],
        },
    )
    assert answer.status == 200
    event = answer.body
    assert event["kind"] == "calendar#event" and event["status"] == "confirmed"
    assert event["organizer"] == {"email": DEMO_EMAIL, "displayName": DEMO_EMAIL, "self": True}
    assert event["attendees"] == [{"email": "guest@example.com", "responseStatus": "needsAction"}]
    assert event["iCalUID"] == f"{event['id']}@google.com"
    assert event["etag"].startswith('"') and event["created"].endswith("Z")
    fetched = await google.api("GET", f"{PRIMARY}/{event['id']}", google_token)
    assert fetched.body == event


async def test_insert_errors(google: GoogleSandbox, google_token: str) -> None:
    start, end = timed("2026-11-20T12:00:00"), timed("2026-11-20T13:00:00")
    no_end = await google.api("POST", PRIMARY, google_token, body={"start": start})
    assert no_end.status == 400 and no_end.body["error"]["errors"][0]["reason"] == "required"
    backwards = await google.api("POST", PRIMARY, google_token, body={"start": end, "end": start})
    assert backwards.body["error"]["errors"][0]["reason"] == "timeRangeEmpty"
    bad_id = await google.api(
        "POST", PRIMARY, google_token, body={"id": "UPPER_case", "start": start, "end": end}
    )
    assert bad_id.status == 400 and bad_id.body["error"]["errors"][0]["reason"] == "invalid"
    first = await google.api(
        "POST", PRIMARY, google_token, body={"id": "abcdef123", "start": start, "end": end}
    )
    assert first.status == 200
    again = await google.api(
        "POST", PRIMARY, google_token, body={"id": "abcdef123", "start": start, "end": end}
    )
    assert again.status == 409 and again.body["error"]["errors"][0]["reason"] == "duplicate"
    broken = await google.http.post(
        f"{google.base_url}/calendar/v3{PRIMARY}",
        data=b"{not json",
        headers={"Authorization": f"Bearer {google_token}", "Content-Type": "application/json"},
    )
    assert broken.status == 400 and (await broken.json())["error"]["errors"][0]["reason"] == "parseError"


async def test_patch_changes_etag_and_updated_and_respects_if_match(
    google: GoogleSandbox, google_token: str
) -> None:
    created = (
        await google.api(
            "POST",
            PRIMARY,
            google_token,
            body={"summary": "Draft", "start": {"date": "2026-11-25"}, "end": {"date": "2026-11-26"}},
        )
    ).body
    path = f"{PRIMARY}/{created['id']}"
    patched = await google.api("PATCH", path, google_token, body={"summary": "Final"})
    assert patched.status == 200
    assert patched.body["summary"] == "Final" and patched.body["start"] == {"date": "2026-11-25"}
    assert patched.body["etag"] != created["etag"]
    stale = await google.api(
        "PATCH", path, google_token, body={"summary": "X"}, headers={"If-Match": created["etag"]}
    )
    assert stale.status == 412 and stale.body["error"]["errors"][0]["reason"] == "conditionNotMet"
    fresh = await google.api(
        "PATCH", path, google_token, body={"summary": "Y"}, headers={"If-Match": patched.body["etag"]}
    )
    assert fresh.status == 200
    replaced = await google.api(
        "PUT",
        path,
        google_token,
        body={"summary": "Replaced", "start": {"date": "2026-11-27"}, "end": {"date": "2026-11-28"}},
    )
    assert replaced.status == 200 and replaced.body["sequence"] == 1


async def test_delete_twice_is_410_and_unknown_is_404(google: GoogleSandbox, google_token: str) -> None:
    created = (
        await google.api(
            "POST",
            PRIMARY,
            google_token,
            body={"start": {"date": "2026-11-25"}, "end": {"date": "2026-11-26"}},
        )
    ).body
    path = f"{PRIMARY}/{created['id']}"
    assert (await google.api("DELETE", path, google_token)).status == 204
    again = await google.api("DELETE", path, google_token)
    assert again.status == 410
    assert again.body["error"]["errors"][0] == {
        "message": "Resource has been deleted",
        "domain": "global",
        "reason": "deleted",
    }
    unknown = await google.api("DELETE", f"{PRIMARY}/nosuchevent1", google_token)
    assert unknown.status == 404 and unknown.body["error"]["errors"][0]["reason"] == "notFound"


async def test_calendar_ids_with_at_and_hash_work_url_encoded(
    google: GoogleSandbox, google_token: str
) -> None:
    calendar_id = "en.german#holiday@group.v.calendar.google.com"
    await google.admin(
        "POST",
        f"users/{DEMO_EMAIL}/calendars",
        {"id": calendar_id, "summary": "Holidays in Germany"},
        expect=201,
    )
    path = f"/calendars/{quote(calendar_id, safe='')}/events"
    answer = await google.api(
        "POST",
        path,
        google_token,
        body={"summary": "Tag der Einheit", "start": {"date": "2026-10-03"}, "end": {"date": "2026-10-04"}},
    )
    assert answer.status == 200
    listed = await google.api("GET", path, google_token, params={"alt": "json"})
    assert [item["summary"] for item in listed.body["items"]] == ["Tag der Einheit"]


async def test_gzip_is_served_when_asked(google: GoogleSandbox, google_token: str) -> None:
    async with (
        aiohttp.ClientSession(auto_decompress=False) as raw,
        raw.get(
            f"{google.base_url}/calendar/v3{PRIMARY}",
            params={"alt": "json"},
            headers={"Authorization": f"Bearer {google_token}", "Accept-Encoding": "gzip"},
        ) as response,
    ):
        assert response.headers["Content-Encoding"] == "gzip"
        assert b'"calendar#events"' in gzip.decompress(await response.read())


async def test_injected_faults_answer_with_googles_errors_and_retry_after(
    google: GoogleSandbox, google_token: str
) -> None:
    route = "/calendar/v3/calendars/{calendarId}/events"
    await google.admin(
        "POST", "faults", {"route": route, "method": "GET", "status": 503, "retry_after": 7, "times": 1}
    )
    failed = await google.api("GET", PRIMARY, google_token)
    assert failed.status == 503
    assert failed.headers["Retry-After"] == "7"
    assert failed.body["error"]["errors"][0]["reason"] == "backendError"
    assert (await google.api("GET", PRIMARY, google_token)).status == 200
    await google.admin("POST", "faults", {"route": "*", "status": 429, "times": 1})
    limited = await google.api("GET", "/users/me/calendarList", google_token)
    assert limited.status == 429
    assert limited.body["error"]["errors"][0] == {
        "message": "Rate Limit Exceeded",
        "domain": "usageLimits",
        "reason": "rateLimitExceeded",
    }
    counters = await google.admin("GET", "counters")
    assert counters["requests"][f"GET {route}"] == 2


async def test_patch_merges_nested_objects_and_switches_between_all_day_and_timed(
    google: GoogleSandbox, google_token: str
) -> None:
    created = (
        await google.api(
            "POST",
            PRIMARY,
            google_token,
            body={
                "summary": "Weekly",
                "start": timed("2026-11-02T08:00:00"),
                "end": timed("2026-11-02T09:00:00"),
                "recurrence": ["RRULE:FREQ=WEEKLY"],
                "reminders": {"useDefault": False, "overrides": [{"method": "popup", "minutes": 5}]},
            },
        )
    ).body
    path = f"{PRIMARY}/{created['id']}"
    moved = await google.api(
        "PATCH",
        path,
        google_token,
        body={"start": {"dateTime": "2026-11-02T08:30:00+01:00"}, "reminders": {"useDefault": True}},
    )
    assert moved.status == 200, moved.body
    assert moved.body["start"] == {"dateTime": "2026-11-02T08:30:00+01:00", "timeZone": "Europe/Berlin"}
    assert moved.body["reminders"] == {"useDefault": True, "overrides": [{"method": "popup", "minutes": 5}]}
    all_day = await google.api(
        "PATCH",
        path,
        google_token,
        body={"start": {"date": "2026-11-03"}, "end": {"date": "2026-11-04"}, "description": None},
    )
    assert all_day.status == 200, all_day.body
    assert all_day.body["start"] == {"date": "2026-11-03"}


async def test_calendar_list_sync_tokens_from_elsewhere_answer_410(
    google: GoogleSandbox, google_token: str
) -> None:
    foreign = "c3luYzpmZmZmZmZmZmZmZmY6MQ=="
    answer = await google.api("GET", "/users/me/calendarList", google_token, params={"syncToken": foreign})
    assert answer.status == 410
    assert answer.body["error"]["errors"][0]["reason"] == "fullSyncRequired"


async def test_patching_status_cancelled_is_a_deletion(google: GoogleSandbox, google_token: str) -> None:
    created = (
        await google.api(
            "POST",
            PRIMARY,
            google_token,
            body={"start": {"date": "2026-11-25"}, "end": {"date": "2026-11-26"}},
        )
    ).body
    cancelled = await google.api(
        "PATCH", f"{PRIMARY}/{created['id']}", google_token, body={"status": "cancelled"}
    )
    assert cancelled.status == 200
    assert set(cancelled.body) == {"kind", "etag", "id", "status", "updated"}
    assert (await google.api("DELETE", f"{PRIMARY}/{created['id']}", google_token)).status == 410


async def test_html_links_open_a_page_about_the_event(google: GoogleSandbox, google_token: str) -> None:
    items = (await google.api("GET", PRIMARY, google_token, params={"q": "Quarterly"})).body["items"]
    async with google.http.get(items[0]["htmlLink"]) as page:
        assert page.status == 200
        html = await page.text()
    assert "<h1>Quarterly planning</h1>" in html and "alex.rivera@example.com" in html


async def test_the_access_token_query_parameter_is_accepted(google: GoogleSandbox, google_token: str) -> None:
    answer = await google.api("GET", "/users/me/calendarList", None, params={"access_token": google_token})
    assert answer.status == 200
