"""Write-back through the REST API: what is refused before the provider is called. Bad input
(400 with the envelope), another application's calendar (404), a connection linked for reading
only (403 ``scope_insufficient``), a disconnected connection (409)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from chronapilot.common.clock import SystemClock
from chronapilot.common.runtime import RUNTIME
from chronapilot.common.tenancy import create_application

from helpers import RETURN_PREFIX, eventually

pytestmark = pytest.mark.e2e

KOLKATA = {"date_time": "2027-01-04T09:30:00+05:30", "timezone": "Asia/Kolkata"}
KOLKATA_END = {"date_time": "2027-01-04T10:30:00+05:30", "timezone": "Asia/Kolkata"}


async def call(browser, method: str, path: str, body: Any = None, key: str | None = None) -> tuple[int, Any]:
    async with browser.http.request(
        method, browser.api.url + path, json=body, headers=browser.api.headers(key)
    ) as response:
        return response.status, await response.json(content_type=None)


async def a_calendar(browser, connection_id: str) -> dict[str, Any]:
    status, listed = await call(browser, "GET", f"/v1/calendars?connection_id={connection_id}")
    assert status == 200, listed
    writable = [c for c in listed["data"] if not c["read_only"]]
    assert writable, listed
    return writable[0]


def assert_envelope(
    status: int, body: Any, expected_status: int, code: str, param: str | None = None
) -> None:
    assert status == expected_status, body
    assert body["error"]["code"] == code, body
    if param is not None:
        assert body["error"].get("param") == param, body


async def test_bad_input_is_refused_with_the_envelope_before_the_provider_is_called(browser, worker):
    connection_id = await browser.link_and_sync("google")
    calendar = await a_calendar(browser, connection_id)
    base = {"calendar_id": calendar["id"], "title": "planning", "start": KOLKATA, "end": KOLKATA_END}

    cases: list[tuple[dict[str, Any], str]] = [
        ({**base, "end": {"date_time": "2027-01-04T08:00:00+05:30", "timezone": "Asia/Kolkata"}}, "end"),
        ({**base, "start": {"date_time": "2027-01-04T09:30:00+05:30", "timezone": "Mars/Olympus"}}, "start"),
        ({**base, "recurrence": ["RRULE:FREQ=SOMETIMES;COUNT=3"]}, "recurrence"),
        ({**base, "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=XX"]}, "recurrence"),
        ({**base, "start": {"date": "2027-01-04"}}, "end"),  # one timed, one all-day
        ({**base, "start": {"date": "2027-01-05"}, "end": {"date": "2027-01-05"}}, "end"),
        ({**base, "attendees": [{"email": "not an address"}]}, "attendees"),
        ({**base, "colour": "red"}, "colour"),
        ({k: v for k, v in base.items() if k != "start"}, "start"),
    ]
    for body, param in cases:
        status, answer = await call(browser, "POST", "/v1/events", body)
        assert status == 400, (body, answer)
        assert answer["error"]["code"].startswith("parameter_"), answer
        assert answer["error"].get("param", "").split(".")[0] == param, (body, answer)

    status, answer = await call(browser, "POST", "/v1/events", {**base, "calendar_id": "cal_" + "0" * 26})
    assert_envelope(status, answer, 404, "resource_missing", "calendar_id")

    _, other_key = await create_application(
        browser.api.app[RUNTIME].repos.applications,
        name="another app",
        return_url_prefixes=[RETURN_PREFIX],
        live=False,
        clock=SystemClock(),
    )
    status, answer = await call(browser, "POST", "/v1/events", base, key=other_key)
    assert_envelope(status, answer, 404, "resource_missing", "calendar_id")
    status, answer = await call(browser, "PATCH", "/v1/events/evt_" + "0" * 26, {"title": "x"})
    assert_envelope(status, answer, 404, "resource_missing")
    status, answer = await call(browser, "PATCH", "/v1/events/evt_" + "0" * 26, {})
    assert status == 400, answer


async def test_a_read_only_link_is_403_and_a_disconnected_one_409(browser, worker):
    user_id = await browser.create_user("reader")
    started = await browser.start("google", user_id, scopes=["calendar.read"], state="st-read")
    landed = await browser.consent(started["redirect_url"], "google")
    connection_id = parse_qs(urlsplit(landed).query)["connection_id"][0]
    db = browser.api.app[RUNTIME].store.db

    async def synced() -> bool:
        found = await db.connections.find_one({"_id": connection_id})
        return bool(found and found.get("last_synced_at"))

    await eventually(synced, timeout_s=60)
    calendar = await a_calendar(browser, connection_id)
    body = {"calendar_id": calendar["id"], "title": "x", "start": KOLKATA, "end": KOLKATA_END}
    status, answer = await call(browser, "POST", "/v1/events", body)
    assert_envelope(status, answer, 403, "scope_insufficient")

    status, answer = await call(browser, "DELETE", f"/v1/connections/{connection_id}")
    assert status in (200, 202), answer
    status, answer = await call(browser, "POST", "/v1/events", body)
    assert_envelope(status, answer, 409, "connection_disconnected")
