"""Each provider's user, for the sync contract: a fresh calendar, writes made as its owner would
make them (the emulators' admin APIs, CalDAV PUT/DELETE on Radicale), and the provider's own
view of the calendar to compare a sync against.

A driver's ``own_view`` reads the calendar the provider's own way (Google: the stored events;
Microsoft: the calendar view over the sync window; CalDAV: a PROPFIND and a GET per resource)
and returns ``{provider_event_id: (etag, title, status)}`` for every event a sync must return.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from contract.providers_fixtures import Connection, World
from contract.sync_dataset import (
    ALL_DAY_END,
    ALL_DAY_FIRST,
    ALL_DAY_TITLE,
    ATTENDEES,
    BERLIN,
    CANCELLED_ORIGINAL,
    MOVED_ORIGINAL,
    MOVED_TITLE,
    MOVED_TO,
    NEW_YORK,
    NY_MINUTES,
    NY_START,
    NY_TITLE,
    SERIES_COUNT,
    SERIES_DESCRIPTION,
    SERIES_FIRST,
    SERIES_LOCATION,
    SERIES_MINUTES,
    SERIES_TITLE,
    UTC_MINUTES,
    UTC_START,
    UTC_TITLE,
    local,
)

OwnView = dict[str, tuple[str | None, str | None, str]]


class Driver:
    """What the contract needs from a provider's user."""

    name: ClassVar[str]

    def __init__(self, world: World, connection: Connection) -> None:
        self.world = world
        self.connection = connection
        self.calendar_id = ""

    async def new_calendar(self) -> str:
        raise NotImplementedError

    async def create(self, title: str, start: datetime, minutes: int = 30) -> str:
        """A single timed event (UTC); its provider event id."""
        raise NotImplementedError

    async def retitle(self, event_id: str, title: str) -> None:
        raise NotImplementedError

    async def delete(self, event_id: str) -> None:
        raise NotImplementedError

    async def write_dataset(self) -> None:
        raise NotImplementedError

    async def own_view(self) -> OwnView:
        raise NotImplementedError

    async def expire_cursors(self) -> None:
        raise NotImplementedError

    def set_page_size(self, size: int) -> None:
        self.connection.provider.sync_page_size = size  # type: ignore[attr-defined]


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
        body = {
            "summary": title,
            "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": (start + timedelta(minutes=minutes)).isoformat()},
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
                "start": berlin(SERIES_FIRST),
                "end": berlin(SERIES_FIRST + timedelta(minutes=SERIES_MINUTES)),
                "recurrence": [f"RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT={SERIES_COUNT}"],
                "attendees": [
                    {"email": email, "displayName": name, "responseStatus": response, "optional": optional}
                    for email, name, response, optional in ATTENDEES
                ],
            },
        )
        series = master["id"]
        await self.world.call_admin(
            "PATCH",
            self._events(f"/{series}_{_stamp(local(MOVED_ORIGINAL, BERLIN))}"),
            {
                "summary": MOVED_TITLE,
                "start": berlin(MOVED_TO),
                "end": berlin(MOVED_TO + timedelta(minutes=SERIES_MINUTES)),
            },
        )
        await self.world.call_admin(
            "DELETE", self._events(f"/{series}_{_stamp(local(CANCELLED_ORIGINAL, BERLIN))}")
        )
        await self.world.call_admin(
            "POST",
            self._events(),
            {
                "summary": ALL_DAY_TITLE,
                "start": {"date": ALL_DAY_FIRST.isoformat()},
                "end": {"date": ALL_DAY_END.isoformat()},
            },
        )
        await self.world.call_admin(
            "POST",
            self._events(),
            {
                "summary": NY_TITLE,
                "start": {"dateTime": NY_START.isoformat(), "timeZone": NEW_YORK},
                "end": {
                    "dateTime": (NY_START + timedelta(minutes=NY_MINUTES)).isoformat(),
                    "timeZone": NEW_YORK,
                },
            },
        )
        await self.world.call_admin(
            "POST",
            self._events(),
            {
                "summary": UTC_TITLE,
                "start": {"dateTime": UTC_START.isoformat(), "timeZone": "UTC"},
                "end": {
                    "dateTime": (UTC_START + timedelta(minutes=UTC_MINUTES)).isoformat(),
                    "timeZone": "UTC",
                },
            },
        )

    async def own_view(self) -> OwnView:
        stored = await self.world.call_admin("GET", self._events())
        return {
            item["id"]: (item.get("etag"), item.get("summary"), item["status"])
            for item in stored["items"]
            if item["status"] != "cancelled" or item.get("recurringEventId")
        }

    async def expire_cursors(self) -> None:
        await self.world.call_admin("POST", f"calendars/{self.calendar_id}/sync-tokens/expire")


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
        return await self._create(
            {
                "subject": title,
                "start": _graph_time(start.astimezone(UTC).replace(tzinfo=None), "UTC"),
                "end": _graph_time(
                    (start + timedelta(minutes=minutes)).astimezone(UTC).replace(tzinfo=None), "UTC"
                ),
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
        series = await self._create(
            {
                "subject": SERIES_TITLE,
                "body": {"contentType": "text", "content": SERIES_DESCRIPTION},
                "location": {"displayName": SERIES_LOCATION},
                "start": _graph_time(SERIES_FIRST, WINDOWS_BERLIN),
                "end": _graph_time(SERIES_FIRST + timedelta(minutes=SERIES_MINUTES), WINDOWS_BERLIN),
                "recurrence": {
                    "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
                    "range": {
                        "type": "numbered",
                        "startDate": SERIES_FIRST.date().isoformat(),
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
        instances = await self._graph(
            f"/me/events/{series}/instances",
            startDateTime="2026-03-01T00:00:00Z",
            endDateTime="2026-05-01T00:00:00Z",
        )
        by_start = {item["originalStart"]: item["id"] for item in instances["value"]}

        def occurrence(wall: datetime) -> str:
            return str(by_start[local(wall, BERLIN).strftime("%Y-%m-%dT%H:%M:%SZ")])

        await self.world.call_admin(
            "PATCH",
            f"events/{occurrence(MOVED_ORIGINAL)}",
            {
                "subject": MOVED_TITLE,
                "start": _graph_time(MOVED_TO, WINDOWS_BERLIN),
                "end": _graph_time(MOVED_TO + timedelta(minutes=SERIES_MINUTES), WINDOWS_BERLIN),
            },
        )
        await self.world.call_admin("DELETE", f"events/{occurrence(CANCELLED_ORIGINAL)}")
        await self._create(
            {
                "subject": ALL_DAY_TITLE,
                "isAllDay": True,
                "start": _graph_time(datetime.combine(ALL_DAY_FIRST, datetime.min.time()), "UTC"),
                "end": _graph_time(datetime.combine(ALL_DAY_END, datetime.min.time()), "UTC"),
            }
        )
        await self._create(
            {
                "subject": NY_TITLE,
                "start": _graph_time(NY_START, WINDOWS_NEW_YORK),
                "end": _graph_time(NY_START + timedelta(minutes=NY_MINUTES), WINDOWS_NEW_YORK),
            }
        )
        await self.create(UTC_TITLE, UTC_START, UTC_MINUTES)

    async def own_view(self) -> OwnView:
        view: OwnView = {}
        page = await self._graph(
            f"/me/calendars/{self.calendar_id}/calendarView", **self._window(), **{"$top": "500"}
        )
        while True:
            for item in page["value"]:
                view[item["id"]] = (item["changeKey"], item["subject"] or None, "confirmed")
            link = page.get("@odata.nextLink")
            if not link:
                return view
            page = await self._graph(link.removeprefix(self.world.settings.microsoft_graph_url))

    async def expire_cursors(self) -> None:
        await self.world.call_admin("POST", "delta/expire", {"calendar_id": self.calendar_id})


def _graph_time(wall: datetime, zone: str) -> dict[str, str]:
    return {"dateTime": wall.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": zone}
