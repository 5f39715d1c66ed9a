"""Google write-back: every write goes through ``GoogleProvider`` against the Google emulator, and
is checked at the provider with Google's own client (google-api-python-client, pointed at the
emulator only through ``api_endpoint``), the way a user's calendar would show it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from google.auth.transport.requests import Request
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from providers_fixtures import Connection, World, google_world

from chronapilot.common.providers import READ, build_providers
from chronapilot.common.providers.errors import Throttled, Unavailable
from chronapilot.common.providers.google.client import (
    CALENDAR_LIST_READONLY_SCOPE,
    EVENTS_SCOPE,
    GoogleProvider,
)
from chronapilot.common.providers.sync import Attendee, EventTime
from chronapilot.common.providers.writes import (
    EventDraft,
    EventNotFound,
    PreconditionFailed,
    WriteRefused,
    google_event_id,
)
from chronapilot.sandbox.google import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET

EVENTS_ROUTE = "/calendar/v3/calendars/{calendarId}/events"
KOLKATA, BERLIN = "Asia/Kolkata", "Europe/Berlin"


@dataclass
class Writes:
    """The provider under test, a connection's token source, and Google's client beside it."""

    world: World
    provider: GoogleProvider
    connection: Connection
    service: Any
    calendar: str

    async def at_google(self, request: Any) -> Any:
        """Run a googleapiclient request (synchronous) off the event loop."""
        return await asyncio.to_thread(request.execute)

    async def get(self, event_id: str) -> dict[str, Any]:
        return await self.at_google(self.service.events().get(calendarId=self.calendar, eventId=event_id))

    async def instances(self, event_id: str) -> list[dict[str, Any]]:
        answer = await self.at_google(
            self.service.events().instances(calendarId=self.calendar, eventId=event_id)
        )
        return list(answer["items"])

    async def fault(self, **fault: Any) -> None:
        await self.world.call_admin("POST", "faults", fault)


def google_provider(world: World) -> GoogleProvider:
    provider = world.provider
    assert isinstance(provider, GoogleProvider)
    return provider


@pytest.fixture
async def writes() -> AsyncIterator[Writes]:
    async with aiohttp.ClientSession() as http, google_world(http) as world:
        connection = await world.connect()
        assert connection.tokens.refresh_token
        creds = Credentials(
            token=None,
            refresh_token=connection.tokens.refresh_token,
            token_uri=f"{world.base_url}/token",
            client_id=SANDBOX_CLIENT_ID,
            client_secret=SANDBOX_CLIENT_SECRET,
            scopes=[EVENTS_SCOPE, CALENDAR_LIST_READONLY_SCOPE],  # what the grant holds
        )
        await asyncio.to_thread(creds.refresh, Request())
        service = build(
            "calendar",
            "v3",
            credentials=creds,
            static_discovery=True,
            client_options={"api_endpoint": f"{world.base_url}/calendar/v3/"},
        )
        assert world.primary is not None
        yield Writes(world, google_provider(world), connection, service, world.primary)


def timed(local: str, zone: str) -> EventTime:
    """``local`` wall time in ``zone`` as the aware UTC instant an EventTime holds."""
    from zoneinfo import ZoneInfo

    instant = datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
    return EventTime(date_time=instant, date=None, timezone=zone)


def all_day(day: str) -> EventTime:
    return EventTime(date_time=None, date=date.fromisoformat(day), timezone=None)


def meeting(title: str = "Planning", **changes: Any) -> EventDraft:
    draft = EventDraft(
        title=title,
        description="Quarterly planning",
        location="Room 4",
        start=timed("2027-01-04T09:00:00", KOLKATA),
        end=timed("2027-01-04T10:30:00", KOLKATA),
        attendees=(
            Attendee("ana@example.com", "Ana", "needsAction", optional=False, organizer=False),
            Attendee("bo@example.com", None, "needsAction", optional=True, organizer=False),
        ),
    )
    return replace(draft, **changes)


def weekly(title: str = "Stand-up") -> EventDraft:
    return EventDraft(
        title=title,
        start=timed("2027-01-04T09:00:00", BERLIN),
        end=timed("2027-01-04T09:15:00", BERLIN),
        recurrence=("RRULE:FREQ=WEEKLY;COUNT=4",),
    )


def patch(**fields: Any) -> EventDraft:
    return EventDraft(**fields, fields=frozenset(fields))


async def test_a_timed_create_keeps_the_zone_and_the_wall_time_at_google(writes: Writes) -> None:
    created = await writes.provider.create_event(
        writes.connection.token, writes.calendar, meeting(), write_id="wr_kolkata"
    )
    stored = await writes.get(created.provider_event_id)
    assert stored["id"] == google_event_id("wr_kolkata") == created.provider_event_id
    assert stored["start"] == {"dateTime": "2027-01-04T09:00:00+05:30", "timeZone": KOLKATA}
    assert stored["end"] == {"dateTime": "2027-01-04T10:30:00+05:30", "timeZone": KOLKATA}
    assert (stored["summary"], stored["description"], stored["location"]) == (
        "Planning",
        "Quarterly planning",
        "Room 4",
    )
    assert [(a["email"], a.get("displayName"), a.get("optional", False)) for a in stored["attendees"]] == [
        ("ana@example.com", "Ana", False),
        ("bo@example.com", None, True),
    ]
    assert created.etag == stored["etag"] and created.ical_uid == stored["iCalUID"]
    assert created.start == EventTime(datetime(2027, 1, 4, 3, 30, tzinfo=UTC), None, KOLKATA)
    assert not created.all_day and created.status == "confirmed"


async def test_an_all_day_create_stays_all_day(writes: Writes) -> None:
    draft = EventDraft(title="Offsite", start=all_day("2027-02-01"), end=all_day("2027-02-03"))
    created = await writes.provider.create_event(
        writes.connection.token, writes.calendar, draft, write_id="wr_day"
    )
    stored = await writes.get(created.provider_event_id)
    assert (stored["start"], stored["end"]) == ({"date": "2027-02-01"}, {"date": "2027-02-03"})
    assert created.all_day and created.end == all_day("2027-02-03")


async def test_a_patch_changes_only_the_fields_named(writes: Writes) -> None:
    token = writes.connection.token
    created = await writes.provider.create_event(token, writes.calendar, meeting(), write_id="wr_patch")
    changed = await writes.provider.update_event(
        token, writes.calendar, created.provider_event_id, patch(title="Planning (moved)", location=None)
    )
    stored = await writes.get(created.provider_event_id)
    assert stored["summary"] == "Planning (moved)" and "location" not in stored
    assert stored["description"] == "Quarterly planning" and stored["start"]["timeZone"] == KOLKATA
    assert len(stored["attendees"]) == 2
    assert changed.etag == stored["etag"] != created.etag and changed.title == "Planning (moved)"


async def test_a_patch_moves_a_timed_event_to_all_day_and_back(writes: Writes) -> None:
    token = writes.connection.token
    created = await writes.provider.create_event(token, writes.calendar, meeting(), write_id="wr_switch")
    await writes.provider.update_event(
        token,
        writes.calendar,
        created.provider_event_id,
        patch(start=all_day("2027-01-05"), end=all_day("2027-01-06")),
    )
    assert (await writes.get(created.provider_event_id))["start"] == {"date": "2027-01-05"}
    back = await writes.provider.update_event(
        token,
        writes.calendar,
        created.provider_event_id,
        patch(start=timed("2027-01-05T14:00:00", BERLIN), end=timed("2027-01-05T15:00:00", BERLIN)),
    )
    stored = await writes.get(created.provider_event_id)
    assert stored["start"] == {"dateTime": "2027-01-05T14:00:00+01:00", "timeZone": BERLIN}
    assert not back.all_day


async def test_delete_removes_the_event_and_a_second_delete_is_done(writes: Writes) -> None:
    token = writes.connection.token
    created = await writes.provider.create_event(token, writes.calendar, meeting(), write_id="wr_delete")
    await writes.provider.delete_event(token, writes.calendar, created.provider_event_id)
    assert (await writes.get(created.provider_event_id))["status"] == "cancelled"
    listed = await writes.at_google(writes.service.events().list(calendarId=writes.calendar))
    assert created.provider_event_id not in {item["id"] for item in listed["items"]}
    await writes.provider.delete_event(token, writes.calendar, created.provider_event_id)
    await writes.provider.delete_event(token, writes.calendar, "neverexisted00")


async def test_one_occurrence_edited_and_one_cancelled(writes: Writes) -> None:
    token = writes.connection.token
    series = await writes.provider.create_event(token, writes.calendar, weekly(), write_id="wr_series")
    assert series.recurrence == ("RRULE:FREQ=WEEKLY;COUNT=4",)
    before = await writes.instances(series.provider_event_id)
    assert [item["start"]["dateTime"] for item in before] == [
        f"2027-01-{day}T09:00:00+01:00" for day in ("04", "11", "18", "25")
    ]

    second = timed("2027-01-11T09:00:00", BERLIN)
    exception = await writes.provider.update_event(
        token,
        writes.calendar,
        series.provider_event_id,
        patch(
            title="Stand-up (demo day)",
            start=timed("2027-01-11T10:00:00", BERLIN),
            end=timed("2027-01-11T10:30:00", BERLIN),
        ),
        original_start=second,
    )
    assert exception.recurring_event_id == series.provider_event_id
    assert exception.original_start is not None and exception.original_start.date_time == second.date_time
    third = timed("2027-01-18T09:00:00", BERLIN)
    await writes.provider.delete_event(token, writes.calendar, series.provider_event_id, original_start=third)

    after = await writes.instances(series.provider_event_id)
    assert [(item["start"]["dateTime"], item["summary"]) for item in after] == [
        ("2027-01-04T09:00:00+01:00", "Stand-up"),
        ("2027-01-11T10:00:00+01:00", "Stand-up (demo day)"),
        ("2027-01-25T09:00:00+01:00", "Stand-up"),
    ]
    assert after[1]["id"] == exception.provider_event_id == f"{series.provider_event_id}_20270111T080000Z"
    master = await writes.get(series.provider_event_id)
    assert master["summary"] == "Stand-up" and master["recurrence"] == ["RRULE:FREQ=WEEKLY;COUNT=4"]


async def test_one_occurrence_of_an_all_day_series_cancelled(writes: Writes) -> None:
    token = writes.connection.token
    draft = EventDraft(
        title="Bins out",
        start=all_day("2027-03-01"),
        end=all_day("2027-03-02"),
        recurrence=("RRULE:FREQ=WEEKLY;COUNT=3",),
    )
    series = await writes.provider.create_event(token, writes.calendar, draft, write_id="wr_bins")
    await writes.provider.delete_event(
        token, writes.calendar, series.provider_event_id, original_start=all_day("2027-03-08")
    )
    after = await writes.instances(series.provider_event_id)
    assert [item["start"]["date"] for item in after] == ["2027-03-01", "2027-03-15"]


async def test_a_create_retried_with_its_write_id_makes_one_event(writes: Writes) -> None:
    token = writes.connection.token
    first = await writes.provider.create_event(token, writes.calendar, meeting(), write_id="wr_twice")
    again = await writes.provider.create_event(token, writes.calendar, meeting(), write_id="wr_twice")
    assert again.provider_event_id == first.provider_event_id and again.etag == first.etag
    listed = await writes.at_google(
        writes.service.events().list(calendarId=writes.calendar, iCalUID=first.ical_uid)
    )
    assert [item["id"] for item in listed["items"]] == [first.provider_event_id]


async def test_a_create_whose_answer_was_lost_is_not_made_twice(writes: Writes) -> None:
    token = writes.connection.token
    settings = writes.world.settings.model_copy(update={"http_timeout_s": 0.3})
    async with aiohttp.ClientSession() as http:
        impatient = build_providers(settings, http)["google"]
        assert isinstance(impatient, GoogleProvider)
        await writes.fault(route=EVENTS_ROUTE, method="POST", latency_ms=800, times=1)
        with pytest.raises(Unavailable):
            await impatient.create_event(token, writes.calendar, meeting(), write_id="wr_lost")
    event_id = google_event_id("wr_lost")
    for _ in range(50):  # Google made the event after all; the answer never arrived
        try:
            await writes.get(event_id)
            break
        except HttpError:
            await asyncio.sleep(0.05)
    retried = await writes.provider.create_event(token, writes.calendar, meeting(), write_id="wr_lost")
    assert retried.provider_event_id == event_id
    listed = await writes.at_google(
        writes.service.events().list(calendarId=writes.calendar, iCalUID=retried.ical_uid)
    )
    assert len(listed["items"]) == 1


async def test_a_retry_after_the_event_was_deleted_does_not_bring_it_back(writes: Writes) -> None:
    token = writes.connection.token
    created = await writes.provider.create_event(token, writes.calendar, meeting(), write_id="wr_gone")
    await writes.at_google(
        writes.service.events().delete(calendarId=writes.calendar, eventId=created.provider_event_id)
    )
    with pytest.raises(EventNotFound):
        await writes.provider.create_event(token, writes.calendar, meeting(), write_id="wr_gone")
    assert (await writes.get(created.provider_event_id))["status"] == "cancelled"


async def test_a_stale_etag_is_precondition_failed_and_the_event_is_unchanged(writes: Writes) -> None:
    token = writes.connection.token
    created = await writes.provider.create_event(token, writes.calendar, meeting(), write_id="wr_etag")
    elsewhere = await writes.at_google(
        writes.service.events().patch(
            calendarId=writes.calendar,
            eventId=created.provider_event_id,
            body={"summary": "Changed at Google"},
        )
    )
    with pytest.raises(PreconditionFailed):
        await writes.provider.update_event(
            token, writes.calendar, created.provider_event_id, patch(title="Ours"), if_match=created.etag
        )
    with pytest.raises(PreconditionFailed):
        await writes.provider.delete_event(
            token, writes.calendar, created.provider_event_id, if_match=created.etag
        )
    stored = await writes.get(created.provider_event_id)
    assert stored["summary"] == "Changed at Google" and stored["etag"] == elsewhere["etag"]
    assert stored["status"] == "confirmed"
    fresh = await writes.provider.update_event(
        token, writes.calendar, created.provider_event_id, patch(title="Ours"), if_match=elsewhere["etag"]
    )
    assert fresh.title == "Ours"


async def test_rate_limits_are_throttled_with_retry_after_and_outages_unavailable(writes: Writes) -> None:
    token = writes.connection.token
    await writes.fault(route=EVENTS_ROUTE, method="POST", status=429, retry_after=7, times=1)
    with pytest.raises(Throttled) as throttled:
        await writes.provider.create_event(token, writes.calendar, meeting(), write_id="wr_busy")
    assert throttled.value.retry_after == 7
    await writes.fault(route=EVENTS_ROUTE, method="POST", status=403, times=1)  # 403 rateLimitExceeded
    with pytest.raises(Throttled):
        await writes.provider.create_event(token, writes.calendar, meeting(), write_id="wr_busy")
    with pytest.raises(HttpError):
        await writes.get(google_event_id("wr_busy"))
    await writes.fault(route=f"{EVENTS_ROUTE}/{{eventId}}", method="PATCH", status=500, times=1)
    created = await writes.provider.create_event(token, writes.calendar, meeting(), write_id="wr_busy")
    with pytest.raises(Unavailable):
        await writes.provider.update_event(
            token, writes.calendar, created.provider_event_id, patch(title="x")
        )


async def test_refusals_and_missing_events(writes: Writes) -> None:
    token = writes.connection.token
    backwards = meeting(end=timed("2027-01-04T08:00:00", KOLKATA))
    with pytest.raises(WriteRefused) as invalid:
        await writes.provider.create_event(token, writes.calendar, backwards, write_id="wr_backwards")
    assert invalid.value.reason == "invalid" and "time range is empty" in str(invalid.value)
    with pytest.raises(EventNotFound):
        await writes.provider.update_event(token, writes.calendar, "neverexisted00", patch(title="x"))
    created = await writes.provider.create_event(token, writes.calendar, meeting(), write_id="wr_missing")
    await writes.provider.delete_event(token, writes.calendar, created.provider_event_id)
    with pytest.raises(EventNotFound):
        await writes.provider.update_event(
            token, writes.calendar, created.provider_event_id, patch(title="x")
        )


async def test_a_read_only_grant_is_refused_as_scope_insufficient(writes: Writes) -> None:
    reader = await writes.world.connect(scopes=(READ,))
    with pytest.raises(WriteRefused) as refused:
        await writes.provider.create_event(reader.token, writes.calendar, meeting(), write_id="wr_reader")
    assert refused.value.reason == "scope_insufficient"
    with pytest.raises(HttpError):
        await writes.get(google_event_id("wr_reader"))


async def test_an_expired_access_token_is_refreshed_once_and_the_write_goes_through(writes: Writes) -> None:
    writes.connection.serve_refused_first = True
    created = await writes.provider.create_event(
        writes.connection.token, writes.calendar, meeting(), write_id="wr_refresh"
    )
    assert writes.connection.forced_refreshes == 1
    assert (await writes.get(created.provider_event_id))["summary"] == "Planning"
    assert created.start is not None and created.start.date_time == datetime(2027, 1, 4, 3, 30, tzinfo=UTC)
    assert created.end is not None and created.end.date_time == created.start.date_time + timedelta(
        minutes=90
    )
