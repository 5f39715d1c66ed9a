"""Paging occurrences while the calendar changes: a cursor whose occurrence was cancelled or
deleted between two calls still pages on from where it was; a cursor that names no occurrence
of the calendar is refused.

The calendar is a real mirrored one (a Google connection); the series is written into the
mirror as the sync would write it, in a year of its own so that nothing else is in the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chronapilot.common.ids import new_id
from chronapilot.common.runtime import RUNTIME

pytestmark = pytest.mark.e2e

FIRST = datetime(2031, 3, 3, 9, tzinfo=UTC)
WINDOW = {"start": "2031-03-01T00:00:00Z", "end": "2031-04-01T00:00:00Z", "expand_recurring": "true"}


def stored(calendar: dict, provider_event_id: str, start: datetime, **fields) -> dict:
    now = datetime.now(UTC)
    return {
        "_id": new_id("evt"),
        "application_id": calendar["application_id"],
        "calendar_id": calendar["_id"],
        "connection_id": calendar["connection_id"],
        "provider_calendar_id": calendar["provider_calendar_id"],
        "provider_event_id": provider_event_id,
        "title": provider_event_id,
        "start": {"date_time": start, "date": None, "timezone": "UTC"},
        "end": {"date_time": start + timedelta(hours=1), "date": None, "timezone": "UTC"},
        "start_at": start,
        "end_at": start + timedelta(hours=1),
        "all_day": False,
        "status": "confirmed",
        "recurrence": [],
        "recurring_event_id": None,
        "original_start": None,
        "attendees": [],
        "series_end_at": None,
        "deleted": False,
        "created_at": now,
        "updated_at": now,
        **fields,
    }


async def listed(browser, calendar_id: str, **params: str) -> tuple[int, dict]:
    async with browser.http.get(
        f"{browser.api.url}/v1/events",
        params={"calendar_id": calendar_id, **WINDOW, **params},
        headers=browser.api.headers(),
    ) as response:
        return response.status, await response.json()


async def test_a_cursor_whose_occurrence_went_away_pages_on_from_where_it_was(browser):
    user_id = await browser.create_user()
    await browser.connect("google", user_id)
    db = browser.api.app[RUNTIME].store.db
    async with browser.http.get(f"{browser.api.url}/v1/calendars", headers=browser.api.headers()) as response:
        calendar_id = (await response.json())["data"][0]["id"]
    calendar = await db.calendars.find_one({"_id": calendar_id})
    master = stored(calendar, "daily", FIRST, recurrence=["RRULE:FREQ=DAILY;COUNT=6"])
    single = stored(calendar, "single", FIRST + timedelta(days=3, hours=3))
    await db.events.insert_many([master, single])

    status, body = await listed(browser, calendar_id, limit="3")
    assert status == 200, body
    ids = [o["id"] for o in body["data"]]
    assert ids == [f"{master['_id']}_{FIRST + timedelta(days=n):%Y%m%dT%H%M%SZ}" for n in range(3)]

    # the third instance is cancelled at the provider before the next page is asked for
    slot = FIRST + timedelta(days=2)
    await db.events.insert_one(
        stored(
            calendar,
            f"daily_{slot:%Y%m%dT%H%M%SZ}",
            slot,
            recurring_event_id="daily",
            original_start={"date_time": slot, "date": None, "timezone": "UTC"},
            status="cancelled",
        )
    )
    status, body = await listed(browser, calendar_id, limit="2", starting_after=ids[-1])
    assert status == 200, body
    assert [o["start"]["date_time"] for o in body["data"]] == [
        "2031-03-06T09:00:00.000Z",
        "2031-03-06T12:00:00.000Z",
    ]
    assert body["data"][1]["id"] == single["_id"]
    status, body = await listed(browser, calendar_id, limit="5", ending_before=ids[-1])
    assert status == 200, body
    assert [o["id"] for o in body["data"]] == ids[:2]

    # the single event is deleted at the provider: its id still pages on
    await db.events.update_one({"_id": single["_id"]}, {"$set": {"deleted": True}})
    status, body = await listed(browser, calendar_id, limit="5", starting_after=single["_id"])
    assert status == 200, body
    assert [o["start"]["date_time"] for o in body["data"]] == [
        "2031-03-07T09:00:00.000Z",
        "2031-03-08T09:00:00.000Z",
    ]

    # an id of no event of this calendar is still refused
    for bogus in (new_id("evt"), f"{new_id('evt')}_20310305T090000Z", "evt_nope"):
        status, body = await listed(browser, calendar_id, starting_after=bogus)
        assert (status, body["error"]["code"], body["error"]["param"]) == (
            400,
            "parameter_invalid",
            "starting_after",
        ), bogus
