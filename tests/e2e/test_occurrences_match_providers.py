"""Issue 16's occurrences, end to end: a calendar written at each provider as its owner would
(the contract suite's dataset: a weekly Europe/Berlin series across the EU's March DST change
with moved and cancelled instances, an all-day event, a New York call after the US change, a
UTC event; then one more moved and one more cancelled instance), synced through the worker,
then ``GET /v1/events?expand_recurring=true`` compared with the provider's own expansion of
the same window: Google's ``events.list?singleEvents=true`` and ``events.instances``, Graph's
``calendarView``, Radicale's ``calendar-query`` REPORT with ``<C:expand>``. Same instants, same
count; ids stable across calls and windows; paging through the list gives the same
occurrences as one page.

The dataset lies in next year's March and April (:class:`contract.sync_dataset.Dataset`), inside
every provider's sync window whatever day the suite runs.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote

import aiohttp
import icalendar
import pytest
from contract.sync_dataset import BERLIN, DATASET, SERIES_COUNT, local
from contract.sync_drivers import _google_time, _graph_own
from test_sync_mirror import make_driver, request_sync, wait_synced

from chronapilot.common.bus.catalogue import SyncKind
from chronapilot.common.runtime import RUNTIME

pytestmark = pytest.mark.e2e

When = datetime | date
Span = tuple[When, When]

#: The dataset's whole window: every event of it, every change, well inside.
WHOLE = (
    datetime.combine(date(DATASET.year, 3, 1), time(0), tzinfo=UTC),
    datetime.combine(date(DATASET.year, 5, 1), time(0), tzinfo=UTC),
)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def our_occurrences(
    browser, calendar_id: str, start: datetime, end: datetime, *, limit: int = 100
) -> list[dict]:
    """Every occurrence the API lists for the window, page by page (``starting_after``)."""
    found: list[dict] = []
    params = {
        "calendar_id": calendar_id,
        "start": _iso(start),
        "end": _iso(end),
        "expand_recurring": "true",
        "limit": str(limit),
    }
    while True:
        async with browser.http.get(
            f"{browser.api.url}/v1/events", params=params, headers=browser.api.headers()
        ) as response:
            body = await response.json()
            assert response.status == 200, body
        assert all(item["object"] == "occurrence" for item in body["data"])
        found += body["data"]
        if not body["has_more"]:
            return found
        params["starting_after"] = body["data"][-1]["id"]


def _when(value: dict[str, Any]) -> When:
    if value["date"] is not None:
        return date.fromisoformat(value["date"])
    return datetime.fromisoformat(value["date_time"].replace("Z", "+00:00"))


def spans(occurrences: list[dict]) -> list[Span]:
    return [(_when(o["start"]), _when(o["end"])) for o in occurrences]


def _sort_key(span: Span) -> tuple[datetime, datetime]:
    def instant(value: When) -> datetime:
        return value if isinstance(value, datetime) else datetime.combine(value, time(0), tzinfo=UTC)

    return instant(span[0]), instant(span[1])


# -- each provider's own expansion ------------------------------------------------------------


async def _google_get(driver, connection, path: str, **params: str) -> list[dict[str, Any]]:
    token = await connection.token(False)
    items: list[dict[str, Any]] = []
    url = f"{driver.world.settings.google_api_url}{path}"
    while True:
        async with driver.world.http.get(
            url, params=params, headers={"Authorization": f"Bearer {token}"}
        ) as r:
            body = await r.json()
            assert r.status == 200, body
        items += body["items"]
        if not body.get("nextPageToken"):
            return items
        params = {**params, "pageToken": body["nextPageToken"]}


async def google_view(driver, connection, start: datetime, end: datetime) -> list[Span]:
    """``events.list?singleEvents=true``: Google's own expansion of the whole calendar."""
    items = await _google_get(
        driver,
        connection,
        f"/calendars/{quote(driver.calendar_id, safe='')}/events",
        singleEvents="true",
        timeMin=_iso(start),
        timeMax=_iso(end),
        maxResults="250",
    )
    return [(_google_time(i["start"]), _google_time(i["end"])) for i in items if i["status"] != "cancelled"]


async def google_instances(driver, connection, start: datetime, end: datetime) -> list[Span]:
    """``events.instances`` of the dataset's series."""
    items = await _google_get(
        driver,
        connection,
        f"/calendars/{quote(driver.calendar_id, safe='')}/events/{driver.series_id}/instances",
        timeMin=_iso(start),
        timeMax=_iso(end),
    )
    return [(_google_time(i["start"]), _google_time(i["end"])) for i in items if i["status"] != "cancelled"]


async def graph_view(driver, connection, start: datetime, end: datetime) -> list[Span]:
    """Graph's ``calendarView`` of the calendar over the window."""
    found: list[Span] = []
    page = await driver._graph(
        f"/me/calendars/{driver.calendar_id}/calendarView",
        startDateTime=_iso(start),
        endDateTime=_iso(end),
        **{"$top": "500"},
    )
    while True:
        for item in page["value"]:
            if not item["isCancelled"]:
                own = _graph_own(item)
                found.append((own.start, own.end))
        link = page.get("@odata.nextLink")
        if not link:
            return found
        page = await driver._graph(link.removeprefix(driver.world.settings.microsoft_graph_url))


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


async def caldav_report(driver, start: datetime, end: datetime) -> tuple[int, bytes]:
    """A ``calendar-query`` REPORT with ``<C:expand>`` (RFC 4791 §9.6.5) over the window."""
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        f'<D:prop><C:calendar-data><C:expand start="{_stamp(start)}" end="{_stamp(end)}"/>'
        "</C:calendar-data></D:prop>"
        '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
        f'<C:time-range start="{_stamp(start)}" end="{_stamp(end)}"/>'
        "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
    )
    status, _, data = await driver._dav(
        "REPORT", driver.calendar_id, body, {"Depth": "1", "Content-Type": "application/xml; charset=utf-8"}
    )
    return status, data


def expanded(data: bytes) -> list[Span]:
    """The instances of a ``<C:expand>`` answer (cancelled ones left out)."""
    found: list[Span] = []
    for text in ET.fromstring(data).iter("{urn:ietf:params:xml:ns:caldav}calendar-data"):
        for event in icalendar.Calendar.from_ical(text.text or "").walk("VEVENT"):
            if str(event.get("STATUS", "")).upper() == "CANCELLED":
                continue
            first = event.decoded("DTSTART")
            if "DTEND" in event:
                last = event.decoded("DTEND")
            else:
                last = first + (event.decoded("DURATION") if "DURATION" in event else timedelta(0))
            found.append((_utc(first), _utc(last)))
    return found


async def caldav_view(driver, connection, start: datetime, end: datetime) -> list[Span]:
    """Radicale's own expansion of the window."""
    status, data = await caldav_report(driver, start, end)
    assert status == 207, data
    return expanded(data)


def _utc(value: When) -> When:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value


VIEWS = {"google": google_view, "microsoft": graph_view, "icloud": caldav_view}


def overlapping(found: list[Span], start: datetime, end: datetime) -> list[Span]:
    """What of a provider's answer overlaps [start, end) as the API places it (all-day dates
    at midnight UTC): providers place all-day events in the calendar's zone instead, so only
    timed events are compared at a window's edge."""
    kept = []
    for span in found:
        first, last = _sort_key(span)
        if first < end and (last > start or (first == last and first >= start)):
            kept.append(span)
    return kept


# -- the test ---------------------------------------------------------------------------------


@pytest.mark.timeout(600)
@pytest.mark.parametrize("provider", ["google", "microsoft", "icloud"])
async def test_occurrences_match_the_providers_own_expansion(browser, sandbox, worker, provider):
    connection_id = await browser.link_and_sync(provider)
    db = browser.api.app[RUNTIME].store.db
    async with aiohttp.ClientSession() as http:
        driver, connection = await make_driver(browser, sandbox, provider, connection_id, http)
        provider_calendar_id = await driver.new_calendar()
        await driver.write_dataset()
        await driver.change_series()  # one more moved (+1 h) and one more cancelled instance
        t0 = datetime.now(UTC)
        await request_sync(browser, connection_id, SyncKind.FULL, provider_calendar_id)
        calendar = await wait_synced(db, connection_id, provider_calendar_id, t0, full=True)

        ours = await our_occurrences(browser, calendar["_id"], *WHOLE)
        theirs = await VIEWS[provider](driver, connection, *WHOLE)
        assert sorted(spans(ours), key=_sort_key) == sorted(theirs, key=_sort_key)
        # the series: 8 Mondays, two cancelled; the all-day, New York and UTC events
        assert len(ours) == SERIES_COUNT - 2 + 3
        assert [_sort_key(s) for s in spans(ours)] == sorted(_sort_key(s) for s in spans(ours))
        if provider == "google":
            series = [o for o in ours if o["provider_recurring_event_id"] == driver.series_id]
            instances = await google_instances(driver, connection, *WHOLE)
            assert sorted(spans(series), key=_sort_key) == sorted(instances, key=_sort_key)

        # the moved instance keeps the id of its slot, and the series its master
        moved_slot = local(DATASET.moved_original, BERLIN)
        moved = next(o for o in ours if o["original_start"] and _when(o["original_start"]) == moved_slot)
        assert _when(moved["start"]) == local(DATASET.moved_to, BERLIN)
        series = [o for o in ours if o["original_start"] is not None]
        assert len(series) == SERIES_COUNT - 2
        assert {o["provider_recurring_event_id"] for o in series} == {driver.series_id}
        if provider == "microsoft":  # Graph's masters are not mirrored: instances keep their evt_ ids
            assert {o["recurring_event_id"] for o in series} == {None}
            assert all(o["id"] == o["event_id"] for o in series)
        else:
            master = moved["recurring_event_id"]
            assert master and master.startswith("evt_")
            assert {o["recurring_event_id"] for o in series} == {master}
            assert moved["id"] == f"{master}_{moved_slot:%Y%m%dT%H%M%SZ}"
            assert moved["event_id"] != master  # the exception's own stored event
            assert all(o["id"] == f"{master}_{_when(o['original_start']):%Y%m%dT%H%M%SZ}" for o in series)

        # stable: the same ids again, and in a window of one week around the moved instance
        again = await our_occurrences(browser, calendar["_id"], *WHOLE, limit=3)
        assert [o["id"] for o in again] == [o["id"] for o in ours]
        week = (moved_slot - timedelta(days=3), moved_slot + timedelta(days=4))
        in_week = await our_occurrences(browser, calendar["_id"], *week)
        assert in_week and {o["id"] for o in in_week} <= {o["id"] for o in ours}
        assert sorted(spans(in_week), key=_sort_key) == sorted(overlapping(theirs, *week), key=_sort_key)

        # a window holding the moved instance's new time but not its slot: it is there; one
        # holding its slot but not its new time: it is not
        new_start = local(DATASET.moved_to, BERLIN)
        into = (new_start - timedelta(minutes=30), new_start + timedelta(hours=1))
        assert [o["id"] for o in await our_occurrences(browser, calendar["_id"], *into)] == [moved["id"]]
        assert sorted(await VIEWS[provider](driver, connection, *into), key=_sort_key) == spans([moved])
        out = (moved_slot, moved_slot + timedelta(minutes=30))
        assert await our_occurrences(browser, calendar["_id"], *out) == []
        theirs_out = await VIEWS[provider](driver, connection, *out)
        if provider == "icloud":
            # Radicale matches the resource by the slot and returns the override at its new
            # time, outside the range, where RFC 4791 §9.6.5 says an expansion returns only
            # instances intersecting it: held to the RFC, its answer is empty too
            assert theirs_out == spans([moved])
            theirs_out = overlapping(theirs_out, *out)
        assert theirs_out == []


# -- bad input --------------------------------------------------------------------------------

DAY = datetime(2027, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        ({"end": _iso(DAY)}, "parameter_missing", "start"),
        ({"start": _iso(DAY)}, "parameter_missing", "end"),
        ({"start": _iso(DAY), "end": _iso(DAY)}, "parameter_invalid", "start"),
        ({"start": _iso(DAY + timedelta(days=1)), "end": _iso(DAY)}, "parameter_invalid", "start"),
        ({"start": _iso(DAY), "end": _iso(DAY + timedelta(days=366, seconds=1))}, "parameter_invalid", "end"),
        (
            {"start": _iso(DAY), "end": _iso(DAY + timedelta(days=1)), "include_deleted": "true"},
            "parameter_invalid",
            "include_deleted",
        ),
        (
            {"start": _iso(DAY), "end": _iso(DAY + timedelta(days=1)), "updated_since": _iso(DAY)},
            "parameter_invalid",
            "updated_since",
        ),
        (
            {"start": _iso(DAY), "end": _iso(DAY + timedelta(days=1)), "starting_after": "evt_nope"},
            "parameter_invalid",
            "starting_after",
        ),
        (
            {"start": _iso(DAY), "end": _iso(DAY + timedelta(days=1)), "ending_before": "evt_nope"},
            "parameter_invalid",
            "ending_before",
        ),
        ({"start": "yesterday", "end": _iso(DAY)}, "parameter_invalid", "start"),
        ({"start": "0001-01-01T00:00:00Z", "end": "0001-06-01T00:00:00Z"}, "parameter_invalid", "start"),
        (  # year 1 with an offset is before year 1 in UTC; plain lists too
            {"start": "0001-01-01T00:00:00+01:00", "end": _iso(DAY), "expand_recurring": "false"},
            "parameter_invalid",
            "start",
        ),
        (
            {"start": _iso(DAY), "end": "9999-12-31T23:59:59-01:00", "expand_recurring": "false"},
            "parameter_invalid",
            "end",
        ),
    ],
)
async def test_a_bad_occurrence_window_is_a_400_with_the_error_envelope(browser, params, code, param):
    user_id = await browser.create_user()
    await browser.connect("google", user_id)
    async with browser.http.get(f"{browser.api.url}/v1/calendars", headers=browser.api.headers()) as response:
        calendar_id = (await response.json())["data"][0]["id"]
    query = {"calendar_id": calendar_id, "expand_recurring": "true", **params}
    async with browser.http.get(
        f"{browser.api.url}/v1/events", params=query, headers=browser.api.headers()
    ) as response:
        body = await response.json()
        assert response.status == 400, body
    assert body == {
        "error": {
            "type": "invalid_request_error",
            "code": code,
            "message": body["error"]["message"],
            "param": param,
        }
    }


async def test_a_window_of_366_days_is_accepted(browser):
    user_id = await browser.create_user()
    await browser.connect("google", user_id)
    async with browser.http.get(f"{browser.api.url}/v1/calendars", headers=browser.api.headers()) as response:
        calendar_id = (await response.json())["data"][0]["id"]
    query = {
        "calendar_id": calendar_id,
        "expand_recurring": "true",
        "start": "2027-03-01T00:00:00",  # no offset: UTC
        "end": _iso(DAY + timedelta(days=366)),
    }
    async with browser.http.get(
        f"{browser.api.url}/v1/events", params=query, headers=browser.api.headers()
    ) as response:
        body = await response.json()
        assert response.status == 200, body
    assert body["object"] == "list" and body["url"] == "/v1/events"


@pytest.mark.timeout(300)
async def test_a_floating_caldav_series_recurs_at_its_wall_time_across_dst(browser, sandbox, worker):
    """DTSTART without TZID (floating): the mirror reads wall times as UTC, so the series keeps
    08:00 "UTC" across the EU change; an EXDATE and a moved override (floating RECURRENCE-ID)
    apply. Radicale 3.9's ``<C:expand>`` cannot be compared here: it answers 500 for a floating
    series (dateutil compares the naive DTSTART with the aware range); were it to answer, it
    must agree."""
    connection_id = await browser.link_and_sync("icloud")
    db = browser.api.app[RUNTIME].store.db
    async with aiohttp.ClientSession() as http:
        driver, _ = await make_driver(browser, sandbox, "icloud", connection_id, http)
        provider_calendar_id = await driver.new_calendar()
        march_end = date(DATASET.year, 3, 31)
        change = march_end - timedelta(days=(march_end.weekday() + 1) % 7)  # the EU change: last Sunday
        first = datetime.combine(change - timedelta(days=2), time(8, 0))  # naive: floating
        master = driver._event("floating@chronapilot.test", "Floating", first, first + timedelta(minutes=15))
        master.add("rrule", {"freq": "daily", "count": 5})
        master.add("exdate", first + timedelta(days=1))
        moved_slot = first + timedelta(days=3)
        moved = driver._event(
            "floating@chronapilot.test",
            "Floating (moved)",
            moved_slot.replace(hour=10),
            moved_slot.replace(hour=10, minute=15),
        )
        moved.add("recurrence-id", moved_slot)
        await driver._put(driver._calendar(master, moved))
        t0 = datetime.now(UTC)
        await request_sync(browser, connection_id, SyncKind.FULL, provider_calendar_id)
        calendar = await wait_synced(db, connection_id, provider_calendar_id, t0, full=True)

        start = datetime.combine(first.date(), time(0), tzinfo=UTC)
        end = start + timedelta(days=7)
        ours = await our_occurrences(browser, calendar["_id"], start, end)
        as_utc = [first.replace(tzinfo=UTC) + timedelta(days=n) for n in (0, 2, 3, 4)]
        as_utc[2] = as_utc[2].replace(hour=10)
        assert [_when(o["start"]) for o in ours] == as_utc
        assert [_when(o["end"]) - _when(o["start"]) for o in ours] == [timedelta(minutes=15)] * 4
        assert {o["start"]["timezone"] for o in ours} == {None}
        master_id = ours[0]["recurring_event_id"]
        assert [o["id"] for o in ours] == [
            f"{master_id}_{(first + timedelta(days=n)):%Y%m%dT%H%M%S}Z" for n in (0, 2, 3, 4)
        ]
        assert ours[2]["title"] == "Floating (moved)"

        status, data = await caldav_report(driver, start, end)
        if status == 207:
            assert sorted(spans(ours), key=_sort_key) == sorted(expanded(data), key=_sort_key)
        else:
            assert status == 500, data
