"""Provider payloads (recorded from the emulators and Radicale, or written after the providers'
documented shapes) parsed into ``EventData``: ids, times and zones, recurrence, attendees,
deletions, and the same calendar normalising alike for Google, Microsoft and CalDAV."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from contract.sync_dataset import Dataset, expected_occurrences, occurrences
from structlog.testing import capture_logs

from chronapilot.common.providers import CursorExpired
from chronapilot.common.providers.google.parse import parse_event as parse_google
from chronapilot.common.providers.google.sync import page_of as google_page
from chronapilot.common.providers.icloud.parse import (
    Fetched,
    href_key,
    multiget_answer,
    parse_resource,
    sync_answer,
)
from chronapilot.common.providers.icloud.sync import ICloudSync, decode_ctag_cursor, encode_ctag_cursor
from chronapilot.common.providers.microsoft.parse import parse_event as parse_graph
from chronapilot.common.providers.microsoft.sync import page_of as microsoft_page
from chronapilot.common.providers.sync import Attendee, EventData, EventTime
from chronapilot.common.providers.zones import iana_zone

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ICLOUD_HOME = "https://p62-caldav.icloud.com/17149682/calendars/home/"


def fixture_json(path: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / path).read_text())
    return data


def fixture_bytes(path: str) -> bytes:
    return (FIXTURES / path).read_bytes()


def by_id(events: tuple[EventData, ...] | list[EventData]) -> dict[str, EventData]:
    return {event.provider_event_id: event for event in events}


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def caldav_events(multiget: bytes, base: str) -> list[EventData]:
    events: list[EventData] = []
    for item in multiget_answer(multiget):
        if item.data is not None:
            events += parse_resource(href_key(base, item.href), item.etag, item.data)
    return events


# the same calendar, three providers ------------------------------------------------------------


def test_the_recorded_dataset_normalises_alike_for_google_microsoft_and_caldav() -> None:
    google = google_page(fixture_json("google/events_list_dataset.json"), next_cursor="t").upserts
    microsoft = microsoft_page(
        fixture_json("microsoft/calendarview_delta_dataset.json"), next_cursor=None
    ).upserts
    caldav = caldav_events(fixture_bytes("icloud/multiget_radicale.xml"), "http://caldav.example/u/sync/")

    recorded = expected_occurrences(Dataset.for_year(2026))  # the year the fixtures were recorded in
    assert occurrences(google) == recorded
    assert occurrences(microsoft) == recorded
    assert occurrences(caldav) == recorded


# Google ----------------------------------------------------------------------------------------


def test_google_masters_keep_their_recurrence_and_exceptions_name_them() -> None:
    events = google_page(fixture_json("google/events_list_dataset.json"), next_cursor="t").upserts

    master = next(e for e in events if e.recurrence)
    exceptions = [e for e in events if e.recurring_event_id]
    assert master.recurrence == ("RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=8",)
    assert master.start == EventTime(utc(2026, 3, 2, 8, 0), None, "Europe/Berlin")
    assert {e.recurring_event_id for e in exceptions} == {master.provider_event_id}
    assert sorted(e.status for e in exceptions) == ["cancelled", "confirmed"]
    assert {e.provider_event_id for e in exceptions} == {
        f"{master.provider_event_id}_20260316T080000Z",
        f"{master.provider_event_id}_20260406T070000Z",
    }
    assert {e.ical_uid for e in events if e.recurring_event_id} - {None} == {master.ical_uid}


def test_google_cancelled_events_are_deletions_and_cancelled_instances_are_kept() -> None:
    page = google_page(fixture_json("google/events_incremental_quirks.json"), next_cursor=None)

    events = by_id(page.upserts)
    assert page.deletions == ("deleted0001",)
    assert page.next_cursor is None
    instance = events["series0001_20260310T140000Z"]
    assert instance.status == "cancelled"
    assert instance.recurring_event_id == "series0001"
    assert instance.original_start == EventTime(utc(2026, 3, 10, 14, 0), None, "America/New_York")
    assert instance.start is None and instance.title is None


def test_google_a_time_without_a_zone_is_in_the_calendars_zone() -> None:
    events = by_id(
        google_page(fixture_json("google/events_incremental_quirks.json"), next_cursor=None).upserts
    )

    event = events["floating0001"]
    assert event.start == EventTime(utc(2026, 3, 11, 13, 0), None, "America/New_York")
    assert event.end == EventTime(utc(2026, 3, 11, 13, 45), None, "America/New_York")
    assert event.status == "tentative"
    assert event.etag == '"3381000000000002"'
    assert event.updated_at == utc(2026, 2, 1, 10, 0)


def test_google_attendees_and_the_organizer() -> None:
    event = by_id(
        google_page(fixture_json("google/events_incremental_quirks.json"), next_cursor=None).upserts
    )["floating0001"]

    assert event.organizer == Attendee("lee@example.com", "Lee", "accepted", False, True)
    assert event.attendees == (
        Attendee("lee@example.com", None, "accepted", False, True),
        Attendee("max@example.com", None, "needsAction", True, False),
        Attendee("weird@example.com", None, "needsAction", False, False),
    )


def test_google_all_day_masters_are_dates_with_an_exclusive_end() -> None:
    event = by_id(
        google_page(fixture_json("google/events_incremental_quirks.json"), next_cursor=None).upserts
    )["allday0001"]

    assert event.all_day
    assert event.start == EventTime(None, date(2026, 5, 4), None)
    assert event.end == EventTime(None, date(2026, 5, 7), None)
    assert event.recurrence == ("RRULE:FREQ=YEARLY;COUNT=3", "EXDATE;VALUE=DATE:20270504")


# Microsoft -------------------------------------------------------------------------------------


def test_microsoft_occurrences_name_their_master_and_keep_the_windows_zone_as_iana() -> None:
    events = microsoft_page(
        fixture_json("microsoft/calendarview_delta_dataset.json"), next_cursor="x"
    ).upserts

    series = [e for e in events if e.recurring_event_id]
    assert len(series) == 7 and len({e.recurring_event_id for e in series}) == 1
    first = min(series, key=lambda e: e.start.date_time if e.start and e.start.date_time else utc(2100, 1, 1))
    assert first.start == EventTime(utc(2026, 3, 2, 8, 0), None, "Europe/Berlin")
    assert first.original_start == EventTime(utc(2026, 3, 2, 8, 0), None, "Europe/Berlin")
    assert first.description == "Agenda in the shared doc"
    assert {e.ical_uid for e in series} == {first.raw["uid"]}
    assert first.recurrence == ()


def test_microsoft_removed_items_are_deletions() -> None:
    page = microsoft_page(fixture_json("microsoft/calendarview_delta_quirks.json"), next_cursor=None)

    assert page.deletions == ("AAMkADREMOVED1",)
    assert "AAMkADREMOVED1" not in by_id(page.upserts)


def test_microsoft_html_bodies_become_text_and_zones_map_to_iana() -> None:
    event = by_id(
        microsoft_page(fixture_json("microsoft/calendarview_delta_quirks.json"), next_cursor=None).upserts
    )["AAMkADHTML1"]

    assert event.description == "Numbers & plans Bring laptops"
    assert event.start == EventTime(utc(2026, 7, 1, 13, 0), None, "America/Los_Angeles")
    assert event.location is None
    assert event.etag == "DwAAABYAAAAQ"
    assert event.ical_uid == "040000008200E00074C5B7101A82E00800000000HTML1"
    assert event.updated_at == datetime(2026, 2, 2, 9, 0, 0, 765432, tzinfo=UTC)
    assert event.organizer == Attendee("pat@contoso.com", "Pat", "accepted", False, True)
    assert event.attendees == (
        Attendee("room5@contoso.com", "Room 5", "needsAction", False, False),
        Attendee("pat@contoso.com", "Pat", "accepted", False, True),
    )


def test_microsoft_all_day_events_are_dates() -> None:
    event = by_id(
        microsoft_page(fixture_json("microsoft/calendarview_delta_quirks.json"), next_cursor=None).upserts
    )["AAMkADALLDAY1"]

    assert event.all_day
    assert (event.start, event.end) == (
        EventTime(None, date(2026, 12, 24), None),
        EventTime(None, date(2026, 12, 26), None),
    )
    assert event.description is None and event.location == "Office"


def test_microsoft_a_cancelled_exception_in_a_custom_zone() -> None:
    event = by_id(
        microsoft_page(fixture_json("microsoft/calendarview_delta_quirks.json"), next_cursor=None).upserts
    )["AAMkADEXC1"]

    assert event.status == "cancelled"
    assert event.recurring_event_id == "AAMkADSERIES1"
    assert event.ical_uid == "040000008200E00074C5B7101A82E00800000000SERIES1"
    assert event.start == EventTime(utc(2026, 3, 10, 16, 0), None, "UTC")
    assert event.original_start == EventTime(utc(2026, 3, 10, 15, 0), None, None)
    assert event.attendees == (Attendee("sam@contoso.com", "Sam", "tentative", True, False),)


# busy or not: transparency and the owner's own answer -----------------------------------------


def _google_item(event_id: str) -> dict[str, Any]:
    items = fixture_json("google/events_incremental_quirks.json")["items"]
    return dict(next(item for item in items if item["id"] == event_id))


def _graph_item(event_id: str) -> dict[str, Any]:
    items = fixture_json("microsoft/calendarview_delta_quirks.json")["value"]
    return dict(next(item for item in items if item["id"] == event_id))


@pytest.mark.parametrize(
    ("given", "transparency"), [(None, "opaque"), ("opaque", "opaque"), ("transparent", "transparent")]
)
def test_google_transparency_defaults_to_opaque(given: str | None, transparency: str) -> None:
    item = _google_item("floating0001")
    if given is not None:
        item["transparency"] = given

    assert parse_google(item, "America/New_York").transparency == transparency


def test_google_the_attendee_flagged_self_gives_the_owners_own_answer() -> None:
    item = _google_item("floating0001")
    me = {"email": "me@example.com", "self": True, "responseStatus": "declined"}
    item["attendees"] = [*item["attendees"], me]
    event = parse_google(item, None)

    assert event.own_response == "declined"
    assert Attendee("me@example.com", None, "declined", False, False) in event.attendees


def test_google_says_whose_copy_it_is_so_an_attendee_list_without_self_is_not_the_owners_answer() -> None:
    """``self`` marks the calendar this copy is on; attendees listed but none flagged: the
    calendar's owner is not invited (as Graph's ``none``: needsAction), even when the account's
    e-mail is among them (a secondary calendar's copy); the organizer's own copy: accepted."""
    item = _google_item("floating0001")
    assert parse_google(item, None).own_response == "needsAction"

    item["attendees"] = [*item["attendees"], {"email": "me@example.com", "responseStatus": "declined"}]
    assert parse_google(item, None).own_response == "needsAction"

    item["organizer"] = {**item["organizer"], "self": True}
    assert parse_google(item, None).own_response == "accepted"

    item.pop("attendees")  # no invitation at all: nothing to answer, as before
    assert parse_google(item, None).own_response is None


@pytest.mark.parametrize(
    ("show_as", "transparency"),
    [
        (None, "opaque"),
        ("busy", "opaque"),
        ("tentative", "opaque"),
        ("oof", "opaque"),
        ("unknown", "opaque"),
        ("free", "transparent"),
        ("workingElsewhere", "transparent"),
    ],
)
def test_microsoft_show_as_free_and_working_elsewhere_are_transparent(
    show_as: str | None, transparency: str
) -> None:
    item = _graph_item("AAMkADHTML1")
    item.pop("showAs", None)
    if show_as is not None:
        item["showAs"] = show_as

    assert parse_graph(item).transparency == transparency


@pytest.mark.parametrize(
    ("response", "own"),
    [
        (None, None),
        ("organizer", "accepted"),
        ("accepted", "accepted"),
        ("declined", "declined"),
        ("tentativelyAccepted", "tentative"),
        ("notResponded", "needsAction"),
        ("none", "needsAction"),
    ],
)
def test_microsoft_response_status_is_the_owners_own_answer(response: str | None, own: str | None) -> None:
    item = _graph_item("AAMkADHTML1")
    item.pop("responseStatus", None)
    if response is not None:
        item["responseStatus"] = {"response": response, "time": "2026-03-01T10:00:00Z"}

    assert parse_graph(item).own_response == own


@pytest.mark.parametrize(
    ("transp", "transparency"),
    [(None, "opaque"), ("OPAQUE", "opaque"), ("TRANSPARENT", "transparent"), ("transparent", "transparent")],
)
def test_caldav_transp_defaults_to_opaque(transp: str | None, transparency: str) -> None:
    line = f"TRANSP:{transp}\r\n" if transp else ""
    ics = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:transp-1\r\n"
        "DTSTART:20260922T090000Z\r\nDTEND:20260922T100000Z\r\nDTSTAMP:20260601T080000Z\r\n"
        "ATTENDEE;PARTSTAT=DECLINED:mailto:me@example.com\r\n"
        f"{line}SUMMARY:Focus\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )

    (event,) = parse_resource("/cal/transp-1.ics", '"1"', ics)

    assert event.transparency == transparency
    assert event.own_response is None  # CalDAV names no "self": readers match the account's e-mail
    assert event.attendees == (Attendee("me@example.com", None, "declined", False, False),)


# CalDAV ----------------------------------------------------------------------------------------


def test_a_truncated_sync_answer_skips_the_collection_and_keeps_the_token() -> None:
    answer = sync_answer(fixture_bytes("icloud/sync_collection_icloud_truncated.xml"), ICLOUD_HOME)

    assert answer.truncated
    changed = "/17149682/calendars/home/3C5B7C2A-1D4B-4E0E-9D0B-7E61C1A5D001.ics"
    assert answer.changed == {changed: '"C=441@U=6c0f7a2e-91f9-4d0e-b5d3-2f6b0d6b0c11"'}
    assert answer.removed == ["/17149682/calendars/home/9F1E2D3C-0000-4B4B-8A8A-DELETED00001.ics"]
    assert answer.sync_token == "HwoQEgwAAAhHrlSxPQAAAAAYAhgAIhYI4qDz/+Kl76/1ARCDgoXSt6uLp/sBKAA="


def test_radicales_sync_answer() -> None:
    base = "http://caldav.example/demo.icloud%40sandbox.chronapilot.dev/sync-1c588d28/"
    answer = sync_answer(fixture_bytes("icloud/sync_collection_radicale.xml"), base)

    assert not answer.truncated and not answer.removed
    assert len(answer.changed) == 4
    assert all(href.endswith(".ics") and etag.startswith('"') for href, etag in answer.changed.items())
    assert answer.sync_token is not None and answer.sync_token.startswith("http://radicale.org/ns/sync/")


@pytest.mark.parametrize("status", ["HTTP/1.1 \u00b2\u00b2\u00b2 Odd", "HTTP/1.1 " + "4" * 5000 + " Long"])
def test_a_status_line_without_three_ascii_digits_reads_as_no_status(status: str) -> None:
    body = f"""<?xml version="1.0"?>
<d:multistatus xmlns:d="DAV:"><d:response><d:href>/cal/a.ics</d:href><d:status>{status}</d:status>
<d:propstat><d:prop><d:getetag>"e1"</d:getetag></d:prop><d:status>{status}</d:status></d:propstat>
</d:response><d:sync-token>t1</d:sync-token></d:multistatus>""".encode()
    answer = sync_answer(body, "http://caldav.example/cal/")
    assert answer.changed == {"/cal/a.ics": '"e1"'}  # read as a change without a status
    assert answer.sync_token == "t1"


def test_hrefs_are_compared_percent_decoded() -> None:
    assert href_key("http://h/a%40b/cal/", "/a%40b/cal/x.ics") == href_key(
        "http://h/a@b/cal/", "/a@b/cal/x.ics"
    )


def test_a_multiget_answer_reports_missing_hrefs_without_failing() -> None:
    fetched = multiget_answer(fixture_bytes("icloud/multiget_icloud_quirks.xml"))

    assert [item.data is None for item in fetched] == [False, False, False, True]
    assert fetched[0].etag == '"C=441@U=6c0f7a2e-91f9-4d0e-b5d3-2f6b0d6b0c11"'


def test_a_caldav_series_is_its_master_and_its_overrides() -> None:
    events = by_id(caldav_events(fixture_bytes("icloud/multiget_icloud_quirks.xml"), ICLOUD_HOME))
    href = "/17149682/calendars/home/3C5B7C2A-1D4B-4E0E-9D0B-7E61C1A5D001.ics"

    master, moved = events[href], events[f"{href}#20260316T080000Z"]
    assert sorted(master.recurrence) == [
        "EXDATE;TZID=Europe/Berlin:20260406T090000",
        "RRULE:FREQ=WEEKLY;COUNT=8;BYDAY=MO",
    ]
    assert master.start == EventTime(utc(2026, 3, 2, 8, 0), None, "Europe/Berlin")
    assert master.end == EventTime(utc(2026, 3, 2, 8, 30), None, "Europe/Berlin")
    assert master.updated_at == utc(2026, 2, 10, 12, 0)
    assert master.ical_uid == moved.ical_uid == "6c0f7a2e-91f9-4d0e-b5d3-2f6b0d6b0c11"
    assert master.etag == moved.etag == '"C=441@U=6c0f7a2e-91f9-4d0e-b5d3-2f6b0d6b0c11"'
    assert master.organizer == Attendee("demo@icloud.com", "Demo", "accepted", False, True)
    assert master.attendees == (
        Attendee("ann@example.com", "Ann", "accepted", False, False),
        Attendee("cid@example.com", "Cid", "tentative", True, False),
        Attendee("dee@example.com", "Dee", "needsAction", False, False),
    )
    assert moved.recurring_event_id == href and moved.recurrence == ()
    assert moved.original_start == EventTime(utc(2026, 3, 16, 8, 0), None, "Europe/Berlin")
    assert moved.start == EventTime(utc(2026, 3, 16, 10, 0), None, "Europe/Berlin")
    assert moved.title == "Weekly planning (moved)"
    assert "X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC" in master.raw["ics"]


def test_a_caldav_override_without_its_master_in_a_windows_zone() -> None:
    events = by_id(caldav_events(fixture_bytes("icloud/multiget_icloud_quirks.xml"), ICLOUD_HOME))
    href = "/17149682/calendars/home/INVITE-0001.ics"

    (event,) = [e for e in events.values() if e.recurring_event_id == href]
    assert href not in events
    assert event.provider_event_id == f"{href}#20260701T120000Z"
    assert event.start == EventTime(utc(2026, 7, 1, 13, 0), None, "Europe/Berlin")
    assert event.end == EventTime(utc(2026, 7, 1, 13, 45), None, "Europe/Berlin")
    assert event.status == "tentative"
    assert event.updated_at == utc(2026, 6, 1, 8, 0)


def test_a_caldav_all_day_event_without_an_end_lasts_one_day() -> None:
    event = by_id(caldav_events(fixture_bytes("icloud/multiget_icloud_quirks.xml"), ICLOUD_HOME))[
        "/17149682/calendars/home/ALLDAY-0001.ics"
    ]

    assert event.all_day and event.status == "cancelled"
    assert (event.start, event.end) == (
        EventTime(None, date(2026, 9, 22), None),
        EventTime(None, date(2026, 9, 23), None),
    )


def test_the_ctag_cursor_round_trips_and_a_garbled_one_is_expired() -> None:
    etags = {f"/u/cal/{n}.ics": f'"etag-{n}"' for n in range(500)}

    cursor = encode_ctag_cursor("ctag-7", etags)

    assert cursor.startswith("ctag:") and len(cursor) < 40 * len(etags)
    assert decode_ctag_cursor(cursor) == ("ctag-7", etags)
    with pytest.raises(CursorExpired):
        decode_ctag_cursor("ctag:bm90IGEgY3Vyc29y")


@pytest.mark.parametrize(
    ("name", "iana"),
    [
        ("W. Europe Standard Time", "Europe/Berlin"),
        ("Eastern Standard Time", "America/New_York"),
        ("Europe/Paris", "Europe/Paris"),
        ("UTC", "UTC"),
        ("tzone://Microsoft/Utc", "UTC"),
        ("tzone://Microsoft/Custom", None),
        ("", None),
    ],
)
def test_zone_names_map_to_iana(name: str, iana: str | None) -> None:
    assert iana_zone(name) == iana


# unreadable payloads ---------------------------------------------------------------------------


def unreadable(logs: list[dict[str, Any]]) -> list[str]:
    return [entry["event_id"] for entry in logs if entry["event"] == "sync.event_unreadable"]


def test_one_unreadable_google_event_is_skipped_and_logged() -> None:
    body = fixture_json("google/events_incremental_quirks.json")
    body["items"].append({"id": "broken0001", "status": "confirmed", "start": {"dateTime": "not a time"}})

    with capture_logs() as logs:
        page = google_page(body, next_cursor=None)

    assert "broken0001" not in by_id(page.upserts) and "floating0001" in by_id(page.upserts)
    assert unreadable(logs) == ["broken0001"]


def test_one_unreadable_graph_event_is_skipped_and_logged() -> None:
    body = fixture_json("microsoft/calendarview_delta_quirks.json")
    body["value"].append({"id": "AAMkADBROKEN", "start": {"dateTime": "31/12/2026", "timeZone": "UTC"}})

    with capture_logs() as logs:
        page = microsoft_page(body, next_cursor=None)

    assert "AAMkADBROKEN" not in by_id(page.upserts) and "AAMkADHTML1" in by_id(page.upserts)
    assert unreadable(logs) == ["AAMkADBROKEN"]


def test_one_unreadable_caldav_resource_is_skipped_and_logged() -> None:
    fetched = multiget_answer(fixture_bytes("icloud/multiget_icloud_quirks.xml"))
    broken = Fetched("/17149682/calendars/home/BROKEN.ics", '"x"', "BEGIN:VCALENDAR\nthis is not iCalendar")
    sync = ICloudSync(None, ICLOUD_HOME)  # type: ignore[arg-type]  # parsing needs no requests

    with capture_logs() as logs:
        parsed = dict(sync._parse_batch([*fetched, broken]))

    assert "/17149682/calendars/home/BROKEN.ics" not in parsed
    assert parsed["/17149682/calendars/home/GONE-0001.ics"] is None
    assert len(parsed) == 4
    assert unreadable(logs) == ["/17149682/calendars/home/BROKEN.ics"]
