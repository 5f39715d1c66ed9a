"""Write-back through the REST API against the Google emulator: the event as the provider stored
it (zone kept), no duplicate however a create is retried (an Idempotency-Key replay, a client
that gave up on a slow provider, a crash between the provider's answer and the mirror write),
If-Match conflicts, one occurrence changed and one cancelled, a throttling provider answered
with 503 and Retry-After, and the provider's own notification of the write telling customers
nothing twice."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from chronapilot.api.event_writes import write_id_of
from chronapilot.common.bus.catalogue import SyncCompleted, SyncKind, SyncReason, SyncRequested
from chronapilot.common.providers.sync import EventTime
from chronapilot.common.providers.writes import EventDraft
from chronapilot.common.runtime import RUNTIME

from helpers import eventually

pytestmark = pytest.mark.e2e

KOLKATA = {"date_time": "2027-01-04T09:30:00+05:30", "timezone": "Asia/Kolkata"}
KOLKATA_END = {"date_time": "2027-01-04T10:30:00+05:30", "timezone": "Asia/Kolkata"}


async def call(
    browser, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any, Any]:
    async with browser.http.request(
        method, browser.api.url + path, json=body, headers={**browser.api.headers(), **(headers or {})}
    ) as response:
        return response.status, await response.json(content_type=None), response.headers


async def primary_calendar(browser, connection_id: str) -> dict[str, Any]:
    status, listed, _ = await call(browser, "GET", f"/v1/calendars?connection_id={connection_id}")
    assert status == 200, listed
    [primary] = [c for c in listed["data"] if c["primary"]]
    return primary


class Google:
    """The emulator's own view of a calendar (its admin API: what the provider holds)."""

    def __init__(self, http: aiohttp.ClientSession, base: str, calendar_id: str) -> None:
        self.http, self.base, self.calendar_id = http, base, calendar_id

    async def events(self, title: str) -> list[dict[str, Any]]:
        path = f"{self.base}/_admin/calendars/{quote(self.calendar_id, safe='')}/events"
        async with self.http.get(path) as response:
            items = (await response.json())["items"]
        return [e for e in items if e.get("summary") == title and e.get("status") != "cancelled"]

    async def fault(self, **fault: Any) -> None:
        async with self.http.post(f"{self.base}/_admin/faults", json=fault) as response:
            assert response.status == 201, await response.text()


async def test_create_patch_delete_through_the_api_reach_google_once_each(browser, worker, sandbox, http):
    connection_id = await browser.link_and_sync("google")
    calendar = await primary_calendar(browser, connection_id)
    google = Google(http, sandbox.urls["google"], calendar["provider_calendar_id"])
    body = {"calendar_id": calendar["id"], "title": "planning", "start": KOLKATA, "end": KOLKATA_END}

    status, created, _ = await call(browser, "POST", "/v1/events", body, {"Idempotency-Key": "plan-1"})
    assert status == 201, created
    assert created["start"]["timezone"] == "Asia/Kolkata" and created["etag"] and created["ical_uid"]
    assert created["start"]["date_time"].startswith("2027-01-04T04:00:00")  # 09:30 in Kolkata
    [at_google] = await google.events("planning")
    assert (
        at_google["start"]["timeZone"] == "Asia/Kolkata" and at_google["id"] == created["provider_event_id"]
    )
    status, again, headers = await call(browser, "POST", "/v1/events", body, {"Idempotency-Key": "plan-1"})
    assert status == 201 and again == created and headers["Idempotent-Replayed"] == "true"
    assert len(await google.events("planning")) == 1

    # a crash between the provider's answer and the mirror write: the provider holds the event,
    # the mirror does not; the retry with the same key finds it and mirrors it, creating nothing
    runtime = browser.api.app[RUNTIME]
    provider = runtime.providers.get("google")
    draft_start = EventTime(datetime(2027, 1, 5, 4, tzinfo=UTC), None, "Asia/Kolkata")
    draft_end = EventTime(datetime(2027, 1, 5, 5, tzinfo=UTC), None, "Asia/Kolkata")
    await provider.create_event(  # type: ignore[union-attr]
        runtime.tokens.token_source(connection_id),
        calendar["provider_calendar_id"],
        EventDraft(title="crashed", start=draft_start, end=draft_end),
        write_id=write_id_of(browser.api.application_id, "crash-1"),
    )
    crashed = {
        **body,
        "title": "crashed",
        "start": {"date_time": "2027-01-05T09:30:00+05:30", "timezone": "Asia/Kolkata"},
        "end": {"date_time": "2027-01-05T10:30:00+05:30", "timezone": "Asia/Kolkata"},
    }
    status, mirrored, _ = await call(browser, "POST", "/v1/events", crashed, {"Idempotency-Key": "crash-1"})
    assert status == 201, mirrored
    assert len(await google.events("crashed")) == 1

    # a client that gives up on a slow provider and retries: one event
    await google.fault(
        route="/calendar/v3/calendars/{calendarId}/events", method="POST", latency_ms=1500, times=1
    )
    slow = {**body, "title": "slow"}
    with pytest.raises(TimeoutError):
        async with browser.http.post(
            browser.api.url + "/v1/events",
            json=slow,
            headers={**browser.api.headers(), "Idempotency-Key": "slow-1"},
            timeout=aiohttp.ClientTimeout(total=0.5),
        ):
            pass

    async def answered() -> Any:
        status, answer, _ = await call(browser, "POST", "/v1/events", slow, {"Idempotency-Key": "slow-1"})
        return answer if status == 201 else None

    await eventually(answered, timeout_s=30, interval_s=0.5)
    assert len(await google.events("slow")) == 1

    # If-Match: the current etag changes it, a stale one is 412 and changes nothing
    path = f"/v1/events/{created['id']}"
    status, patched, _ = await call(
        browser, "PATCH", path, {"title": "planning v2"}, {"If-Match": created["etag"]}
    )
    assert status == 200 and patched["title"] == "planning v2" and patched["etag"] != created["etag"], patched
    status, error, _ = await call(
        browser, "PATCH", path, {"title": "lost update"}, {"If-Match": created["etag"]}
    )
    assert status == 412 and error["error"]["code"] == "precondition_failed", error
    assert await google.events("lost update") == [] and len(await google.events("planning v2")) == 1

    # the provider throttles: 503 with Retry-After, nothing written
    await google.fault(
        route="/calendar/v3/calendars/{calendarId}/events/{eventId}",
        method="PATCH",
        status=429,
        retry_after=7,
        times=1,
    )
    status, error, headers = await call(browser, "PATCH", path, {"title": "throttled"})
    assert status == 503 and headers["Retry-After"] == "7", error
    assert await google.events("throttled") == []

    status, gone, _ = await call(browser, "DELETE", path, headers={"If-Match": patched["etag"]})
    assert status == 200 and gone["deleted"] is True, gone
    assert await google.events("planning v2") == []


async def test_one_occurrence_changed_and_one_cancelled_and_no_echo(browser, worker, sandbox, http):
    connection_id = await browser.link_and_sync("google")
    calendar = await primary_calendar(browser, connection_id)
    weekly = {
        "calendar_id": calendar["id"],
        "title": "weekly sync",
        "start": {"date_time": "2027-01-04T09:00:00+01:00", "timezone": "Europe/Berlin"},
        "end": {"date_time": "2027-01-04T09:30:00+01:00", "timezone": "Europe/Berlin"},
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=6"],
    }
    status, series, _ = await call(browser, "POST", "/v1/events", weekly, {"Idempotency-Key": "weekly-1"})
    assert status == 201 and series["recurrence"] == ["RRULE:FREQ=WEEKLY;COUNT=6"], series
    second = {"date_time": "2027-01-11T08:00:00Z", "timezone": "Europe/Berlin"}
    status, exception, _ = await call(
        browser,
        "PATCH",
        f"/v1/events/{series['id']}",
        {"title": "weekly sync (moved room)", "original_start": second},
    )
    assert status == 200, exception
    assert (
        exception["recurring_event_id"] == series["id"] and exception["title"] == "weekly sync (moved room)"
    )
    status, _, _ = await call(
        browser, "DELETE", f"/v1/events/{series['id']}?original_start=2027-01-18T08:00:00Z"
    )
    assert status == 200

    async def occurrences() -> list[dict[str, Any]] | None:
        _, page, _ = await call(
            browser,
            "GET",
            f"/v1/events?calendar_id={calendar['id']}&expand_recurring=true"
            "&start=2027-01-01T00:00:00Z&end=2027-02-28T00:00:00Z&limit=100",
        )
        mine = [o for o in page["data"] if o["title"] and o["title"].startswith("weekly sync")]
        return mine if len(mine) == 5 else None

    shown = await eventually(occurrences, timeout_s=30)
    assert [o["title"] for o in shown].count("weekly sync (moved room)") == 1
    assert all(not o["start"]["date_time"].startswith("2027-01-18") for o in shown)

    # the provider's notification of these writes: an incremental sync finds nothing new
    runtime = browser.api.app[RUNTIME]
    db = runtime.store.db
    before = await db.outbox.count_documents(
        {"envelope.type": "mirror.events_changed", "envelope.connection_id": connection_id}
    )
    done = await db.outbox.count_documents(
        {"envelope.type": SyncCompleted.TYPE, "envelope.connection_id": connection_id}
    )
    await runtime.emit(
        None, SyncRequested(mode=SyncKind.INCREMENTAL, reason=SyncReason.WEBHOOK), connection_id=connection_id
    )

    async def synced() -> bool:
        now = await db.outbox.count_documents(
            {"envelope.type": SyncCompleted.TYPE, "envelope.connection_id": connection_id}
        )
        return now > done

    await eventually(synced, timeout_s=30)
    after = await db.outbox.count_documents(
        {"envelope.type": "mirror.events_changed", "envelope.connection_id": connection_id}
    )
    assert after == before, "the echo of ChronaPilot's own writes changed the mirror again"
