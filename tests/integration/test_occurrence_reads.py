"""Events.in_window against the real MongoDB-protocol server: it reads everything
:func:`~chronapilot.common.occurrences.expand` needs for a window (an exception moved into it
from a slot far away and its master, an exception moved out of it, a cancelled instance, a
series that ended long ago but has an RDATE in it), nothing of other calendars or deleted, and
the expansion over what it read is the expansion over the whole calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chronapilot.common.models.event import mirror_fields
from chronapilot.common.occurrences import expand
from chronapilot.common.providers.sync import EventData, EventTime
from chronapilot.common.store import ensure_indexes
from chronapilot.common.store.repositories import Repositories

pytestmark = pytest.mark.integration

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def at(*wall: int) -> EventTime:
    return EventTime(datetime(*wall, tzinfo=BERLIN).astimezone(UTC), None, "Europe/Berlin")


def event(event_id: str, start: EventTime, *, minutes: int = 30, **fields: Any) -> EventData:
    assert start.date_time is not None
    values: dict[str, Any] = {
        "provider_event_id": event_id,
        "ical_uid": None,
        "title": event_id,
        "description": None,
        "location": None,
        "start": start,
        "end": EventTime(start.date_time + timedelta(minutes=minutes), None, start.timezone),
        "all_day": False,
        "status": "confirmed",
        "recurrence": (),
        "recurring_event_id": None,
        "original_start": None,
        "organizer": None,
        "attendees": (),
        "etag": None,
        "updated_at": None,
        "raw": {},
    }
    values.update(fields)
    return EventData(**values)


def moved(master: str, slot: EventTime, to: EventTime, **fields: Any) -> EventData:
    assert slot.date_time is not None
    return event(
        f"{master}_{slot.date_time:%Y%m%dT%H%M%SZ}",
        to,
        recurring_event_id=master,
        original_start=slot,
        **fields,
    )


def document(n: int, data: EventData, calendar: str = "cal_1", **extra: Any) -> dict[str, Any]:
    return {
        "_id": f"evt_{n:02d}",
        "calendar_id": calendar,
        "connection_id": "con_1",
        "provider_calendar_id": calendar.replace("_", "-"),
        "provider_event_id": data.provider_event_id,
        "application_id": "app_1",
        "deleted": False,
        "created_at": NOW,
        "updated_at": NOW,
        **mirror_fields(data),
        **extra,
    }


async def test_in_window_reads_what_the_expansion_of_a_window_needs(store):
    await ensure_indexes(store)
    events = Repositories.open(store).events
    weekly = event("m", at(2026, 1, 5, 9), recurrence=("RRULE:FREQ=WEEKLY;COUNT=20",))  # to 18 May
    old = event(
        "old",
        at(2025, 1, 6, 14),
        recurrence=("RRULE:FREQ=WEEKLY;COUNT=2", "RDATE;TZID=Europe/Berlin:20260325T140000"),
    )
    docs = [
        document(1, weekly),
        document(2, moved("m", at(2026, 5, 18, 9), at(2026, 3, 25, 16))),  # into the window
        document(3, moved("m", at(2026, 3, 23, 9), at(2026, 4, 21, 9))),  # out of it
        document(4, moved("m", at(2026, 3, 30, 9), at(2026, 3, 30, 9), status="cancelled")),
        document(5, old),
        document(6, event("single", at(2026, 3, 24, 12))),
        document(7, event("far", at(2026, 6, 1, 12))),
        document(8, event("gone", at(2026, 3, 24, 13)), deleted=True),
        document(9, event("other", at(2026, 3, 24, 14)), calendar="cal_2"),
    ]
    await store.db.events.insert_many(docs)
    start = datetime(2026, 3, 23, tzinfo=UTC)
    end = datetime(2026, 4, 1, tzinfo=UTC)

    read = await events.in_window(["cal_1"], start, end)
    assert {d["_id"] for d in read} == {"evt_01", "evt_02", "evt_03", "evt_04", "evt_05", "evt_06"}
    assert all("raw" not in d for d in read if not d["recurrence"])

    found = expand(read, start, end)
    assert [(o.id, o.start_at) for o in found] == [
        ("evt_06", datetime(2026, 3, 24, 11, tzinfo=UTC)),
        ("evt_05_20260325T130000Z", datetime(2026, 3, 25, 13, tzinfo=UTC)),
        ("evt_01_20260518T070000Z", datetime(2026, 3, 25, 15, tzinfo=UTC)),
    ]
    everything = [d for d in docs if d["calendar_id"] == "cal_1" and not d["deleted"]]
    assert [o.id for o in expand(everything, start, end)] == [o.id for o in found]
    assert await events.in_window([], start, end) == []


async def test_in_window_reads_series_whose_long_occurrences_reach_into_the_window(store):
    """Occurrences of two weeks: one series' last started ten days before the window and runs
    into it; another's slot twelve days before the window was moved away in January, so its
    two weeks do not count: the exception must be read as well as the master."""
    await ensure_indexes(store)
    events = Repositories.open(store).events
    fortnight = 14 * 24 * 60
    ended = event("long", at(2026, 2, 27, 9), minutes=fortnight, recurrence=("RRULE:FREQ=WEEKLY;COUNT=3",))
    going = event("going", at(2026, 2, 25, 9), minutes=fortnight, recurrence=("RRULE:FREQ=WEEKLY;COUNT=3",))
    docs = [
        document(1, ended),  # last start 13 March 09:00, ends 27 March
        document(2, going),  # slots 25 February, 4 and 11 March
        document(3, moved("going", at(2026, 3, 11, 9), at(2026, 1, 5, 9), minutes=fortnight)),
    ]
    await store.db.events.insert_many(docs)
    start = datetime(2026, 3, 23, tzinfo=UTC)
    end = datetime(2026, 4, 1, tzinfo=UTC)

    read = await events.in_window(["cal_1"], start, end)
    assert {d["_id"] for d in read} == {"evt_01", "evt_02", "evt_03"}
    assert [o.id for o in expand(read, start, end)] == ["evt_01_20260313T080000Z"]
    assert [o.id for o in expand(docs, start, end)] == ["evt_01_20260313T080000Z"]
