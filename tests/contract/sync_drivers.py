"""Each provider's user, for the sync contract: a fresh calendar, writes made as its owner would
make them (the emulators' admin APIs, CalDAV PUT/DELETE on Radicale), and the provider's own
view of the calendar to compare a sync against.

A driver's ``own_fields`` reads the calendar the provider's own way (Google: the stored events;
Microsoft: the calendar view over the sync window; CalDAV: a PROPFIND and a GET per resource)
and returns ``{provider_event_id: Own}`` (every field compared) for every event a sync must return;
``own_view`` is its short form ``{provider_event_id: (etag, title, status)}``.
"""

from __future__ import annotations

import asyncio
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote, unquote, urlsplit
from zoneinfo import ZoneInfo

import aiohttp
import icalendar
from contract.providers_fixtures import Connection, World
from contract.random_events import end_after, unambiguous
from contract.sync_dataset import (
    ALL_DAY_TITLE,
    ATTENDEES,
    BERLIN,
    DATASET,
    MOVED_TITLE,
    NEW_YORK,
    NY_MINUTES,
    NY_TITLE,
    SERIES_COUNT,
    SERIES_DESCRIPTION,
    SERIES_LOCATION,
    SERIES_MINUTES,
    SERIES_TITLE,
    UTC_MINUTES,
    UTC_TITLE,
    local,
)

from chronapilot.common.providers.sync import EventData, EventTime


@dataclass(frozen=True)
class Own:
    """An event's fields as the provider's own representation gives them, read independently of
    the provider module (times as UTC instants or dates; attendees as (e-mail, response))."""

    etag: str | None
    title: str | None
    status: str
    start: datetime | date | None
    end: datetime | date | None
    recurring_event_id: str | None
    ical_uid: str | None
    location: str | None
    attendees: frozenset[tuple[str, str]]

    @classmethod
    def of(cls, event: EventData) -> Own:
        """The same fields of a synced event."""

        def when(time: EventTime | None) -> datetime | date | None:
            return None if time is None else time.date_time or time.date

        return cls(
            event.etag,
            event.title,
            event.status,
            when(event.start),
            when(event.end),
            event.recurring_event_id,
            event.ical_uid,
            event.location,
            frozenset((a.email, a.response_status) for a in event.attendees),
        )


OwnView = dict[str, Own]
LATER_TITLE = "Weekly planning (later)"


class Driver:
    """What the contract needs from a provider's user."""

    name: ClassVar[str]

    def __init__(self, world: World, connection: Connection) -> None:
        self.world = world
        self.connection = connection
        self.calendar_id = ""
        self.series_id = self.all_day_id = self.ny_id = ""

    async def new_calendar(self) -> str:
        raise NotImplementedError

    async def create(self, title: str, start: datetime, minutes: int = 30) -> str:
        """A single timed event; its provider event id. It is written in ``start``'s zone when
        that is a ``ZoneInfo`` (the provider then names it), else in UTC."""
        raise NotImplementedError

    async def retitle(self, event_id: str, title: str) -> None:
        raise NotImplementedError

    async def delete(self, event_id: str) -> None:
        raise NotImplementedError

    async def write_dataset(self) -> None:
        """Write :mod:`contract.sync_dataset`; remember ``series_id``, ``all_day_id``, ``ny_id``."""
        raise NotImplementedError

    async def change_series(self) -> None:
        """Move the dataset series' 23 March occurrence to 10:00 and cancel the 13 April one."""
        raise NotImplementedError

    async def throttle(self, status: int, retry_after: int) -> bool:
        """Make the provider's next answer ``status`` with ``Retry-After``; False if it can't."""
        await self.world.call_admin(
            "POST", "faults", {"route": "*", "status": status, "retry_after": retry_after, "times": 1}
        )
        return True

    async def own_fields(self) -> OwnView:
        """``{provider_event_id: Own}`` of every event a sync must return."""
        raise NotImplementedError

    async def own_view(self) -> dict[str, tuple[str | None, str | None, str]]:
        """``{provider_event_id: (etag, title, status)}``: the short form of :meth:`own_fields`."""
        return {key: (own.etag, own.title, own.status) for key, own in (await self.own_fields()).items()}

    async def dead(self, cursor: str) -> str:
        """``cursor``, made one the provider rejects (expired at the provider where it can)."""
        raise NotImplementedError

    def set_page_size(self, size: int) -> None:
        self.connection.provider.sync_page_size = size  # type: ignore[attr-defined]


def _zone_name(value: datetime) -> str:
    return value.tzinfo.key if isinstance(value.tzinfo, ZoneInfo) else "UTC"


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


class GoogleDriver(Driver):
    name = "google"

    async def new_calendar(self) -> str:
        created = await self.world.call_admin(
            "POST", f"users/{self.world.email}/calendars", {"summary": f"sync {uuid.uuid4().hex[:8]}"}
        )
        self.calendar_id = created["id"]
        return self.calendar_id

    def _events(self, suffix: str = "") -> str:
        return f"calendars/{self.calendar_id}/events{suffix}"

    async def create(self, title: str, start: datetime, minutes: int = 30) -> str:
        zone = {"timeZone": _zone_name(start)}
        body = {
            "summary": title,
            "start": {"dateTime": start.isoformat(), **zone},
            "end": {"dateTime": end_after(start, minutes).isoformat(), **zone},
        }
        created = await self.world.call_admin("POST", self._events(), body)
        return str(created["id"])

    async def retitle(self, event_id: str, title: str) -> None:
        await self.world.call_admin("PATCH", self._events(f"/{event_id}"), {"summary": title})

    async def delete(self, event_id: str) -> None:
        await self.world.call_admin("DELETE", self._events(f"/{event_id}"))

    async def write_dataset(self) -> None:
        def berlin(wall: datetime) -> dict[str, str]:
            return {"dateTime": wall.isoformat(), "timeZone": BERLIN}

        master = await self.world.call_admin(
            "POST",
            self._events(),
            {
                "summary": SERIES_TITLE,
                "description": SERIES_DESCRIPTION,
                "location": SERIES_LOCATION,
                "start": berlin(DATASET.series_first),
                "end": berlin(DATASET.series_first + timedelta(minutes=SERIES_MINUTES)),
                "recurrence": [f"RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT={SERIES_COUNT}"],
                "attendees": [
                    {"email": email, "displayName": name, "responseStatus": response, "optional": optional}
                    for email, name, response, optional in ATTENDEES
                ],
            },
        )
        series = self.series_id = master["id"]
        await self.world.call_admin(
            "PATCH",
            self._events(f"/{series}_{_stamp(local(DATASET.moved_original, BERLIN))}"),
            {
                "summary": MOVED_TITLE,
                "start": berlin(DATASET.moved_to),
                "end": berlin(DATASET.moved_to + timedelta(minutes=SERIES_MINUTES)),
            },
        )
        await self.world.call_admin(
            "DELETE", self._events(f"/{series}_{_stamp(local(DATASET.cancelled_original, BERLIN))}")
        )
        self.all_day_id = await self._insert(
            {
                "summary": ALL_DAY_TITLE,
                "start": {"date": DATASET.all_day_first.isoformat()},
                "end": {"date": DATASET.all_day_end.isoformat()},
            },
        )
        self.ny_id = await self._insert(
            {
                "summary": NY_TITLE,
                "start": {"dateTime": DATASET.ny_start.isoformat(), "timeZone": NEW_YORK},
                "end": {
                    "dateTime": (DATASET.ny_start + timedelta(minutes=NY_MINUTES)).isoformat(),
                    "timeZone": NEW_YORK,
                },
            },
        )
        await self.world.call_admin(
            "POST",
            self._events(),
            {
                "summary": UTC_TITLE,
                "start": {"dateTime": DATASET.utc_start.isoformat(), "timeZone": "UTC"},
                "end": {
                    "dateTime": (DATASET.utc_start + timedelta(minutes=UTC_MINUTES)).isoformat(),
                    "timeZone": "UTC",
                },
            },
        )

    async def _insert(self, body: dict[str, Any]) -> str:
        return str((await self.world.call_admin("POST", self._events(), body))["id"])

    async def change_series(self) -> None:
        later = DATASET.series_first + timedelta(weeks=3)
        start = later + timedelta(hours=1)
        await self.world.call_admin(
            "PATCH",
            self._events(f"/{self.series_id}_{_stamp(local(later, BERLIN))}"),
            {
                "summary": LATER_TITLE,
                "start": {"dateTime": start.isoformat(), "timeZone": BERLIN},
                "end": {
                    "dateTime": (start + timedelta(minutes=SERIES_MINUTES)).isoformat(),
                    "timeZone": BERLIN,
                },
            },
        )
        gone = local(DATASET.series_first + timedelta(weeks=6), BERLIN)
        await self.world.call_admin("DELETE", self._events(f"/{self.series_id}_{_stamp(gone)}"))

    async def own_fields(self) -> OwnView:
        stored = await self.world.call_admin("GET", self._events())
        return {
            item["id"]: _google_own(item)
            for item in stored["items"]
            if item["status"] != "cancelled" or item.get("recurringEventId")
        }

    async def dead(self, cursor: str) -> str:
        await self.world.call_admin("POST", f"calendars/{self.calendar_id}/sync-tokens/expire")
        return cursor


def _google_time(value: dict[str, str] | None) -> datetime | date | None:
    if value is None:
        return None
    if "date" in value:
        return date.fromisoformat(value["date"])
    return datetime.fromisoformat(value["dateTime"]).astimezone(UTC)


def _google_own(item: dict[str, Any]) -> Own:
    return Own(
        item.get("etag"),
        item.get("summary"),
        item["status"],
        _google_time(item.get("start")),
        _google_time(item.get("end")),
        item.get("recurringEventId"),
        item.get("iCalUID"),
        item.get("location"),
        frozenset((a["email"], a["responseStatus"]) for a in item.get("attendees") or []),
    )


_GRAPH_RESPONSES = {"needsAction": "none", "tentative": "tentativelyAccepted"}
WINDOWS_BERLIN = "W. Europe Standard Time"
WINDOWS_NEW_YORK = "Eastern Standard Time"


class MicrosoftDriver(Driver):
    name = "microsoft"

    async def new_calendar(self) -> str:
        created = await self.world.call_admin(
            "POST", f"users/{self.world.email}/calendars", {"name": f"sync {uuid.uuid4().hex[:8]}"}
        )
        self.calendar_id = created["id"]
        return self.calendar_id

    async def create(self, title: str, start: datetime, minutes: int = 30) -> str:
        zone = _zone_name(start)
        start = start.astimezone(ZoneInfo(zone))
        end = end_after(start, minutes)
        assert unambiguous(start) and unambiguous(end), "Graph takes wall times: they must name one instant"
        return await self._create(
            {
                "subject": title,
                "start": _graph_time(start.replace(tzinfo=None), zone),
                "end": _graph_time(end.replace(tzinfo=None), zone),
            }
        )

    async def _create(self, body: dict[str, Any]) -> str:
        created = await self.world.call_admin("POST", f"calendars/{self.calendar_id}/events", body)
        return str(created["id"])

    async def retitle(self, event_id: str, title: str) -> None:
        await self.world.call_admin("PATCH", f"events/{event_id}", {"subject": title})

    async def delete(self, event_id: str) -> None:
        await self.world.call_admin("DELETE", f"events/{event_id}")

    async def _graph(self, path: str, **params: str) -> dict[str, Any]:
        token = await self.connection.token(False)
        async with self.world.http.get(
            f"{self.world.settings.microsoft_graph_url}{path}",
            params=params,
            headers={"Authorization": f"Bearer {token}", "Prefer": 'outlook.timezone="UTC"'},
        ) as response:
            assert response.status == 200, await response.text()
            body: dict[str, Any] = await response.json()
            return body

    def _window(self) -> dict[str, str]:
        provider = self.connection.provider
        past, future = provider.sync_window  # type: ignore[attr-defined]
        now = datetime.now(UTC)
        return {
            "startDateTime": (now - past + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "endDateTime": (now + future - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    async def write_dataset(self) -> None:
        self.series_id = await self._create(
            {
                "subject": SERIES_TITLE,
                "body": {"contentType": "text", "content": SERIES_DESCRIPTION},
                "location": {"displayName": SERIES_LOCATION},
                "start": _graph_time(DATASET.series_first, WINDOWS_BERLIN),
                "end": _graph_time(DATASET.series_first + timedelta(minutes=SERIES_MINUTES), WINDOWS_BERLIN),
                "recurrence": {
                    "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
                    "range": {
                        "type": "numbered",
                        "startDate": DATASET.series_first.date().isoformat(),
                        "numberOfOccurrences": SERIES_COUNT,
                        "recurrenceTimeZone": WINDOWS_BERLIN,
                    },
                },
                "attendees": [
                    {
                        "emailAddress": {"address": email, "name": name},
                        "type": "optional" if optional else "required",
                        "status": {
                            "response": _GRAPH_RESPONSES.get(response, response),
                            "time": "2026-02-01T10:00:00Z",
                        },
                    }
                    for email, name, response, optional in ATTENDEES
                ],
            }
        )
        occurrence = await self._occurrences()

        await self.world.call_admin(
            "PATCH",
            f"events/{occurrence(DATASET.moved_original)}",
            {
                "subject": MOVED_TITLE,
                "start": _graph_time(DATASET.moved_to, WINDOWS_BERLIN),
                "end": _graph_time(DATASET.moved_to + timedelta(minutes=SERIES_MINUTES), WINDOWS_BERLIN),
            },
        )
        await self.world.call_admin("DELETE", f"events/{occurrence(DATASET.cancelled_original)}")
        self.all_day_id = await self._create(
            {
                "subject": ALL_DAY_TITLE,
                "isAllDay": True,
                "start": _graph_time(datetime.combine(DATASET.all_day_first, datetime.min.time()), "UTC"),
                "end": _graph_time(datetime.combine(DATASET.all_day_end, datetime.min.time()), "UTC"),
            }
        )
        self.ny_id = await self._create(
            {
                "subject": NY_TITLE,
                "start": _graph_time(DATASET.ny_start, WINDOWS_NEW_YORK),
                "end": _graph_time(DATASET.ny_start + timedelta(minutes=NY_MINUTES), WINDOWS_NEW_YORK),
            }
        )
        await self.create(UTC_TITLE, DATASET.utc_start, UTC_MINUTES)

    async def _occurrences(self) -> Callable[[datetime], str]:
        """The series' occurrence ids by local original start, as the instances endpoint lists them."""
        instances = await self._graph(
            f"/me/events/{self.series_id}/instances",
            startDateTime=f"{DATASET.year}-03-01T00:00:00Z",
            endDateTime=f"{DATASET.year}-05-01T00:00:00Z",
        )
        by_start = {item["originalStart"]: item["id"] for item in instances["value"]}

        def occurrence(wall: datetime) -> str:
            return str(by_start[local(wall, BERLIN).strftime("%Y-%m-%dT%H:%M:%SZ")])

        return occurrence

    async def change_series(self) -> None:
        occurrence = await self._occurrences()
        later = DATASET.series_first + timedelta(weeks=3)
        start = later + timedelta(hours=1)
        await self.world.call_admin(
            "PATCH",
            f"events/{occurrence(later)}",
            {
                "subject": LATER_TITLE,
                "start": _graph_time(start, WINDOWS_BERLIN),
                "end": _graph_time(start + timedelta(minutes=SERIES_MINUTES), WINDOWS_BERLIN),
            },
        )
        await self.world.call_admin(
            "DELETE", f"events/{occurrence(DATASET.series_first + timedelta(weeks=6))}"
        )

    async def own_fields(self) -> OwnView:
        view: OwnView = {}
        page = await self._graph(
            f"/me/calendars/{self.calendar_id}/calendarView", **self._window(), **{"$top": "500"}
        )
        while True:
            for item in page["value"]:
                view[item["id"]] = _graph_own(item)
            link = page.get("@odata.nextLink")
            if not link:
                return view
            page = await self._graph(link.removeprefix(self.world.settings.microsoft_graph_url))

    async def dead(self, cursor: str) -> str:
        await self.world.call_admin("POST", "delta/expire", {"calendar_id": self.calendar_id})
        return cursor


_FROM_GRAPH = {"none": "needsAction", "tentativelyAccepted": "tentative", "notResponded": "needsAction"}


def _graph_own(item: dict[str, Any]) -> Own:
    """A calendar-view item read with ``Prefer: outlook.timezone="UTC"``."""

    def when(value: dict[str, str]) -> datetime | date:
        assert value["timeZone"] == "UTC"
        wall = datetime.fromisoformat(value["dateTime"][:19])
        return wall.date() if item["isAllDay"] else wall.replace(tzinfo=UTC)

    return Own(
        item["changeKey"],
        item["subject"] or None,
        "cancelled" if item["isCancelled"] else "confirmed",
        when(item["start"]),
        when(item["end"]),
        item.get("seriesMasterId"),
        item.get("uid") or item.get("iCalUId"),
        item["location"].get("displayName") or None,
        frozenset(
            (a["emailAddress"]["address"], _FROM_GRAPH.get(a["status"]["response"], a["status"]["response"]))
            for a in item["attendees"]
        ),
    )


def _graph_time(wall: datetime, zone: str) -> dict[str, str]:
    return {"dateTime": wall.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": zone}


class ICloudDriver(Driver):
    """Radicale as a CalDAV client writes to it: MKCALENDAR, PUT, DELETE."""

    name = "icloud"

    @property
    def _auth(self) -> str:
        return aiohttp.encode_basic_auth(self.world.email, self.world.password)

    async def _dav(
        self, method: str, url: str, body: bytes | str = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        async with self.world.http.request(
            method, url, data=body, headers={**(headers or {}), "Authorization": self._auth}
        ) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, await response.read()

    async def new_calendar(self) -> str:
        home = f"{self.world.base_url.rstrip('/')}/{quote(self.world.email, safe='')}/"
        url = f"{home}sync-{uuid.uuid4().hex[:8]}/"
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:set><d:prop>'
            "<d:displayname>sync</d:displayname>"
            '<c:supported-calendar-component-set><c:comp name="VEVENT"/></c:supported-calendar-component-set>'
            "</d:prop></d:set></c:mkcalendar>"
        )
        status, _, text = await self._dav("MKCALENDAR", url, body)
        assert status == 201, text
        # the id as the provider lists it (servers differ in escaping the "@" of the home)
        listed = await self.connection.provider.list_calendars(self.connection.token)
        self.calendar_id = next(
            c.provider_calendar_id for c in listed if unquote(c.provider_calendar_id) == unquote(url)
        )
        return self.calendar_id

    def _id(self, url: str) -> str:
        return unquote(urlsplit(url).path)

    async def _put(
        self, calendar: icalendar.Calendar, url: str | None = None, etag: str | None = None
    ) -> str:
        if url is None:  # named after its UID, as a whole-collection upload names it too
            uid = str(next(iter(calendar.walk("VEVENT")))["UID"])
            url = f"{self.calendar_id}{quote(uid, safe='')}.ics"
        headers = {"Content-Type": "text/calendar; charset=utf-8"}
        headers.update({"If-Match": etag} if etag else {"If-None-Match": "*"})
        status, _, text = await self._dav("PUT", url, calendar.to_ical(), headers)
        assert status in (201, 204), text
        return self._id(url)

    @staticmethod
    def _calendar(*events: icalendar.Event) -> icalendar.Calendar:
        calendar = icalendar.Calendar()
        calendar.add("prodid", "-//ChronaPilot tests//EN")
        calendar.add("version", "2.0")
        for event in events:
            calendar.add_component(event)
        calendar.add_missing_timezones()
        return calendar

    @staticmethod
    def _event(uid: str, title: str, start: Any, end: Any) -> icalendar.Event:
        event = icalendar.Event()
        event.add("uid", uid)
        event.add("dtstamp", datetime(2026, 2, 1, 10, 0, tzinfo=UTC))
        event.add("summary", title)
        event.add("dtstart", start)
        event.add("dtend", end)
        return event

    async def create(self, title: str, start: datetime, minutes: int = 30) -> str:
        end = end_after(start, minutes)
        assert unambiguous(start) and unambiguous(end), "TZID wall times must name one instant"
        event = self._event(str(uuid.uuid4()), title, start, end)
        return await self._put(self._calendar(event))

    def _url(self, event_id: str) -> str:
        parts = urlsplit(self.calendar_id)
        return f"{parts.scheme}://{parts.netloc}{quote(event_id)}"

    async def retitle(self, event_id: str, title: str) -> None:
        status, headers, data = await self._dav("GET", self._url(event_id))
        assert status == 200
        calendar = icalendar.Calendar.from_ical(data)
        for event in calendar.walk("VEVENT"):
            event["SUMMARY"] = icalendar.vText(title)
        await self._put(calendar, self._url(event_id), headers.get("etag"))

    async def delete(self, event_id: str) -> None:
        status, _, text = await self._dav("DELETE", self._url(event_id))
        assert status in (200, 204), text

    async def write_dataset(self) -> None:
        berlin, new_york = ZoneInfo(BERLIN), ZoneInfo(NEW_YORK)

        def people(event: icalendar.Event) -> None:
            organizer = icalendar.vCalAddress(f"mailto:{self.world.email}")
            organizer.params["CN"] = icalendar.vText("Demo")
            event.add("organizer", organizer)
            for email, name, response, optional in ATTENDEES:
                attendee = icalendar.vCalAddress(f"mailto:{email}")
                attendee.params["CN"] = icalendar.vText(name)
                attendee.params["PARTSTAT"] = icalendar.vText(_PARTSTATS[response])
                attendee.params["ROLE"] = icalendar.vText(
                    "OPT-PARTICIPANT" if optional else "REQ-PARTICIPANT"
                )
                event.add("attendee", attendee, encode=False)
            event.add("description", SERIES_DESCRIPTION)
            event.add("location", SERIES_LOCATION)

        uid = str(uuid.uuid4())
        first = DATASET.series_first.replace(tzinfo=berlin)
        master = self._event(uid, SERIES_TITLE, first, first + timedelta(minutes=SERIES_MINUTES))
        master.add("rrule", {"freq": "weekly", "byday": "MO", "count": SERIES_COUNT})
        master.add("exdate", DATASET.cancelled_original.replace(tzinfo=berlin))
        people(master)
        moved_to = DATASET.moved_to.replace(tzinfo=berlin)
        moved = self._event(uid, MOVED_TITLE, moved_to, moved_to + timedelta(minutes=SERIES_MINUTES))
        moved.add("recurrence-id", DATASET.moved_original.replace(tzinfo=berlin))
        people(moved)
        self.series_id = await self._put(self._calendar(master, moved))
        self.all_day_id = await self._put(
            self._calendar(
                self._event(str(uuid.uuid4()), ALL_DAY_TITLE, DATASET.all_day_first, DATASET.all_day_end)
            )
        )
        ny = DATASET.ny_start.replace(tzinfo=new_york)
        self.ny_id = await self._put(
            self._calendar(self._event(str(uuid.uuid4()), NY_TITLE, ny, ny + timedelta(minutes=NY_MINUTES)))
        )
        await self.create(UTC_TITLE, DATASET.utc_start, UTC_MINUTES)

    async def change_series(self) -> None:
        berlin = ZoneInfo(BERLIN)
        status, headers, data = await self._dav("GET", self._url(self.series_id))
        assert status == 200
        calendar = icalendar.Calendar.from_ical(data)
        master = next(e for e in calendar.walk("VEVENT") if "RECURRENCE-ID" not in e)
        later = (DATASET.series_first + timedelta(weeks=3)).replace(tzinfo=berlin)
        start = later + timedelta(hours=1)
        moved = self._event(str(master["UID"]), LATER_TITLE, start, start + timedelta(minutes=SERIES_MINUTES))
        moved.add("recurrence-id", later)
        for name in ("ORGANIZER", "DESCRIPTION", "LOCATION"):
            moved[name] = master[name]
        moved["ATTENDEE"] = master["ATTENDEE"]
        calendar.add_component(moved)
        master.add("exdate", (DATASET.series_first + timedelta(weeks=6)).replace(tzinfo=berlin))
        await self._put(calendar, self._url(self.series_id), headers.get("etag"))

    async def throttle(self, status: int, retry_after: int) -> bool:
        return False  # Radicale has no fault injection

    async def own_fields(self) -> OwnView:
        body = '<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>'
        status, _, data = await self._dav("PROPFIND", self.calendar_id, body, {"Depth": "1"})
        assert status == 207
        view: OwnView = {}
        listed = [
            (response.findtext("{DAV:}href") or "", response.findtext(".//{DAV:}getetag"))
            for response in ET.fromstring(data).findall("{DAV:}response")
        ]
        slots = asyncio.Semaphore(8)  # Radicale serves 8 connections

        async def fetch(href: str) -> bytes:
            async with slots:
                status, _, ics = await self._dav("GET", self._url(unquote(href)))
            assert status == 200
            return ics

        resources = [(href, etag) for href, etag in listed if not href.endswith("/")]
        bodies = await asyncio.gather(*(fetch(href) for href, _ in resources))
        for (href, etag), ics in zip(resources, bodies, strict=True):
            for event in icalendar.Calendar.from_ical(ics).walk("VEVENT"):
                event_id = unquote(href)
                if "RECURRENCE-ID" in event:
                    event_id += "#" + event.decoded("RECURRENCE-ID").astimezone(UTC).strftime(
                        "%Y%m%dT%H%M%SZ"
                    )
                view[event_id] = _ical_own(event, etag, unquote(href))
        return view

    async def dead(self, cursor: str) -> str:
        """Radicale keeps no way to expire a token, but forgets its history when a collection is
        replaced whole: export the calendar (GET) and import it again (PUT of the collection),
        as a user restoring a backup would. Resources are named after their UIDs (see
        :meth:`_put`), so the import keeps every href; the returned cursor is dead as well."""
        status, _, exported = await self._dav("GET", self.calendar_id)
        assert status == 200, exported
        status, _, text = await self._dav(
            "PUT", self.calendar_id, exported, {"Content-Type": "text/calendar; charset=utf-8"}
        )
        assert status in (201, 204), text
        return cursor

    def set_page_size(self, size: int) -> None:
        self.connection.provider.sync_batch_size = size  # type: ignore[attr-defined]


def _ical_own(event: icalendar.Event, etag: str | None, href: str) -> Own:
    def when(name: str) -> datetime | date | None:
        if name not in event:
            return None
        value = event.decoded(name)
        return value.astimezone(UTC) if isinstance(value, datetime) else value

    attendees = event.get("ATTENDEE") or []
    return Own(
        etag,
        str(event["SUMMARY"]) if "SUMMARY" in event else None,
        str(event.get("STATUS", "confirmed")).lower(),
        when("DTSTART"),
        when("DTEND"),
        href if "RECURRENCE-ID" in event else None,
        str(event["UID"]),
        str(event["LOCATION"]) if "LOCATION" in event else None,
        frozenset(
            (str(a).removeprefix("mailto:"), _FROM_PARTSTAT[str(a.params.get("PARTSTAT", "NEEDS-ACTION"))])
            for a in (attendees if isinstance(attendees, list) else [attendees])
        ),
    )


_PARTSTATS = {
    "accepted": "ACCEPTED",
    "declined": "DECLINED",
    "tentative": "TENTATIVE",
    "needsAction": "NEEDS-ACTION",
}


_FROM_PARTSTAT = {value: key for key, value in _PARTSTATS.items()}


class ICloudCtagDriver(ICloudDriver):
    """The same server, with sync-collection left unused: the ctag/etag fallback."""

    async def new_calendar(self) -> str:
        self.connection.provider.sync_collection = False  # type: ignore[attr-defined]
        return await super().new_calendar()

    async def dead(self, cursor: str) -> str:
        return "ctag:not-a-cursor"
