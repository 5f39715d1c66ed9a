"""The ``calendars`` collection: its only reader and writer."""

from __future__ import annotations

from datetime import datetime

from chronapilot.common.calendars import upsert_calendars
from chronapilot.common.providers.base import CalendarInfo
from chronapilot.common.store.client import Document, Session, translate_errors
from chronapilot.common.store.repository import Repository


class Calendars(Repository):
    COLLECTION = "calendars"

    async def of_application(self, application_id: str, calendar_id: str) -> Document | None:
        """The calendar, if it belongs to ``application_id`` (another application's is not found)."""
        with translate_errors():
            return await self._collection.find_one({"_id": calendar_id, "application_id": application_id})

    async def in_order(self, calendar_ids: list[str]) -> list[Document]:
        """The calendars with these ids, in the order given (ids not found are left out)."""
        with translate_errors():
            found = {c["_id"]: c async for c in self._collection.find({"_id": {"$in": calendar_ids}})}
        return [found[i] for i in calendar_ids if i in found]

    async def upsert_listed(
        self,
        session: Session | None,
        *,
        connection_id: str,
        application_id: str,
        calendars: list[CalendarInfo],
        now: datetime,
    ) -> list[str]:
        """Keep the connection's calendars in step with the provider's list; the ids listed
        (:func:`chronapilot.common.calendars.upsert_calendars`)."""
        with translate_errors(session):
            return await upsert_calendars(
                self._store.db,
                session,
                connection_id=connection_id,
                application_id=application_id,
                calendars=calendars,
                now=now,
            )
