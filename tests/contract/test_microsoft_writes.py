"""Microsoft write-back against the Graph emulator: every write goes through ``MicrosoftProvider``
and is checked at the provider with Microsoft's own SDK (msgraph-sdk), never with our parser.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from contract.providers_fixtures import World, microsoft_world
from contract.test_microsoft_sdk import graph_client
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.event import Event
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.users.item.calendars.item.events.events_request_builder import EventsRequestBuilder
from msgraph.generated.users.item.events.item.instances.instances_request_builder import (
    InstancesRequestBuilder,
)

from chronapilot.common.providers import READ, Throttled
from chronapilot.common.providers.microsoft.client import MicrosoftProvider
from chronapilot.common.providers.sync import Attendee, EventTime
from chronapilot.common.providers.writes import EventDraft, EventNotFound, PreconditionFailed, WriteRefused

pytestmark = pytest.mark.timeout(60)

KOLKATA = ZoneInfo("Asia/Kolkata")
BERLIN = ZoneInfo("Europe/Berlin")


@dataclass
class Mailbox:
    world: World
    provider: MicrosoftProvider
    token: Any
    sdk: GraphServiceClient
    calendar_id: str


@pytest.fixture
async def mailbox() -> AsyncIterator[Mailbox]:
    async with aiohttp.ClientSession() as http, microsoft_world(http) as world:
        connection = await world.connect()
        provider = cast(MicrosoftProvider, connection.provider)
        work = next(cal_id for cal_id, name in world.calendars.items() if name == "Work")
        sdk = graph_client(world.base_url, connection.tokens.access_token)
        yield Mailbox(world, provider, connection.token, sdk, work)


def timed(wall: datetime, zone: ZoneInfo) -> EventTime:
    return EventTime(wall.replace(tzinfo=zone).astimezone(UTC), None, str(zone))


def meeting(title: str = "Planning", **changes: Any) -> EventDraft:
    values: dict[str, Any] = {
        "title": title,
        "description": "Agenda: the write-back",
        "location": "Room 4",
        "start": timed(datetime(2026, 3, 2, 9, 30), KOLKATA),
        "end": timed(datetime(2026, 3, 2, 10, 30), KOLKATA),
        "attendees": (
            Attendee("asha@example.com", "Asha", "needsAction", optional=False, organizer=False),
            Attendee("ben@example.com", None, "needsAction", optional=True, organizer=False),
        ),
        **changes,
    }
    return EventDraft(**values)


def shown_in(zone: str) -> RequestConfiguration[Any]:
    config: RequestConfiguration[Any] = RequestConfiguration()
    config.headers.add("Prefer", f'outlook.timezone="{zone}"')
    return config


async def sdk_event(box: Mailbox, event_id: str, zone: str = "UTC") -> Event:
    event = await box.sdk.me.events.by_event_id(event_id).get(shown_in(zone))
    assert event is not None
    return event


async def sdk_instances(box: Mailbox, series_id: str) -> list[Event]:
    query = InstancesRequestBuilder.InstancesRequestBuilderGetQueryParameters(
        start_date_time="2026-02-01T00:00:00Z", end_date_time="2026-05-01T00:00:00Z"
    )
    config: RequestConfiguration[Any] = RequestConfiguration(query_parameters=query)
    page = await box.sdk.me.events.by_event_id(series_id).instances.get(config)
    assert page is not None
    return list(page.value or [])


async def sdk_subjects(box: Mailbox, subject: str) -> list[str]:
    """Ids of the calendar's events with ``subject`` (the emulator lists at most 1000)."""
    query = EventsRequestBuilder.EventsRequestBuilderGetQueryParameters(top=1000)
    config: RequestConfiguration[Any] = RequestConfiguration(query_parameters=query)
    page = await box.sdk.me.calendars.by_calendar_id(box.calendar_id).events.get(config)
    assert page is not None
    return [str(event.id) for event in page.value or [] if event.subject == subject]


# create -----------------------------------------------------------------------------------------


async def test_a_timed_event_is_created_in_its_zone(mailbox: Mailbox) -> None:
    created = await mailbox.provider.create_event(
        mailbox.token, mailbox.calendar_id, meeting(), write_id="w-1"
    )

    event = await sdk_event(mailbox, created.provider_event_id, "Asia/Kolkata")
    assert event.subject == "Planning"
    assert event.original_start_time_zone == "Asia/Kolkata"
    assert event.start is not None and event.end is not None
    assert event.start.time_zone == "Asia/Kolkata"
    assert (event.start.date_time or "").startswith("2026-03-02T09:30:00")
    assert (event.end.date_time or "").startswith("2026-03-02T10:30:00")
    assert event.is_all_day is False
    assert event.transaction_id == "w-1"
    assert event.location is not None and event.location.display_name == "Room 4"
    assert event.body is not None and event.body.content == "Agenda: the write-back"
    assert [(a.email_address.address, str(a.type)) for a in event.attendees or [] if a.email_address] == [
        ("asha@example.com", "AttendeeType.Required"),
        ("ben@example.com", "AttendeeType.Optional"),
    ]
    assert created.ical_uid == event.i_cal_u_id
    assert created.etag and created.etag == event.change_key
    assert created.start == timed(datetime(2026, 3, 2, 9, 30), KOLKATA)
    assert created.title == "Planning" and not created.all_day


async def test_an_all_day_event_stays_all_day(mailbox: Mailbox) -> None:
    draft = meeting(
        "Offsite", start=EventTime(None, date(2026, 3, 5), None), end=EventTime(None, date(2026, 3, 7), None)
    )
    created = await mailbox.provider.create_event(mailbox.token, mailbox.calendar_id, draft, write_id="w-2")

    event = await sdk_event(mailbox, created.provider_event_id)
    assert event.is_all_day is True
    assert event.start is not None and event.end is not None
    assert (event.start.date_time or "").startswith("2026-03-05T00:00:00")
    assert (event.end.date_time or "").startswith("2026-03-07T00:00:00")
    assert created.all_day and created.start == EventTime(None, date(2026, 3, 5), None)
    assert created.end == EventTime(None, date(2026, 3, 7), None)


async def test_a_retried_create_makes_one_event(mailbox: Mailbox) -> None:
    first = await mailbox.provider.create_event(
        mailbox.token, mailbox.calendar_id, meeting("Once"), write_id="w-retry"
    )
    again = await mailbox.provider.create_event(
        mailbox.token, mailbox.calendar_id, meeting("Once"), write_id="w-retry"
    )

    assert again.provider_event_id == first.provider_event_id
    assert await sdk_subjects(mailbox, "Once") == [first.provider_event_id]


async def test_graph_itself_answers_a_repeated_transaction_id_with_the_first_event(mailbox: Mailbox) -> None:
    created = await mailbox.provider.create_event(
        mailbox.token, mailbox.calendar_id, meeting("Lost answer"), write_id="w-lost"
    )
    retried = await mailbox.sdk.me.calendars.by_calendar_id(mailbox.calendar_id).events.post(
        Event(
            subject="Lost answer",
            start=DateTimeTimeZone(date_time="2026-03-02T09:30:00", time_zone="Asia/Kolkata"),
            end=DateTimeTimeZone(date_time="2026-03-02T10:30:00", time_zone="Asia/Kolkata"),
            transaction_id="w-lost",
        )
    )

    assert retried is not None and retried.id == created.provider_event_id
    assert await sdk_subjects(mailbox, "Lost answer") == [created.provider_event_id]


async def test_a_throttled_create_says_when_to_come_back_and_a_retry_makes_one_event(
    mailbox: Mailbox,
) -> None:
    await mailbox.world.call_admin(
        "POST",
        "faults",
        {"route": "/v1.0/me/calendars/{calendar_id}/events", "status": 429, "retry_after": 7, "times": 1},
    )

    with pytest.raises(Throttled) as caught:
        await mailbox.provider.create_event(
            mailbox.token, mailbox.calendar_id, meeting("Busy"), write_id="w-429"
        )
    assert caught.value.retryable and caught.value.retry_after == 7

    created = await mailbox.provider.create_event(
        mailbox.token, mailbox.calendar_id, meeting("Busy"), write_id="w-429"
    )
    assert await sdk_subjects(mailbox, "Busy") == [created.provider_event_id]


# change and delete --------------------------------------------------------------------------------


async def test_a_patch_changes_only_the_fields_named(mailbox: Mailbox) -> None:
    created = await mailbox.provider.create_event(
        mailbox.token, mailbox.calendar_id, meeting(), write_id="w-p"
    )

    patch = EventDraft(title="Planning, moved", start=None, end=None, fields=frozenset({"title", "location"}))
    changed = await mailbox.provider.update_event(
        mailbox.token, mailbox.calendar_id, created.provider_event_id, patch, if_match=created.etag
    )

    event = await sdk_event(mailbox, created.provider_event_id, "Asia/Kolkata")
    assert event.subject == "Planning, moved"
    assert event.location is not None and not event.location.display_name
    assert event.body is not None and event.body.content == "Agenda: the write-back"
    assert event.start is not None and (event.start.date_time or "").startswith("2026-03-02T09:30:00")
    assert changed.title == "Planning, moved" and changed.etag == event.change_key != created.etag


async def test_a_stale_etag_is_a_precondition_failure_and_changes_nothing(mailbox: Mailbox) -> None:
    created = await mailbox.provider.create_event(
        mailbox.token, mailbox.calendar_id, meeting(), write_id="w-e"
    )
    await mailbox.sdk.me.events.by_event_id(created.provider_event_id).patch(
        Event(subject="Changed in Outlook")
    )

    patch = EventDraft(title="Ours", fields=frozenset({"title"}))
    with pytest.raises(PreconditionFailed):
        await mailbox.provider.update_event(
            mailbox.token, mailbox.calendar_id, created.provider_event_id, patch, if_match=created.etag
        )
    with pytest.raises(PreconditionFailed):
        await mailbox.provider.delete_event(
            mailbox.token, mailbox.calendar_id, created.provider_event_id, if_match=created.etag
        )

    event = await sdk_event(mailbox, created.provider_event_id)
    assert event.subject == "Changed in Outlook"


async def test_delete_removes_the_event_and_a_second_delete_is_done(mailbox: Mailbox) -> None:
    created = await mailbox.provider.create_event(
        mailbox.token, mailbox.calendar_id, meeting(), write_id="w-d"
    )

    await mailbox.provider.delete_event(
        mailbox.token, mailbox.calendar_id, created.provider_event_id, if_match=created.etag
    )
    await mailbox.provider.delete_event(mailbox.token, mailbox.calendar_id, created.provider_event_id)

    with pytest.raises(ODataError) as gone:
        await sdk_event(mailbox, created.provider_event_id)
    assert gone.value.response_status_code == 404


async def test_a_patch_of_an_event_that_is_gone_is_event_not_found(mailbox: Mailbox) -> None:
    created = await mailbox.provider.create_event(
        mailbox.token, mailbox.calendar_id, meeting(), write_id="w-g"
    )
    await mailbox.sdk.me.events.by_event_id(created.provider_event_id).delete()

    with pytest.raises(EventNotFound):
        await mailbox.provider.update_event(
            mailbox.token,
            mailbox.calendar_id,
            created.provider_event_id,
            EventDraft(title="Too late", fields=frozenset({"title"})),
        )


# one occurrence of a series ---------------------------------------------------------------------


async def test_one_occurrence_edited_and_one_cancelled(mailbox: Mailbox) -> None:
    draft = meeting(
        "Weekly",
        start=timed(datetime(2026, 3, 2, 9, 0), BERLIN),
        end=timed(datetime(2026, 3, 2, 9, 30), BERLIN),
        recurrence=("RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=4",),
    )
    series = await mailbox.provider.create_event(mailbox.token, mailbox.calendar_id, draft, write_id="w-s")
    assert series.recurrence == ("RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=4",)
    assert len(await sdk_instances(mailbox, series.provider_event_id)) == 4

    moved = EventDraft(
        title="Weekly, later",
        start=timed(datetime(2026, 3, 9, 11, 0), BERLIN),
        end=timed(datetime(2026, 3, 9, 11, 30), BERLIN),
        fields=frozenset({"title", "start", "end"}),
    )
    exception = await mailbox.provider.update_event(
        mailbox.token,
        mailbox.calendar_id,
        series.provider_event_id,
        moved,
        original_start=timed(datetime(2026, 3, 9, 9, 0), BERLIN),
    )
    await mailbox.provider.delete_event(
        mailbox.token,
        mailbox.calendar_id,
        series.provider_event_id,
        original_start=timed(datetime(2026, 3, 16, 9, 0), BERLIN),
    )

    items = await sdk_instances(mailbox, series.provider_event_id)
    shown = [(str(item.type), item.subject, item.original_start) for item in items]
    assert shown == [
        ("EventType.Occurrence", "Weekly", datetime(2026, 3, 2, 8, 0, tzinfo=UTC)),
        ("EventType.Exception", "Weekly, later", datetime(2026, 3, 9, 8, 0, tzinfo=UTC)),
        ("EventType.Occurrence", "Weekly", datetime(2026, 3, 23, 8, 0, tzinfo=UTC)),
    ]
    assert exception.recurring_event_id == series.provider_event_id
    assert exception.provider_event_id == items[1].id
    assert exception.start == timed(datetime(2026, 3, 9, 11, 0), BERLIN)
    master = await sdk_event(mailbox, series.provider_event_id)
    assert master.subject == "Weekly"


async def test_an_occurrence_that_is_not_there_is_event_not_found(mailbox: Mailbox) -> None:
    draft = meeting("Daily", recurrence=("RRULE:FREQ=DAILY;COUNT=2",))
    series = await mailbox.provider.create_event(mailbox.token, mailbox.calendar_id, draft, write_id="w-n")

    with pytest.raises(EventNotFound):
        await mailbox.provider.update_event(
            mailbox.token,
            mailbox.calendar_id,
            series.provider_event_id,
            EventDraft(title="x", fields=frozenset({"title"})),
            original_start=timed(datetime(2026, 3, 10, 9, 30), KOLKATA),
        )


# refusals -----------------------------------------------------------------------------------------


async def test_a_read_only_calendar_refuses_the_write(mailbox: Mailbox) -> None:
    shared = await mailbox.world.call_admin(
        "POST", f"users/{mailbox.world.email}/calendars", {"name": "Team (read only)", "canEdit": False}
    )

    with pytest.raises(WriteRefused) as refused:
        await mailbox.provider.create_event(mailbox.token, shared["id"], meeting(), write_id="w-ro")
    assert refused.value.reason == "read_only"


async def test_a_read_only_consent_is_scope_insufficient(mailbox: Mailbox) -> None:
    reader = await mailbox.world.connect(scopes=[READ])

    with pytest.raises(WriteRefused) as refused:
        await mailbox.provider.create_event(reader.token, mailbox.calendar_id, meeting(), write_id="w-sc")
    assert refused.value.reason == "scope_insufficient"


@pytest.mark.parametrize(
    "recurrence",
    [
        ("RRULE:FREQ=HOURLY;COUNT=3",),
        ("RRULE:FREQ=WEEKLY;BYDAY=MO", "EXDATE:20260309T040000Z"),
        ("RRULE:FREQ=DAILY;BYHOUR=9",),
    ],
)
async def test_a_rule_graph_cannot_store_is_refused_before_any_write(
    mailbox: Mailbox, recurrence: tuple[str, ...]
) -> None:
    with pytest.raises(WriteRefused) as refused:
        await mailbox.provider.create_event(
            mailbox.token, mailbox.calendar_id, meeting("Odd", recurrence=recurrence), write_id="w-odd"
        )
    assert refused.value.reason == "invalid"
    assert await sdk_subjects(mailbox, "Odd") == []


async def test_an_event_graph_refuses_is_invalid_with_its_message(mailbox: Mailbox) -> None:
    created = await mailbox.provider.create_event(
        mailbox.token, mailbox.calendar_id, meeting(), write_id="w-i"
    )

    with pytest.raises(WriteRefused) as refused:
        await mailbox.provider.update_event(
            mailbox.token,
            mailbox.calendar_id,
            created.provider_event_id,
            EventDraft(end=timed(datetime(2026, 3, 2, 8, 0), KOLKATA), fields=frozenset({"end"})),
        )
    assert refused.value.reason == "invalid"
    assert "earlier than its start" in str(refused.value)


async def test_a_monthly_rule_becomes_graphs_pattern(mailbox: Mailbox) -> None:
    draft = meeting("Review", recurrence=("RRULE:FREQ=MONTHLY;BYDAY=-1FR;UNTIL=20261231T000000Z",))
    created = await mailbox.provider.create_event(mailbox.token, mailbox.calendar_id, draft, write_id="w-mo")

    master = await sdk_event(mailbox, created.provider_event_id)
    assert master.recurrence is not None and master.recurrence.pattern and master.recurrence.range
    pattern, span = master.recurrence.pattern, master.recurrence.range
    assert (str(pattern.type), str(pattern.index), [str(d) for d in pattern.days_of_week or []]) == (
        "RecurrencePatternType.RelativeMonthly",
        "WeekIndex.Last",
        ["DayOfWeek.Friday"],
    )
    assert (str(span.type), span.start_date, span.end_date, span.recurrence_time_zone) == (
        "RecurrenceRangeType.EndDate",
        date(2026, 3, 2),
        date(2026, 12, 30),
        "Asia/Kolkata",
    )
    assert created.recurrence == ("RRULE:FREQ=MONTHLY;BYDAY=-1FR;UNTIL=20261230",)
