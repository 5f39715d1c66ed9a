"""The ``events`` collection: its only reader and writer."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from chronapilot.common.store.client import Document, translate_errors
from chronapilot.common.store.repository import Page, Repository


class Events(Repository):
    COLLECTION = "events"

    async def of_application(self, application_id: str, event_id: str) -> Document | None:
        """The event, if it belongs to ``application_id`` (another application's is not found)."""
        with translate_errors():
            return await self._collection.find_one({"_id": event_id, "application_id": application_id})

    async def page_in_calendar(
        self,
        calendar_id: str,
        *,
        include_deleted: bool,
        updated_since: datetime | None,
        start: datetime | None,
        end: datetime | None,
        limit: int,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> Page:
        """A page (:meth:`page`) of a calendar's events: deleted ones only if asked, changed
        since ``updated_since``, and those overlapping [``start``, ``end``) (a series whose
        recurrence may reach into the window counts)."""
        flt: dict[str, Any] = {"calendar_id": calendar_id}
        if not include_deleted:
            flt["deleted"] = False
        if updated_since is not None:
            flt["updated_at"] = {"$gte": updated_since}
        if start is not None or end is not None:
            flt.update(_overlapping(start, end))
        return await self.page(flt, limit=limit, starting_after=starting_after, ending_before=ending_before)

    async def ids_by_provider_id(self, keys: Iterable[tuple[str, str, str]]) -> dict[str, str]:
        """``provider_event_id`` → ``evt_`` id of the events with these (connection id,
        provider calendar id, provider event id) keys."""
        wanted = set(keys)
        if not wanted:
            return {}
        with translate_errors():
            found = self._collection.find(
                {
                    "$or": [
                        {"connection_id": c, "provider_calendar_id": p, "provider_event_id": e}
                        for c, p, e in wanted
                    ]
                },
                {"provider_event_id": 1},
            )
            return {doc["provider_event_id"]: doc["_id"] async for doc in found}


def _overlapping(start: datetime | None, end: datetime | None) -> dict[str, Any]:
    single: dict[str, Any] = {"recurrence": []}
    series: dict[str, Any] = {"recurrence.0": {"$exists": True}}
    if end is not None:
        single["start_at"] = {"$lt": end}
        series["start_at"] = {"$lt": end}
    if start is not None:
        single["end_at"] = {"$gt": start}
        series["$or"] = [{"series_end_at": None}, {"series_end_at": {"$gte": start}}]
    return {"$or": [single, series]}
