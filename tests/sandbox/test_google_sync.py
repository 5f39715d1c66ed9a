"""Google emulator, events.list: full listings, paging, recurrence expansion, windows, incremental sync."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from google_harness import PRIMARY, GoogleSandbox, list_all, timed

from chronapilot.sandbox.google import DEMO_EMAIL


async def test_full_listing_pages_down_to_a_sync_token(google: GoogleSandbox, google_token: str) -> None:
    everything = await google.api("GET", PRIMARY, google_token)
    items, sync_token = await list_all(google, google_token, maxResults="2")
    assert sync_token
    assert [item["id"] for item in items] == [item["id"] for item in everything.body["items"]]
    assert len({item["id"] for item in items}) == len(items)


async def test_masters_exceptions_and_cancelled_instances_without_single_events(
    google: GoogleSandbox, google_token: str
) -> None:
    items, _ = await list_all(google, google_token)
    masters = [item for item in items if "recurrence" in item]
    assert {item["summary"] for item in masters} == {"Team stand-up", "Pay rent"}
    standup = next(item for item in masters if item["summary"] == "Team stand-up")
    exceptions = [item for item in items if item.get("recurringEventId") == standup["id"]]
    moved = next(item for item in exceptions if item["id"] == f"{standup['id']}_20261028T083000Z")
    assert moved["originalStartTime"] == {
        "dateTime": "2026-10-28T09:30:00+01:00",
        "timeZone": "Europe/Berlin",
    }
    assert moved["start"] == {"dateTime": "2026-10-28T10:00:00+01:00", "timeZone": "Europe/Berlin"}
    cancelled = next(item for item in exceptions if item["status"] == "cancelled")
    assert cancelled["id"] == f"{standup['id']}_20261102T083000Z"
    assert set(cancelled) >= {"id", "recurringEventId", "originalStartTime"}
    assert all(item["status"] != "cancelled" or "recurringEventId" in item for item in items)


async def test_single_events_expands_series_across_dst_and_drops_cancelled_instances(
    google: GoogleSandbox, google_token: str
) -> None:
    items, _ = await list_all(
        google,
        google_token,
        singleEvents="true",
        timeMin="2026-10-19T00:00:00Z",
        timeMax="2026-11-07T00:00:00Z",
    )
    standups = [item for item in items if item["summary"].startswith("Team stand-up")]
    starts = {item["id"].rsplit("_", 1)[1]: item["start"]["dateTime"] for item in standups}
    assert starts["20261019T073000Z"] == "2026-10-19T09:30:00+02:00"
    assert starts["20261026T083000Z"] == "2026-10-26T09:30:00+01:00"
    assert starts["20261028T083000Z"] == "2026-10-28T10:00:00+01:00"
    assert "20261102T083000Z" not in starts
    assert all(item["recurringEventId"] and "recurrence" not in item for item in standups)
    assert all(item["status"] != "cancelled" for item in items)


async def test_order_by_start_time_needs_single_events(google: GoogleSandbox, google_token: str) -> None:
    refused = await google.api("GET", PRIMARY, google_token, params={"orderBy": "startTime"})
    assert refused.status == 400
    ordered, _ = await list_all(
        google, google_token, singleEvents="true", orderBy="startTime", timeMax="2026-12-31T00:00:00Z"
    )
    assert len(ordered) > 10


async def test_time_window_keeps_overlapping_events_only(google: GoogleSandbox, google_token: str) -> None:
    items, sync_token = await list_all(
        google, google_token, timeMin="2026-12-01T00:00:00+01:00", timeMax="2026-12-31T00:00:00+01:00"
    )
    summaries = {item["summary"] for item in items}
    assert summaries == {"Christmas Eve (office closed)", "Team stand-up", "Pay rent"}
    assert sync_token == ""


async def test_incremental_sync_returns_only_changes_and_deletions_as_cancelled(
    google: GoogleSandbox, google_token: str
) -> None:
    _, sync_token = await list_all(google, google_token)
    nothing, unchanged_token = await list_all(google, google_token, syncToken=sync_token)
    assert nothing == []
    inserted = await google.api(
        "POST",
        PRIMARY,
        google_token,
        body={
            "summary": "Dentist",
            "start": timed("2026-11-20T08:00:00"),
            "end": timed("2026-11-20T09:00:00"),
        },
    )
    assert inserted.status == 200
    changes, after_insert = await list_all(google, google_token, syncToken=unchanged_token)
    assert [item["id"] for item in changes] == [inserted.body["id"]]
    deleted = await google.api("DELETE", f"{PRIMARY}/{inserted.body['id']}", google_token)
    assert deleted.status == 204 and deleted.body is None
    changes, _ = await list_all(google, google_token, syncToken=after_insert)
    assert changes == [
        {
            "kind": "calendar#event",
            "etag": changes[0]["etag"],
            "id": inserted.body["id"],
            "status": "cancelled",
            "updated": changes[0]["updated"],
        }
    ]


async def test_changes_made_through_the_admin_api_feed_incremental_sync(
    google: GoogleSandbox, google_token: str
) -> None:
    _, sync_token = await list_all(google, google_token)
    items, _ = await list_all(google, google_token)
    target = next(item for item in items if item.get("summary") == "Quarterly planning")
    await google.admin(
        "PATCH", f"calendars/{quote(DEMO_EMAIL)}/events/{target['id']}", {"summary": "Planning v2"}
    )
    changes, _ = await list_all(google, google_token, syncToken=sync_token)
    assert [(item["id"], item["summary"]) for item in changes] == [(target["id"], "Planning v2")]
    assert changes[0]["etag"] != target["etag"] and changes[0]["updated"] >= target["updated"]


@pytest.mark.parametrize(
    "token",
    ["not-a-token", "Q0FGRTp6eno6MTI="],
)
async def test_unknown_sync_tokens_answer_410_full_sync_required(
    google: GoogleSandbox, google_token: str, token: str
) -> None:
    answer = await google.api("GET", PRIMARY, google_token, params={"syncToken": token})
    assert answer.status == 410
    assert answer.body == {
        "error": {
            "code": 410,
            "message": "Sync token is no longer valid, a full sync is required.",
            "errors": [
                {
                    "message": "Sync token is no longer valid, a full sync is required.",
                    "domain": "global",
                    "reason": "fullSyncRequired",
                }
            ],
        }
    }


async def test_expired_and_foreign_sync_tokens_answer_410(google: GoogleSandbox, google_token: str) -> None:
    _, sync_token = await list_all(google, google_token)
    calendars = (await google.api("GET", "/users/me/calendarList", google_token)).body["items"]
    other = f"/calendars/{quote(calendars[1]['id'])}/events"
    assert (await google.api("GET", other, google_token, params={"syncToken": sync_token})).status == 410
    await google.admin("POST", f"calendars/{quote(DEMO_EMAIL)}/sync-tokens/expire")
    assert (await google.api("GET", PRIMARY, google_token, params={"syncToken": sync_token})).status == 410


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("iCalUID", "x@google.com"),
        ("orderBy", "updated"),
        ("privateExtendedProperty", "a=b"),
        ("q", "stand"),
        ("sharedExtendedProperty", "a=b"),
        ("timeMin", "2026-01-01T00:00:00Z"),
        ("timeMax", "2026-01-01T00:00:00Z"),
        ("updatedMin", "2026-01-01T00:00:00Z"),
        ("showDeleted", "false"),
    ],
)
async def test_parameters_not_allowed_with_a_sync_token_answer_400(
    google: GoogleSandbox, google_token: str, name: str, value: str
) -> None:
    _, sync_token = await list_all(google, google_token)
    answer = await google.api("GET", PRIMARY, google_token, params={"syncToken": sync_token, name: value})
    assert answer.status == 400
    assert answer.body["error"]["errors"][0]["reason"] == "badRequest"
    assert answer.body["error"]["status"] == "INVALID_ARGUMENT"


async def test_deleting_an_instance_records_a_cancelled_exception(
    google: GoogleSandbox, google_token: str
) -> None:
    items, sync_token = await list_all(google, google_token)
    standup = next(item for item in items if item.get("summary") == "Team stand-up" and "recurrence" in item)
    instance = f"{standup['id']}_20261106T083000Z"
    assert (await google.api("DELETE", f"{PRIMARY}/{instance}", google_token)).status == 204
    changes, _ = await list_all(google, google_token, syncToken=sync_token)
    assert changes[0]["id"] == instance and changes[0]["status"] == "cancelled"
    assert changes[0]["recurringEventId"] == standup["id"]
    assert changes[0]["originalStartTime"]["dateTime"] == "2026-11-06T09:30:00+01:00"


async def test_updated_min_includes_deletions_since_then(google: GoogleSandbox, google_token: str) -> None:
    created = (
        await google.api(
            "POST",
            PRIMARY,
            google_token,
            body={"start": {"date": "2026-11-25"}, "end": {"date": "2026-11-26"}},
        )
    ).body
    await google.api("DELETE", f"{PRIMARY}/{created['id']}", google_token)
    items, _ = await list_all(google, google_token, updatedMin=created["updated"])
    assert [(item["id"], item["status"]) for item in items] == [(created["id"], "cancelled")]


async def test_a_thousand_event_page_is_served(google: GoogleSandbox, google_token: str) -> None:
    calendar = google.emulator.store.calendars[DEMO_EMAIL]
    for index in range(1200):
        google.emulator.writer.insert(
            calendar,
            {
                "summary": f"Bulk {index}",
                "start": {"dateTime": f"2027-01-01T{index % 24:02d}:00:00Z"},
                "end": {"dateTime": f"2027-01-01T{index % 24:02d}:30:00Z"},
            },
        )
    page = await google.api("GET", PRIMARY, google_token, params={"maxResults": "1000"})
    assert len(page.body["items"]) == 1000 and "nextPageToken" in page.body


async def test_expanded_series_page_across_page_boundaries_without_gaps(
    google: GoogleSandbox, google_token: str
) -> None:
    window = {"singleEvents": "true", "timeMin": "2026-10-01T00:00:00Z", "timeMax": "2027-01-01T00:00:00Z"}
    whole, _ = await list_all(google, google_token, maxResults="2500", **window)
    paged, _ = await list_all(google, google_token, maxResults="3", **window)
    assert [item["id"] for item in paged] == [item["id"] for item in whole]
    assert len(whole) > 30


async def test_ordered_by_start_time_pages_in_start_order(google: GoogleSandbox, google_token: str) -> None:
    window = {"singleEvents": "true", "orderBy": "startTime", "timeMax": "2026-12-01T00:00:00Z"}
    whole, _ = await list_all(google, google_token, maxResults="2500", **window)
    paged, _ = await list_all(google, google_token, maxResults="4", **window)
    assert [item["id"] for item in paged] == [item["id"] for item in whole]
    instants = [start_instant(item) for item in whole]
    assert instants == sorted(instants)


def start_instant(item: dict[str, Any]) -> datetime:
    start = item["start"]
    if "dateTime" in start:
        return datetime.fromisoformat(start["dateTime"])
    return datetime.fromisoformat(start["date"]).replace(tzinfo=UTC)


async def test_changes_made_while_paging_surface_in_the_next_incremental_sync(
    google: GoogleSandbox, google_token: str
) -> None:
    first = await google.api("GET", PRIMARY, google_token, params={"maxResults": "2"})
    seen = list(first.body["items"])
    target = seen[0]
    renamed = await google.api(
        "PATCH", f"{PRIMARY}/{target['id']}", google_token, body={"summary": "Renamed"}
    )
    assert renamed.status == 200
    rest, sync_token = await list_all(
        google, google_token, maxResults="2", pageToken=first.body["nextPageToken"]
    )
    assert target["id"] not in [item["id"] for item in rest]
    changes, _ = await list_all(google, google_token, syncToken=sync_token)
    assert [(item["id"], item["summary"]) for item in changes] == [(target["id"], "Renamed")]


async def test_instances_of_a_series_with_its_exceptions(google: GoogleSandbox, google_token: str) -> None:
    items, _ = await list_all(google, google_token)
    standup = next(item for item in items if item.get("summary") == "Team stand-up" and "recurrence" in item)
    path = f"{PRIMARY}/{standup['id']}/instances"
    window = {"timeMin": "2026-10-26T00:00:00Z", "timeMax": "2026-11-03T00:00:00Z"}
    listed = await google.api("GET", path, google_token, params=window)
    assert listed.status == 200
    summaries = [(item["id"].rsplit("_", 1)[1], item["summary"]) for item in listed.body["items"]]
    assert summaries == [
        ("20261026T083000Z", "Team stand-up"),
        ("20261028T083000Z", "Team stand-up"),
        ("20261030T083000Z", "Team stand-up (demo day)"),
    ]
    with_deleted = await google.api("GET", path, google_token, params={**window, "showDeleted": "true"})
    assert with_deleted.body["items"][-1]["status"] == "cancelled"
    paged, _ = await list_all(google, google_token, path=path, maxResults="2", **window)
    assert [item["id"] for item in paged] == [item["id"] for item in listed.body["items"]]
    one = await google.api("GET", path, google_token, params={"originalStart": "2026-10-28T09:30:00+01:00"})
    assert [item["summary"] for item in one.body["items"]] == ["Team stand-up"]
    assert one.body["items"][0]["start"]["dateTime"] == "2026-10-28T10:00:00+01:00"
    assert (await google.api("GET", f"{PRIMARY}/nosuchevent1/instances", google_token)).status == 404


async def test_an_empty_window_is_googles_time_range_empty(google: GoogleSandbox, google_token: str) -> None:
    window = {"timeMin": "2026-12-01T00:00:00Z", "timeMax": "2026-11-01T00:00:00Z"}
    answer = await google.api("GET", PRIMARY, google_token, params=window)
    assert answer.status == 400
    assert answer.body["error"]["errors"] == [
        {
            "message": "The specified time range is empty.",
            "domain": "calendar",
            "reason": "timeRangeEmpty",
            "location": "timeMax",
            "locationType": "parameter",
        }
    ]


async def test_a_series_changed_between_two_pages_of_its_instances_loses_nothing_else(
    google: GoogleSandbox, google_token: str
) -> None:
    calendar = google.emulator.store.calendars[DEMO_EMAIL]
    first_series = next(stored for stored in calendar.log.events.values() if "recurrence" in stored.resource)
    window = {"singleEvents": "true", "timeMin": "2026-10-01T00:00:00Z", "timeMax": "2027-01-01T00:00:00Z"}
    whole, _ = await list_all(google, google_token, maxResults="2500", **window)

    def not_generated(items: list[Any]) -> list[str]:
        """Ids of items that are not instances generated from the patched master."""
        stored = calendar.log.events
        return [
            item["id"]
            for item in items
            if item["id"] in stored or item.get("recurringEventId") != first_series.id
        ]

    others = not_generated(whole)
    first = await google.api("GET", PRIMARY, google_token, params={**window, "maxResults": "2"})
    assert all(item["recurringEventId"] == first_series.id for item in first.body["items"])
    patched = await google.api(
        "PATCH", f"{PRIMARY}/{first_series.id}", google_token, body={"location": "Moved"}
    )
    assert patched.status == 200
    rest, _ = await list_all(
        google, google_token, maxResults="2", pageToken=first.body["nextPageToken"], **window
    )
    assert not_generated(rest) == others


async def test_with_single_events_and_show_deleted_a_deleted_series_is_not_listed(
    google: GoogleSandbox, google_token: str
) -> None:
    created = await google.api(
        "POST",
        PRIMARY,
        google_token,
        body={
            "summary": "Short series",
            "start": timed("2026-12-07T10:00:00"),
            "end": timed("2026-12-07T11:00:00"),
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"],
        },
    )
    single = await google.api(
        "POST", PRIMARY, google_token, body={"start": {"date": "2026-12-08"}, "end": {"date": "2026-12-09"}}
    )
    await google.api("DELETE", f"{PRIMARY}/{created.body['id']}", google_token)
    await google.api("DELETE", f"{PRIMARY}/{single.body['id']}", google_token)
    items, _ = await list_all(google, google_token, singleEvents="true", showDeleted="true")
    ids = {item["id"] for item in items}
    assert single.body["id"] in ids and created.body["id"] not in ids
    masters, _ = await list_all(google, google_token, showDeleted="true")
    assert created.body["id"] in {item["id"] for item in masters}


async def test_rdate_and_exdate_with_time_zones_shape_the_series(
    google: GoogleSandbox, google_token: str
) -> None:
    created = await google.api(
        "POST",
        PRIMARY,
        google_token,
        body={
            "summary": "Spring series",
            "start": timed("2026-03-23T09:00:00"),
            "end": timed("2026-03-23T10:00:00"),
            "recurrence": [
                "RRULE:FREQ=DAILY;UNTIL=20260402",
                "EXDATE;TZID=Europe/Berlin:20260325T090000",
                "EXDATE:20260327T080000Z",
                "RDATE;TZID=Europe/Berlin:20260405T090000",
            ],
        },
    )
    assert created.status == 200, created.body
    listed = await google.api("GET", f"{PRIMARY}/{created.body['id']}/instances", google_token)
    days = [item["start"]["dateTime"] for item in listed.body["items"]]
    assert days[:4] == [
        "2026-03-23T09:00:00+01:00",
        "2026-03-24T09:00:00+01:00",
        "2026-03-26T09:00:00+01:00",
        "2026-03-28T09:00:00+01:00",
    ]
    assert days[4] == "2026-03-29T09:00:00+02:00" and days[-1] == "2026-04-05T09:00:00+02:00"
    assert len(days) == 10
    bad = await google.api(
        "POST",
        PRIMARY,
        google_token,
        body={
            "start": timed("2026-03-23T09:00:00"),
            "end": timed("2026-03-23T10:00:00"),
            "recurrence": ["RRULE:FREQ=DAILY", "EXDATE;TZID=Mars/Olympus:20260325T090000"],
        },
    )
    assert bad.status == 400 and bad.body["error"]["errors"][0]["reason"] == "invalid"


async def test_max_attendees_keeps_only_the_calendar_owner(google: GoogleSandbox, google_token: str) -> None:
    items, _ = await list_all(google, google_token, maxAttendees="2", q="stand-up")
    master = next(item for item in items if "recurrence" in item)
    assert master["attendeesOmitted"] is True
    assert [attendee["email"] for attendee in master["attendees"]] == [DEMO_EMAIL]


async def test_time_zone_parameter_writes_times_in_that_zone(
    google: GoogleSandbox, google_token: str
) -> None:
    answer = await google.api(
        "GET", PRIMARY, google_token, params={"timeZone": "America/New_York", "q": "Quarterly"}
    )
    assert answer.body["timeZone"] == "America/New_York"
    assert answer.body["items"][0]["start"] == {
        "dateTime": "2026-11-12T08:00:00-05:00",
        "timeZone": "Europe/Berlin",
    }
    refused = await google.api("GET", PRIMARY, google_token, params={"timeZone": "Mars/Olympus"})
    assert refused.status == 400
