"""Issue 16's free/busy, through the API on real synced connections: a user's Google,
Microsoft and iCloud calendars (written as their owner would: the emulators' admin APIs,
CalDAV on Radicale) merge into one busy list with per-calendar provenance; a recurring
series counts by its occurrences, and cancelled, declined and transparent events do not;
`calendar_ids[]` narrows the scope, a disconnected connection drops out, tenancy holds; bad
windows answer 400 with the error envelope.

Dates are drawn relative to today (ten days ahead, in UTC, far from Microsoft's sync window
edges), so the test passes on any day."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote, urlencode
from zoneinfo import ZoneInfo

import aiohttp
import icalendar
import pytest

from chronapilot.common.clock import SystemClock, isoformat_z
from chronapilot.common.ids import new_id
from chronapilot.common.runtime import RUNTIME
from chronapilot.common.tenancy import create_application

from helpers import RETURN_PREFIX, eventually

pytestmark = pytest.mark.e2e
CALENDAR_ZONE = "America/New_York"


def z(value: datetime) -> str:
    return isoformat_z(value)


async def call(browser, path: str, *, key: str | None = None, method: str = "GET") -> tuple[int, Any]:
    async with browser.http.request(
        method, browser.api.url + path, headers=browser.api.headers(key)
    ) as answer:
        return answer.status, await answer.json()


async def free_busy(browser, user_id: str, start: datetime, end: datetime, **extra: Any) -> dict:
    params: list[tuple[str, str]] = [("start", z(start)), ("end", z(end))]
    params += [("calendar_ids[]", c) for c in extra.pop("calendar_ids", [])]
    params += list(extra.items())
    status, body = await call(browser, f"/v1/users/{user_id}/free_busy?{urlencode(params)}")
    assert status == 200, body
    return dict(body)


class Owner:
    """The three accounts' owner, writing to their providers (not through ChronaPilot)."""

    def __init__(self, sandbox, http: aiohttp.ClientSession) -> None:
        self.sandbox, self.http = sandbox, http

    async def admin(self, provider: str, method: str, path: str, body: dict | None = None) -> Any:
        url = f"{self.sandbox.urls[provider].rstrip('/')}/_admin/{path}"
        async with self.http.request(method, url, json=body) as answer:
            assert answer.status < 300, await answer.text()
            return await answer.json() if answer.content_type == "application/json" else None

    # Google ------------------------------------------------------------------------------------

    async def google_calendar(self) -> str:
        email = self.sandbox.accounts["google"].email
        created = await self.admin(
            "google",
            "POST",
            f"users/{email}/calendars",
            {
                "id": f"fb-{uuid.uuid4().hex[:12]}@group.calendar.google.com",
                "summary": "fb",
                "timeZone": CALENDAR_ZONE,
            },
        )
        return str(created["id"])

    async def google_event(self, calendar_id: str, start: datetime, minutes: int, **fields: Any) -> str:
        body = {
            "summary": fields.pop("summary", "busy"),
            "start": {"dateTime": start.isoformat(), "timeZone": "UTC"},
            "end": {"dateTime": (start + timedelta(minutes=minutes)).isoformat(), "timeZone": "UTC"},
            **fields,
        }
        return str((await self.admin("google", "POST", f"calendars/{calendar_id}/events", body))["id"])

    # Microsoft ---------------------------------------------------------------------------------

    async def microsoft_calendar(self) -> str:
        email = self.sandbox.accounts["microsoft"].email
        created = await self.admin(
            "microsoft", "POST", f"users/{email}/calendars", {"name": f"fb {uuid.uuid4().hex[:8]}"}
        )
        return str(created["id"])

    async def microsoft_event(self, calendar_id: str, start: datetime, minutes: int, **fields: Any) -> str:
        def wall(value: datetime) -> dict[str, str]:
            return {"dateTime": value.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}

        body = {
            "subject": fields.pop("subject", "busy"),
            "start": wall(start),
            "end": wall(start + timedelta(minutes=minutes)),
            **fields,
        }
        return str((await self.admin("microsoft", "POST", f"calendars/{calendar_id}/events", body))["id"])

    # iCloud (Radicale) -------------------------------------------------------------------------

    async def dav(self, method: str, url: str, body: bytes | str = b"", **headers: str) -> None:
        account = self.sandbox.accounts["icloud"]
        headers["Authorization"] = aiohttp.encode_basic_auth(account.email, account.password)
        async with self.http.request(method, url, data=body, headers=headers) as answer:
            assert answer.status in (201, 204), await answer.text()

    async def icloud_calendar(self) -> str:
        email = self.sandbox.accounts["icloud"].email
        url = f"{self.sandbox.urls['icloud'].rstrip('/')}/{quote(email, safe='')}/fb-{uuid.uuid4().hex[:8]}/"
        await self.dav(
            "MKCALENDAR",
            url,
            '<?xml version="1.0" encoding="utf-8"?>'
            '<c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:set><d:prop>'
            "<d:displayname>fb</d:displayname>"
            '<c:supported-calendar-component-set><c:comp name="VEVENT"/></c:supported-calendar-component-set>'
            "</d:prop></d:set></c:mkcalendar>",
        )
        return url

    async def icloud_event(self, calendar_url: str, start: datetime, minutes: int, **properties: Any) -> None:
        uid = str(uuid.uuid4())
        event = icalendar.Event()
        event.add("uid", uid)
        event.add("dtstamp", datetime(2026, 2, 1, 10, 0, tzinfo=UTC))
        event.add("summary", "busy")
        event.add("dtstart", start)
        event.add("dtend", start + timedelta(minutes=minutes))
        for name, value in properties.items():
            event.add(name, value)
        calendar = icalendar.Calendar()
        calendar.add("prodid", "-//ChronaPilot tests//EN")
        calendar.add("version", "2.0")
        calendar.add_component(event)
        await self.dav(
            "PUT",
            f"{calendar_url}{uid}.ics",
            calendar.to_ical(),
            **{"Content-Type": "text/calendar; charset=utf-8", "If-None-Match": "*"},
        )


async def linked(browser, provider: str, user_id: str, provider_calendar_id: str) -> tuple[str, str]:
    """Link the account; wait until the calendar is mirrored; (connection id, its cal_ id)."""
    connection_id = (await browser.connect(provider, user_id))["connection_id"][0]

    async def synced() -> str | None:
        status, connection = await call(browser, f"/v1/connections/{connection_id}?expand[]=calendars")
        assert status == 200, connection
        for calendar in connection["calendars"]:
            if unquote(calendar["provider_calendar_id"]) == unquote(provider_calendar_id):
                return calendar["id"] if calendar["last_synced_at"] else None
        return None

    return connection_id, await eventually(synced, timeout_s=120, interval_s=0.25)


@pytest.mark.timeout(420)
async def test_a_users_busy_time_merges_three_providers_with_provenance(browser, api, sandbox, worker):
    day = datetime.combine(date.today() + timedelta(days=10), datetime.min.time(), tzinfo=UTC)

    def at(days: int, hours: float) -> datetime:
        return day + timedelta(days=days, hours=hours)

    user_id = await browser.create_user("fb-1")
    async with aiohttp.ClientSession() as http:
        owner = Owner(sandbox, http)
        me = {p: sandbox.accounts[p].email for p in ("google", "microsoft", "icloud")}

        google = await owner.google_calendar()
        await owner.google_event(google, at(0, 9), 60)
        await owner.google_event(google, at(0, 13), 60, summary="focus", transparency="transparent")
        await owner.google_event(  # the account's e-mail declined, but not on this calendar's copy
            google,
            at(0, 15),
            60,
            summary="declined elsewhere",
            attendees=[
                {"email": "org@example.com", "responseStatus": "accepted"},
                {"email": me["google"], "responseStatus": "declined"},
            ],
        )
        await owner.google_event(  # Google flags the calendar's own attendee "self"
            google,
            at(0, 20),
            60,
            summary="declined by the calendar",
            attendees=[
                {"email": "org@example.com", "responseStatus": "accepted"},
                {"email": google, "responseStatus": "declined"},
            ],
        )
        series = await owner.google_event(
            google, at(0, 11), 30, summary="daily", recurrence=["RRULE:FREQ=DAILY;COUNT=4"]
        )
        cancelled_slot = at(1, 11).strftime("%Y%m%dT%H%M%SZ")
        await owner.admin("google", "DELETE", f"calendars/{google}/events/{series}_{cancelled_slot}")
        await owner.admin(
            "google",
            "POST",
            f"calendars/{google}/events",
            {
                "summary": "holiday",
                "start": {"date": (day.date() + timedelta(days=5)).isoformat()},
                "end": {"date": (day.date() + timedelta(days=6)).isoformat()},
            },
        )

        microsoft = await owner.microsoft_calendar()
        await owner.microsoft_event(microsoft, at(0, 9.5), 60)
        await owner.microsoft_event(microsoft, at(0, 10.5), 30, subject="touching")
        await owner.microsoft_event(microsoft, at(0, 17), 60, subject="free", showAs="free")
        await owner.microsoft_event(
            microsoft,
            at(0, 18),
            60,
            subject="declined",
            organizer={"emailAddress": {"address": "org@example.com", "name": "Org"}},
            attendees=[
                {
                    "emailAddress": {"address": me["microsoft"]},
                    "type": "required",
                    "status": {"response": "declined", "time": "2026-02-01T10:00:00Z"},
                }
            ],
        )
        await owner.microsoft_event(
            microsoft,
            at(0, 7),
            30,
            subject="standup",
            recurrence={
                "pattern": {"type": "daily", "interval": 1},
                "range": {
                    "type": "numbered",
                    "startDate": day.date().isoformat(),
                    "numberOfOccurrences": 3,
                    "recurrenceTimeZone": "UTC",
                },
            },
        )

        icloud = await owner.icloud_calendar()
        await owner.icloud_event(icloud, at(1, 14), 60)
        await owner.icloud_event(icloud, at(1, 16), 60, transp="TRANSPARENT")
        await owner.icloud_event(icloud, at(1, 12), 60, status="CANCELLED")
        declined = icalendar.vCalAddress(f"mailto:{me['icloud']}")
        declined.params["PARTSTAT"] = icalendar.vText("DECLINED")
        await owner.icloud_event(icloud, at(1, 18), 60, attendee=declined)

    google_con, g = await linked(browser, "google", user_id, google)
    microsoft_con, m = await linked(browser, "microsoft", user_id, microsoft)
    icloud_con, i = await linked(browser, "icloud", user_id, icloud)
    start, end = at(-1, 0), at(8, 0)
    holiday = (
        datetime.combine(day.date() + timedelta(days=5), datetime.min.time(), tzinfo=ZoneInfo(CALENDAR_ZONE)),
        datetime.combine(day.date() + timedelta(days=6), datetime.min.time(), tzinfo=ZoneInfo(CALENDAR_ZONE)),
    )

    answer = await free_busy(browser, user_id, start, end, calendar_ids=[m, i, g])

    assert (answer["object"], answer["user_id"], answer["start"], answer["end"]) == (
        "free_busy",
        user_id,
        z(start),
        z(end),
    )
    assert answer["busy"] == [
        {"start": z(at(0, 7)), "end": z(at(0, 7.5)), "calendar_ids": [m]},
        {"start": z(at(0, 9)), "end": z(at(0, 11.5)), "calendar_ids": [g, m]},  # overlap, touch, touch
        {"start": z(at(0, 15)), "end": z(at(0, 16)), "calendar_ids": [g]},  # Google trusts only "self"
        {"start": z(at(1, 7)), "end": z(at(1, 7.5)), "calendar_ids": [m]},
        # day 0 13:00 transparent, 17:00 free, 18:00 declined, 20:00 declined (self);
        # day 1 11:00: the series' cancelled instance; 12:00 cancelled, 16:00 transparent, 18:00 declined
        {"start": z(at(1, 14)), "end": z(at(1, 15)), "calendar_ids": [i]},
        {"start": z(at(2, 7)), "end": z(at(2, 7.5)), "calendar_ids": [m]},
        {"start": z(at(2, 11)), "end": z(at(2, 11.5)), "calendar_ids": [g]},
        {"start": z(at(3, 11)), "end": z(at(3, 11.5)), "calendar_ids": [g]},
        {"start": z(holiday[0]), "end": z(holiday[1]), "calendar_ids": [g]},  # in the calendar's zone
    ]
    calendars = {c["calendar_id"]: c for c in answer["calendars"]}
    assert [c["calendar_id"] for c in answer["calendars"]] == [g, m, i]  # by connection, oldest first
    assert calendars[g]["busy"] == [
        {"start": z(at(0, 9)), "end": z(at(0, 10))},
        {"start": z(at(0, 11)), "end": z(at(0, 11.5))},
        {"start": z(at(0, 15)), "end": z(at(0, 16))},
        {"start": z(at(2, 11)), "end": z(at(2, 11.5))},
        {"start": z(at(3, 11)), "end": z(at(3, 11.5))},
        {"start": z(holiday[0]), "end": z(holiday[1])},
    ]
    assert calendars[m]["busy"] == [
        {"start": z(at(0, 7)), "end": z(at(0, 7.5))},
        {"start": z(at(0, 9.5)), "end": z(at(0, 11))},
        {"start": z(at(1, 7)), "end": z(at(1, 7.5))},
        {"start": z(at(2, 7)), "end": z(at(2, 7.5))},
    ]
    assert calendars[i]["busy"] == [{"start": z(at(1, 14)), "end": z(at(1, 15))}]
    for calendar_id, connection_id, provider in [
        (g, google_con, "google"),
        (m, microsoft_con, "microsoft"),
        (i, icloud_con, "icloud"),
    ]:
        calendar = calendars[calendar_id]
        assert (calendar["connection_id"], calendar["provider"], calendar["sync_status"]) == (
            connection_id,
            provider,
            "ok",
        )
        assert calendar["last_synced_at"] is not None and calendar["error"] is None
    assert calendars[g]["all_day_timezone"] == CALENDAR_ZONE
    assert answer["excluded_calendars"] == []

    # all-day events read in the zone the caller names
    tokyo = await free_busy(browser, user_id, start, end, calendar_ids=[g], timezone="Asia/Tokyo")
    in_tokyo = [
        datetime.combine(day.date() + timedelta(days=n), datetime.min.time(), tzinfo=ZoneInfo("Asia/Tokyo"))
        for n in (5, 6)
    ]
    assert tokyo["busy"][-1] == {"start": z(in_tokyo[0]), "end": z(in_tokyo[1]), "calendar_ids": [g]}
    assert tokyo["calendars"][0]["all_day_timezone"] == "Asia/Tokyo"

    # the event objects say which events do not block time
    status, page = await call(browser, f"/v1/events?calendar_id={g}&limit=100")
    assert status == 200, page
    assert {e["title"]: e["transparency"] for e in page["data"]}["focus"] == "transparent"
    assert {e["title"]: e["transparency"] for e in page["data"]}["busy"] == "opaque"
    window = urlencode({"start": z(start), "end": z(end)})
    status, page = await call(browser, f"/v1/events?calendar_id={g}&expand_recurring=true&{window}&limit=100")
    assert status == 200, page
    assert {(o["title"], o["transparency"]) for o in page["data"]} >= {
        ("focus", "transparent"),
        ("daily", "opaque"),
    }

    # one calendar only
    only = await free_busy(browser, user_id, start, end, calendar_ids=[m])
    assert [c["calendar_id"] for c in only["calendars"]] == [m]
    assert only["busy"] == [{**b, "calendar_ids": [m]} for b in calendars[m]["busy"]]

    # every calendar of the user: the demo calendars too, ours among them as they were
    everything = await free_busy(browser, user_id, start, end)
    listed = {c["calendar_id"]: c for c in everything["calendars"]}
    assert {g, m, i} <= set(listed)
    assert {c["connection_id"] for c in everything["calendars"]} == {google_con, microsoft_con, icloud_con}
    for calendar_id in (g, m, i):
        assert listed[calendar_id]["busy"] == calendars[calendar_id]["busy"]
    merged = [(b["start"], b["end"]) for b in everything["busy"]]
    assert merged == sorted(merged)
    assert all(left[1] < right[0] for left, right in itertools.pairwise(merged))
    for interval in answer["busy"]:
        assert any(s <= interval["start"] and interval["end"] <= e for s, e in merged), interval

    # a connection in error (Graph refuses the grant) and a disconnected one no longer count
    async with aiohttp.ClientSession() as http:
        owner = Owner(sandbox, http)
        await owner.admin("microsoft", "POST", "faults", {"route": "*", "status": 401})
        try:
            status, body = await call(browser, f"/v1/connections/{microsoft_con}/refresh", method="POST")
            assert status == 202, body

            async def in_error() -> bool:
                _, connection = await call(browser, f"/v1/connections/{microsoft_con}")
                return connection["status"] == "error"

            await eventually(in_error, timeout_s=60)
        finally:
            await owner.admin("microsoft", "DELETE", "faults")
    status, _ = await call(browser, f"/v1/connections/{icloud_con}", method="DELETE")
    assert status == 200
    after = await free_busy(browser, user_id, start, end, calendar_ids=[g, m, i])
    assert [c["calendar_id"] for c in after["calendars"]] == [g]
    assert after["excluded_calendars"] == [
        {"calendar_id": m, "connection_id": microsoft_con, "reason": "connection_error"},
        {"calendar_id": i, "connection_id": icloud_con, "reason": "connection_disconnected"},
    ]
    assert after["busy"] == [{**b, "calendar_ids": [g]} for b in calendars[g]["busy"]]

    # tenancy: another user's calendar is refused; another application sees nothing of ours
    other_user = await browser.create_user("fb-2")
    other_con = (await browser.connect("google", other_user))["connection_id"][0]
    status, connection = await call(browser, f"/v1/connections/{other_con}")
    assert status == 200, connection
    theirs = connection["calendars"][0]
    status, body = await call(browser, f"/v1/users/{user_id}/free_busy?{window}&calendar_ids[]={theirs}")
    assert status == 400 and body["error"]["param"] == "calendar_ids[]", body
    _, stranger_key = await create_application(
        api.app[RUNTIME].repos.applications,
        name="stranger",
        return_url_prefixes=[RETURN_PREFIX],
        live=False,
        clock=SystemClock(),
    )
    status, body = await call(browser, f"/v1/users/{user_id}/free_busy?{window}", key=stranger_key)
    assert status == 404 and body["error"]["code"] == "resource_missing", body
    async with browser.http.post(
        f"{api.url}/v1/users", json={}, headers=browser.api.headers(stranger_key)
    ) as response:
        stranger_user = (await response.json())["id"]
    status, body = await call(
        browser, f"/v1/users/{stranger_user}/free_busy?{window}&calendar_ids[]={g}", key=stranger_key
    )
    assert status == 404 and body["error"]["param"] == "calendar_ids[]", body


async def test_bad_windows_and_unknown_users_answer_with_the_error_envelope(browser, api):
    user_id = await browser.create_user("fb-bad")
    t0 = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    base = f"/v1/users/{user_id}/free_busy"

    async def error(path: str) -> tuple[int, dict]:
        status, body = await call(browser, path)
        assert set(body) == {"error"} and {"type", "code", "message"} <= set(body["error"]), body
        return status, body["error"]

    for path, param in [
        (f"{base}?end={z(t0)}", "start"),
        (f"{base}?start={z(t0)}", "end"),
        (f"{base}", "start"),
    ]:
        status, body = await error(path)
        assert (status, body["code"], body["param"]) == (400, "parameter_missing", param), path
    status, body = await error(f"{base}?start={z(t0)}&end={z(t0)}")
    assert (status, body["code"], body["param"]) == (400, "parameter_invalid", "start")
    status, body = await error(f"{base}?start={z(t0)}&end={z(t0 - timedelta(hours=1))}")
    assert (status, body["param"]) == (400, "start")
    status, body = await error(f"{base}?start={z(t0)}&end={z(t0 + timedelta(days=366, seconds=1))}")
    assert (status, body["code"], body["param"]) == (400, "parameter_invalid", "end")
    status, body = await error(f"{base}?start=2026-03-01T00:00:00&end=2026-03-02T00:00:00")
    assert (status, body["param"]) == (400, "start")  # no zone: which instant is meant?
    status, body = await error(f"{base}?start=0001-01-01T00:00:00%2B01:00&end=0001-04-01T00:00:00Z")
    assert (status, body["code"], body["param"]) == (400, "parameter_invalid", "start")
    status, body = await error(f"{base}?start=9999-10-01T00:00:00Z&end=9999-12-31T23:00:00Z")
    assert (status, body["code"], body["param"]) == (400, "parameter_invalid", "start")
    for zone in ("Mars/Olympus", "America"):  # America: a directory of the tz database
        status, body = await error(f"{base}?start={z(t0)}&end={z(t0 + timedelta(days=1))}&timezone={zone}")
        assert (status, body["param"]) == (400, "timezone"), zone
    status, body = await error(f"{base}?start={z(t0)}&end={z(t0 + timedelta(days=1))}&calendar_ids[]=cal_x")
    assert status == 400 and body["param"].startswith("calendar_ids[]"), body
    status, body = await error(
        f"{base}?start={z(t0)}&end={z(t0 + timedelta(days=1))}&calendar_ids[]={new_id('cal')}"
    )
    assert (status, body["code"], body["param"]) == (404, "resource_missing", "calendar_ids[]")
    status, body = await error(
        f"/v1/users/{new_id('usr')}/free_busy?start={z(t0)}&end={z(t0 + timedelta(days=1))}"
    )
    assert (status, body["code"]) == (404, "resource_missing")
    status, body = await error(f"/v1/users/usr_nope/free_busy?start={z(t0)}&end={z(t0 + timedelta(days=1))}")
    assert (status, body["param"]) == (400, "id")

    # a full 366-day window is fine; a user without connections is free throughout
    status, body = await call(browser, f"{base}?start={z(t0)}&end={z(t0 + timedelta(days=366))}")
    assert status == 200, body
    assert (body["busy"], body["calendars"], body["excluded_calendars"]) == ([], [], [])
