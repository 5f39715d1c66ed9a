"""iCloud write-back against a real Radicale: every write made through ``ICloudProvider`` and
checked at the server with the caldav library (and ``recurring-ical-events`` for what a series
expands to), as another CalDAV client would see it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import aiohttp
import icalendar
import pytest
import recurring_ical_events
from aiohttp import web
from caldav import aio
from contract.providers_fixtures import Connection, World, _serving, icloud_world

from chronapilot.common.providers.errors import InvalidCredentials, Throttled, Unavailable
from chronapilot.common.providers.icloud import writes as icalendar_writes
from chronapilot.common.providers.icloud.caldav import ICloudProvider
from chronapilot.common.providers.sync import Attendee, EventTime
from chronapilot.common.providers.writes import (
    EventDraft,
    EventNotFound,
    PreconditionFailed,
    WriteRefused,
)

pytestmark = pytest.mark.timeout(120)

KOLKATA = ZoneInfo("Asia/Kolkata")
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(scope="module")
async def world(http: aiohttp.ClientSession) -> AsyncIterator[World]:
    async with icloud_world(http) as world:
        yield world


@pytest.fixture
async def dav(world: World) -> AsyncIterator[aio.AsyncDAVClient]:
    async with aio.AsyncDAVClient(
        url=world.base_url, username=world.email, password=world.password
    ) as client:
        yield client


@dataclass
class Target:
    """A fresh calendar: the provider, its token source, the calendar id as the provider lists
    it, and the same calendar as the caldav library opens it."""

    provider: ICloudProvider
    connection: Connection
    calendar_id: str
    calendar: aio.AsyncCalendar


@pytest.fixture
async def target(world: World, dav: aio.AsyncDAVClient) -> Target:
    principal = await dav.get_principal()
    calendar = await principal.make_calendar(
        name="Writes", cal_id=f"writes-{uuid.uuid4().hex[:8]}", supported_calendar_component_set=["VEVENT"]
    )
    connection = await world.connect()
    provider = connection.provider
    assert isinstance(provider, ICloudProvider)
    listed = await provider.list_calendars(connection.token)
    calendar_id = next(
        c.provider_calendar_id for c in listed if path(c.provider_calendar_id) == path(calendar.url)
    )
    return Target(provider, connection, calendar_id, calendar)


def path(url: object) -> str:
    return unquote(urlsplit(str(url)).path)


async def stored(target: Target) -> dict[str, str]:
    """Every resource of the calendar as the caldav library reads it: ``{path: iCalendar}``."""
    resources = {}
    for event in await target.calendar.get_events():
        await event.load()
        resources[path(event.url)] = str(event.data)
    return resources


async def stored_one(target: Target) -> tuple[str, icalendar.Calendar]:
    resources = await stored(target)
    assert len(resources) == 1, list(resources)
    (href, data), *_ = resources.items()
    return href, icalendar.Calendar.from_ical(data)


def vevents(calendar: icalendar.Calendar) -> list[icalendar.Event]:
    return list(calendar.walk("VEVENT"))


def lines(calendar: icalendar.Calendar) -> list[str]:
    """The unfolded content lines of the resource."""
    return calendar.to_ical().decode().replace("\r\n ", "").split("\r\n")


def at(wall: datetime, zone: ZoneInfo) -> EventTime:
    """The wall time ``wall`` in ``zone``, as the API hands it to a provider."""
    return EventTime(wall.replace(tzinfo=zone).astimezone(UTC), None, zone.key)


def draft(title: str, start: EventTime, end: EventTime, **fields: object) -> EventDraft:
    return EventDraft(title=title, start=start, end=end, **fields)  # type: ignore[arg-type]


def patch(**fields: object) -> EventDraft:
    return EventDraft(**fields, fields=frozenset(fields))  # type: ignore[arg-type]


def titles_by_day(calendar: icalendar.Calendar, start: date, end: date, zone: ZoneInfo) -> dict[date, str]:
    """The series as recurring-ical-events expands it: each occurrence's local day and title."""
    return {
        occurrence["DTSTART"].dt.astimezone(zone).date(): str(occurrence["SUMMARY"])
        for occurrence in recurring_ical_events.of(calendar).between(start, end)
    }


# -- create --------------------------------------------------------------------------------------


async def test_a_timed_create_is_stored_in_its_zone_with_its_wall_time(target: Target) -> None:
    write_id = f"w-{uuid.uuid4().hex}"
    guest = Attendee("guest@example.com", "A Guest", "needsAction", optional=True, organizer=False)
    start, end = at(datetime(2026, 12, 7, 9, 30), KOLKATA), at(datetime(2026, 12, 7, 10, 15), KOLKATA)

    event = await target.provider.create_event(
        target.connection.token,
        target.calendar_id,
        draft("Stand-up", start, end, description="Daily", location="Pune", attendees=(guest,)),
        write_id=write_id,
    )

    href, calendar = await stored_one(target)
    assert href.endswith(f"/{write_id}.ics")
    assert event.provider_event_id == href
    [vevent] = vevents(calendar)
    content = lines(calendar)
    assert "DTSTART;TZID=Asia/Kolkata:20261207T093000" in content
    assert "DTEND;TZID=Asia/Kolkata:20261207T101500" in content
    assert [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")] == ["Asia/Kolkata"]
    assert str(vevent["UID"]) == f"{write_id}@chronapilot"
    assert (str(vevent["SUMMARY"]), str(vevent["DESCRIPTION"]), str(vevent["LOCATION"])) == (
        "Stand-up",
        "Daily",
        "Pune",
    )
    assert int(vevent["SEQUENCE"]) == 0 and "DTSTAMP" in vevent
    attendee = vevent["ATTENDEE"]
    assert str(attendee) == "mailto:guest@example.com"
    assert (attendee.params["CN"], attendee.params["ROLE"]) == ("A Guest", "OPT-PARTICIPANT")
    # the answer is the stored event as a sync reads it
    assert (event.title, event.start, event.end, event.all_day) == ("Stand-up", start, end, False)
    assert event.start is not None and event.start.timezone == "Asia/Kolkata"
    assert event.ical_uid == f"{write_id}@chronapilot" and event.etag
    assert [a.email for a in event.attendees] == ["guest@example.com"] and event.attendees[0].optional


async def test_an_all_day_create_stays_a_date_with_an_exclusive_end(target: Target) -> None:
    day = EventTime(None, date(2026, 12, 24), None)
    after = EventTime(None, date(2026, 12, 26), None)

    event = await target.provider.create_event(
        target.connection.token, target.calendar_id, draft("Holidays", day, after), write_id=uuid.uuid4().hex
    )

    _, calendar = await stored_one(target)
    content = lines(calendar)
    assert "DTSTART;VALUE=DATE:20261224" in content
    assert "DTEND;VALUE=DATE:20261226" in content
    assert not list(calendar.walk("VTIMEZONE"))
    assert event.all_day and (event.start, event.end) == (day, after)


async def test_a_retried_create_makes_one_event_and_answers_with_it(target: Target) -> None:
    write_id = uuid.uuid4().hex
    start, end = at(datetime(2026, 12, 8, 14, 0), KOLKATA), at(datetime(2026, 12, 8, 15, 0), KOLKATA)
    first = await target.provider.create_event(
        target.connection.token, target.calendar_id, draft("Once", start, end), write_id=write_id
    )

    again = await target.provider.create_event(
        target.connection.token, target.calendar_id, draft("Once", start, end), write_id=write_id
    )

    resources = await stored(target)
    assert list(resources) == [first.provider_event_id]
    assert again.provider_event_id == first.provider_event_id
    assert (again.etag, again.title, again.ical_uid) == (first.etag, "Once", f"{write_id}@chronapilot")


# -- update and delete ----------------------------------------------------------------------------


async def test_a_patch_changes_its_fields_only_and_counts_the_sequence(target: Target) -> None:
    start, end = at(datetime(2026, 12, 9, 11, 0), KOLKATA), at(datetime(2026, 12, 9, 12, 0), KOLKATA)
    created = await target.provider.create_event(
        target.connection.token,
        target.calendar_id,
        draft("Review", start, end, description="Agenda", location="Room 1"),
        write_id=uuid.uuid4().hex,
    )

    later_start = at(datetime(2026, 12, 9, 16, 0), KOLKATA)
    updated = await target.provider.update_event(
        target.connection.token,
        target.calendar_id,
        created.provider_event_id,
        patch(title="Review, moved", location=None, start=later_start),
    )

    _, calendar = await stored_one(target)
    [vevent] = vevents(calendar)
    assert str(vevent["SUMMARY"]) == "Review, moved"
    assert "LOCATION" not in vevent
    assert str(vevent["DESCRIPTION"]) == "Agenda"
    assert int(vevent["SEQUENCE"]) == 1
    content = lines(calendar)
    assert "DTSTART;TZID=Asia/Kolkata:20261209T160000" in content
    assert "DTEND;TZID=Asia/Kolkata:20261209T170000" in content  # the hour kept its length
    assert updated.provider_event_id == created.provider_event_id
    assert (updated.title, updated.location, updated.description) == ("Review, moved", None, "Agenda")
    assert updated.etag and updated.etag != created.etag


async def test_a_delete_removes_the_resource_and_a_second_delete_is_no_error(target: Target) -> None:
    start, end = at(datetime(2026, 12, 10, 9, 0), KOLKATA), at(datetime(2026, 12, 10, 9, 30), KOLKATA)
    created = await target.provider.create_event(
        target.connection.token, target.calendar_id, draft("Gone soon", start, end), write_id=uuid.uuid4().hex
    )

    await target.provider.delete_event(
        target.connection.token, target.calendar_id, created.provider_event_id, if_match=created.etag
    )
    await target.provider.delete_event(target.connection.token, target.calendar_id, created.provider_event_id)

    assert await stored(target) == {}
    with pytest.raises(EventNotFound):
        await target.provider.update_event(
            target.connection.token, target.calendar_id, created.provider_event_id, patch(title="x")
        )


async def test_a_stale_etag_is_a_precondition_failure_and_the_event_stays_as_it_is(target: Target) -> None:
    start, end = at(datetime(2026, 12, 11, 9, 0), KOLKATA), at(datetime(2026, 12, 11, 10, 0), KOLKATA)
    created = await target.provider.create_event(
        target.connection.token, target.calendar_id, draft("Contested", start, end), write_id=uuid.uuid4().hex
    )
    await target.provider.update_event(
        target.connection.token, target.calendar_id, created.provider_event_id, patch(title="Theirs")
    )
    before = await stored(target)

    with pytest.raises(PreconditionFailed):
        await target.provider.update_event(
            target.connection.token,
            target.calendar_id,
            created.provider_event_id,
            patch(title="Mine"),
            if_match=created.etag,
        )
    with pytest.raises(PreconditionFailed):
        await target.provider.delete_event(
            target.connection.token, target.calendar_id, created.provider_event_id, if_match=created.etag
        )

    assert await stored(target) == before
    [vevent] = vevents(icalendar.Calendar.from_ical(next(iter(before.values()))))
    assert str(vevent["SUMMARY"]) == "Theirs"


# -- one occurrence of a series -------------------------------------------------------------------

#: Mondays 09:00 New York, five of them; the third (Dec 21) is the one changed or cancelled.
SERIES_START = datetime(2026, 12, 7, 9, 0)
THIRD = datetime(2026, 12, 21, 9, 0)


async def weekly_series(target: Target) -> str:
    created = await target.provider.create_event(
        target.connection.token,
        target.calendar_id,
        draft(
            "Weekly sync",
            at(SERIES_START, NEW_YORK),
            at(SERIES_START + timedelta(hours=1), NEW_YORK),
            recurrence=("RRULE:FREQ=WEEKLY;COUNT=5",),
        ),
        write_id=uuid.uuid4().hex,
    )
    assert created.recurrence == ("RRULE:FREQ=WEEKLY;COUNT=5",)
    return created.provider_event_id


async def test_one_occurrence_edited_becomes_an_override_with_its_recurrence_id(target: Target) -> None:
    series = await weekly_series(target)
    original = at(THIRD, NEW_YORK)

    changed = await target.provider.update_event(
        target.connection.token,
        target.calendar_id,
        series,
        patch(title="Weekly sync (moved room)"),
        original_start=original,
    )

    _, calendar = await stored_one(target)
    master, override = vevents(calendar)
    assert "RECURRENCE-ID" not in master and "RRULE" in master
    content = lines(calendar)
    assert "RECURRENCE-ID;TZID=America/New_York:20261221T090000" in content
    assert str(override["SUMMARY"]) == "Weekly sync (moved room)"
    assert str(override["UID"]) == str(master["UID"])
    assert titles_by_day(calendar, date(2026, 12, 1), date(2027, 1, 31), NEW_YORK) == {
        date(2026, 12, 7): "Weekly sync",
        date(2026, 12, 14): "Weekly sync",
        date(2026, 12, 21): "Weekly sync (moved room)",
        date(2026, 12, 28): "Weekly sync",
        date(2027, 1, 4): "Weekly sync",
    }
    assert changed.provider_event_id == f"{series}#20261221T140000Z"
    assert changed.recurring_event_id == series
    assert changed.original_start == EventTime(original.date_time, None, "America/New_York")

    # the same occurrence again: the override is changed, not doubled
    await target.provider.update_event(
        target.connection.token, target.calendar_id, changed.provider_event_id, patch(location="Room 7")
    )
    _, calendar = await stored_one(target)
    master, override = vevents(calendar)
    assert (str(override["SUMMARY"]), str(override["LOCATION"])) == ("Weekly sync (moved room)", "Room 7")


async def test_one_occurrence_cancelled_is_an_exdate_and_leaves_the_expansion(target: Target) -> None:
    series = await weekly_series(target)
    await target.provider.update_event(
        target.connection.token,
        target.calendar_id,
        series,
        patch(title="Edited first"),
        original_start=at(THIRD, NEW_YORK),
    )

    await target.provider.delete_event(
        target.connection.token, target.calendar_id, series, original_start=at(THIRD, NEW_YORK)
    )

    _, calendar = await stored_one(target)
    [master] = vevents(calendar)  # the override of the cancelled occurrence went with it
    assert "EXDATE;TZID=America/New_York:20261221T090000" in lines(calendar)
    days = titles_by_day(calendar, date(2026, 12, 1), date(2027, 1, 31), NEW_YORK)
    assert sorted(days) == [date(2026, 12, 7), date(2026, 12, 14), date(2026, 12, 28), date(2027, 1, 4)]
    assert int(master["SEQUENCE"]) >= 1

    # cancelling it again changes nothing; an occurrence the series never had is not there
    before = await stored(target)
    await target.provider.delete_event(
        target.connection.token, target.calendar_id, series, original_start=at(THIRD, NEW_YORK)
    )
    assert await stored(target) == before
    with pytest.raises(EventNotFound):
        await target.provider.update_event(
            target.connection.token,
            target.calendar_id,
            series,
            patch(title="x"),
            original_start=at(THIRD + timedelta(days=1), NEW_YORK),
        )


async def test_an_all_day_series_occurrence_is_addressed_by_its_date(target: Target) -> None:
    created = await target.provider.create_event(
        target.connection.token,
        target.calendar_id,
        draft(
            "Bins out",
            EventTime(None, date(2026, 12, 1), None),
            EventTime(None, date(2026, 12, 2), None),
            recurrence=("RRULE:FREQ=DAILY;COUNT=4",),
        ),
        write_id=uuid.uuid4().hex,
    )
    second = EventTime(None, date(2026, 12, 2), None)

    changed = await target.provider.update_event(
        target.connection.token,
        target.calendar_id,
        created.provider_event_id,
        patch(title="Bins (late)"),
        original_start=second,
    )
    await target.provider.delete_event(
        target.connection.token,
        target.calendar_id,
        created.provider_event_id,
        original_start=replace(second, date=date(2026, 12, 3)),
    )

    _, calendar = await stored_one(target)
    content = lines(calendar)
    assert "RECURRENCE-ID;VALUE=DATE:20261202" in content
    assert "EXDATE;VALUE=DATE:20261203" in content
    assert changed.provider_event_id == f"{created.provider_event_id}#20261202"
    occurrences = {
        o["DTSTART"].dt: str(o["SUMMARY"])
        for o in recurring_ical_events.of(calendar).between(date(2026, 11, 30), date(2026, 12, 10))
    }
    assert occurrences == {
        date(2026, 12, 1): "Bins out",
        date(2026, 12, 2): "Bins (late)",
        date(2026, 12, 4): "Bins out",
    }


# -- what the server refuses ----------------------------------------------------------------------


@dataclass
class Refusal:
    status: int
    body: bytes = b""
    headers: dict[str, str] | None = None


def refusing_app(refusal: Refusal) -> web.Application:
    """A CalDAV server that answers every request with ``refusal`` (a read-only calendar, a
    throttled account, a server that refuses the data)."""

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=refusal.status, body=refusal.body, headers=refusal.headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


NEED_PRIVILEGES = (
    b'<?xml version="1.0"?><d:error xmlns:d="DAV:"><d:need-privileges><d:resource>'
    b"<d:href>/cal/x.ics</d:href><d:privilege><d:write-content/></d:privilege></d:resource>"
    b"</d:need-privileges></d:error>"
)
INVALID_DATA = (
    b'<?xml version="1.0"?><d:error xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
    b"<c:valid-calendar-data/></d:error>"
)


@pytest.mark.parametrize(
    ("refusal", "expected"),
    [
        (Refusal(403, NEED_PRIVILEGES), (WriteRefused, "read_only")),
        (Refusal(403, INVALID_DATA), (WriteRefused, "invalid")),
        (Refusal(415), (WriteRefused, "invalid")),
        (Refusal(400), (WriteRefused, "invalid")),
        (Refusal(401, headers={"WWW-Authenticate": 'Basic realm="x"'}), (InvalidCredentials, None)),
        (Refusal(429, headers={"Retry-After": "7"}), (Throttled, 7.0)),
        (Refusal(503), (Throttled, None)),
        (Refusal(502), (Unavailable, None)),
    ],
)
async def test_a_refused_write_is_the_error_it_means(
    world: World, http: aiohttp.ClientSession, refusal: Refusal, expected: tuple[type, object]
) -> None:
    connection = await world.connect()
    async with _serving(lambda _: refusing_app(refusal)) as base:
        provider = world.provider_at(base, timeout_s=5)
        assert isinstance(provider, ICloudProvider)
        with pytest.raises(expected[0]) as raised:
            await provider.create_event(
                connection.token,
                f"{base}/{world.email}/cal/",
                draft("x", at(SERIES_START, KOLKATA), at(SERIES_START, KOLKATA)),
                write_id="w1",
            )
    error, detail = raised.value, expected[1]
    if isinstance(error, WriteRefused):
        assert error.reason == detail
    elif isinstance(error, Throttled):
        assert error.retry_after == detail
    elif isinstance(error, InvalidCredentials):
        assert connection.forced_refreshes == 1  # asked once more before giving up


# -- the iCalendar the writes build ---------------------------------------------------------------

APPLE_RESOURCE = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Apple Inc.//iOS 18.0//EN\r
BEGIN:VEVENT\r
UID:apple-1\r
DTSTAMP:20261101T000000Z\r
SUMMARY:From the iPhone\r
DTSTART:20261201T090000Z\r
DTEND:20261201T100000Z\r
X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC\r
BEGIN:VALARM\r
ACTION:DISPLAY\r
TRIGGER:-PT15M\r
X-WR-ALARMUID:alarm-1\r
END:VALARM\r
END:VEVENT\r
END:VCALENDAR\r
"""


def test_a_patch_keeps_what_it_does_not_know_apple_extras_and_alarms() -> None:
    calendar = icalendar_writes.read_calendar(APPLE_RESOURCE)
    master = icalendar_writes.master_of(calendar)
    assert master is not None

    icalendar_writes.apply_draft(master, patch(title="Renamed"), master=True)

    text = icalendar_writes.serialize(calendar)
    assert "SUMMARY:Renamed" in text
    assert "X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC" in text
    assert "X-WR-ALARMUID:alarm-1" in text and "TRIGGER:-PT15M" in text


NOON = at(SERIES_START, KOLKATA)


@pytest.mark.parametrize(
    "draft_",
    [
        EventDraft(title="x", start=NOON, end=NOON, recurrence=("SUMMARY:x",)),
        EventDraft(title="x", start=EventTime(SERIES_START.replace(tzinfo=UTC), None, "Mars/Olympus")),
        EventDraft(title="x", start=NOON, end=at(SERIES_START - timedelta(hours=1), KOLKATA)),
        EventDraft(title="x", start=EventTime(None, date(2026, 12, 1), None), end=NOON),
        EventDraft(title="x", start=None, end=None),
    ],
    ids=["not-a-recurrence-line", "unknown-zone", "ends-before-it-starts", "date-and-time", "no-start"],
)
def test_an_event_that_cannot_be_written_is_refused_before_any_request(draft_: EventDraft) -> None:
    with pytest.raises(WriteRefused) as refused:
        icalendar_writes.new_resource(draft_, uid="u@chronapilot", now=datetime(2026, 11, 1, tzinfo=UTC))
    assert refused.value.reason == "invalid"


async def test_what_a_write_answers_is_what_the_next_sync_reads(target: Target) -> None:
    series = await weekly_series(target)
    override = await target.provider.update_event(
        target.connection.token,
        target.calendar_id,
        series,
        patch(title="Weekly sync (moved room)"),
        original_start=at(THIRD, NEW_YORK),
    )

    synced = {
        event.provider_event_id: event
        async for page in target.provider.sync_events(target.connection.token, target.calendar_id, None)
        for event in page.upserts
    }

    assert set(synced) == {series, override.provider_event_id}
    assert synced[override.provider_event_id] == override
    assert synced[series].etag == override.etag
