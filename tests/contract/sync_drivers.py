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
from typing import ClassVar

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
