"""Write-back through the REST API for Microsoft (the Graph emulator) and iCloud (Radicale): the
zone kept, one event however a create is retried (a replayed Idempotency-Key, a crash between
the provider's answer and the mirror write), If-Match, one occurrence changed and one cancelled,
delete; a full resync afterwards (the provider read back) changes nothing, so the mirror holds
exactly what the provider holds. Google's flow is ``test_event_writeback_flow.py``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chronapilot.api.event_writes import write_id_of
from chronapilot.common.bus.catalogue import SyncCompleted, SyncKind, SyncReason, SyncRequested
from chronapilot.common.providers.sync import EventTime
from chronapilot.common.providers.writes import EventDraft
from chronapilot.common.runtime import RUNTIME

from helpers import eventually

pytestmark = pytest.mark.e2e


async def call(
    browser, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any, Any]:
    async with browser.http.request(
        method, browser.api.url + path, json=body, headers={**browser.api.headers(), **(headers or {})}
    ) as response:
        return response.status, await response.json(content_type=None), response.headers


def at(day: int, hour: str, zone: str = "Asia/Kolkata", offset: str = "+05:30") -> dict[str, str]:
    return {"date_time": f"2027-01-{day:02d}T{hour}:00{offset}", "timezone": zone}


async def titled(browser, calendar_id: str, prefix: str) -> list[dict[str, Any]]:
    """The calendar's mirrored (not deleted) events whose title starts with ``prefix``."""
    status, page, _ = await call(browser, "GET", f"/v1/events?calendar_id={calendar_id}&limit=100")
    assert status == 200, page
    return [e for e in page["data"] if (e["title"] or "").startswith(prefix)]


async def full_resync(browser, connection_id: str) -> None:
    runtime = browser.api.app[RUNTIME]
    db = runtime.store.db
    query = {"envelope.type": SyncCompleted.TYPE, "envelope.connection_id": connection_id}
    done = await db.outbox.count_documents(query)
    resync = SyncRequested(mode=SyncKind.FULL, reason=SyncReason.RESYNC)
    await runtime.emit(None, resync, connection_id=connection_id)

    async def completed() -> bool:
        return await db.outbox.count_documents(query) > done

    await eventually(completed, timeout_s=60)


@pytest.mark.parametrize("provider", ["microsoft", "icloud"])
async def test_writes_reach_the_provider_once_and_the_mirror_matches_it(provider, browser, worker):
    connection_id = await browser.link_and_sync(provider)
    status, listed, _ = await call(browser, "GET", f"/v1/calendars?connection_id={connection_id}")
    calendar = next(c for c in listed["data"] if not c["read_only"])
    base = {
        "calendar_id": calendar["id"],
        "title": "wb planning",
        "start": at(4, "09:30"),
        "end": at(4, "10:30"),
    }

    status, created, _ = await call(browser, "POST", "/v1/events", base, {"Idempotency-Key": f"{provider}-1"})
    assert status == 201, created
    assert created["start"]["timezone"] == "Asia/Kolkata", created
    assert created["start"]["date_time"].startswith("2027-01-04T04:00:00"), created
    assert created["etag"] and created["provider_event_id"]
    status, again, headers = await call(
        browser, "POST", "/v1/events", base, {"Idempotency-Key": f"{provider}-1"}
    )
    assert status == 201 and again == created and headers["Idempotent-Replayed"] == "true"

    # a crash between the provider's answer and the mirror write, then the client's retry
    runtime = browser.api.app[RUNTIME]
    writer = runtime.providers.get(provider)
    await writer.create_event(  # type: ignore[union-attr]
        runtime.tokens.token_source(connection_id),
        calendar["provider_calendar_id"],
        EventDraft(
            title="wb crashed",
            start=EventTime(datetime(2027, 1, 5, 4, tzinfo=UTC), None, "Asia/Kolkata"),
            end=EventTime(datetime(2027, 1, 5, 5, tzinfo=UTC), None, "Asia/Kolkata"),
        ),
        write_id=write_id_of(browser.api.application_id, f"{provider}-crash"),
    )
    crashed = {**base, "title": "wb crashed", "start": at(5, "09:30"), "end": at(5, "10:30")}
    status, mirrored, _ = await call(
        browser, "POST", "/v1/events", crashed, {"Idempotency-Key": f"{provider}-crash"}
    )
    assert status == 201, mirrored

    path = f"/v1/events/{created['id']}"
    status, patched, _ = await call(
        browser, "PATCH", path, {"title": "wb planning v2"}, {"If-Match": created["etag"]}
    )
    assert status == 200 and patched["title"] == "wb planning v2", patched
    status, error, _ = await call(browser, "PATCH", path, {"title": "wb lost"}, {"If-Match": created["etag"]})
    assert status == 412 and error["error"]["code"] == "precondition_failed", error

    weekly = {
        **base,
        "title": "wb weekly",
        "start": at(4, "09:00", "Europe/Berlin", "+01:00"),
        "end": at(4, "09:30", "Europe/Berlin", "+01:00"),
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4"],
    }
    status, series, _ = await call(
        browser, "POST", "/v1/events", weekly, {"Idempotency-Key": f"{provider}-weekly"}
    )
    assert status == 201, series
    second = {"date_time": "2027-01-11T08:00:00Z", "timezone": "Europe/Berlin"}
    status, exception, _ = await call(
        browser,
        "PATCH",
        f"/v1/events/{series['id']}",
        {"title": "wb weekly (moved)", "original_start": second},
    )
    assert status == 200 and exception["title"] == "wb weekly (moved)", exception
    status, answer, _ = await call(
        browser, "DELETE", f"/v1/events/{series['id']}?original_start=2027-01-18T08:00:00Z"
    )
    assert status == 200, answer

    status, gone, _ = await call(browser, "DELETE", path)
    assert status == 200 and gone["deleted"] is True, gone

    # the provider read back in full: the mirror holds exactly one of each
    await full_resync(browser, connection_id)
    assert [e["title"] for e in await titled(browser, calendar["id"], "wb crashed")] == ["wb crashed"]
    assert await titled(browser, calendar["id"], "wb planning") == []
    assert await titled(browser, calendar["id"], "wb lost") == []
    status, page, _ = await call(
        browser,
        "GET",
        f"/v1/events?calendar_id={calendar['id']}&expand_recurring=true"
        "&start=2027-01-01T00:00:00Z&end=2027-02-28T00:00:00Z&limit=100",
    )
    occurrences = [o for o in page["data"] if (o["title"] or "").startswith("wb weekly")]
    shown = "\n".join(f"{o['event_id']} {o['title']} {o['start']['date_time']}" for o in occurrences)
    assert len(occurrences) == 3, shown  # four weeks, one cancelled
    assert [o["title"] for o in occurrences].count("wb weekly (moved)") == 1
    assert not any(o["start"]["date_time"].startswith("2027-01-18") for o in occurrences)


async def test_a_read_only_calendar_is_refused_before_the_provider(browser, worker):
    connection_id = await browser.link_and_sync("microsoft")
    db = browser.api.app[RUNTIME].store.db
    calendar = await db.calendars.find_one({"connection_id": connection_id})
    # as the listing records a calendar the account may only read (Graph `canEdit: false`)
    await db.calendars.update_one({"_id": calendar["_id"]}, {"$set": {"read_only": True}})
    body = {"calendar_id": calendar["_id"], "title": "x", "start": at(4, "09:30"), "end": at(4, "10:30")}
    status, answer, _ = await call(browser, "POST", "/v1/events", body)
    assert status == 403 and answer["error"]["code"] == "calendar_read_only", answer
